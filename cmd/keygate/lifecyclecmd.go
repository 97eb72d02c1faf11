package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/keys"
)

// cliActor is who a CLI command acts as in the audit trail: the operating-system user (the CLI
// holds no API key), marked so it cannot be taken for a key's name.
func cliActor() keys.Actor {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	return keys.Actor{Name: name + " (CLI)"}
}

// cliAudit records a CLI action in the project's audit trail (no log line: the command's own
// output says what it did).
func cliAudit(ctx context.Context, s keys.Store, pid int64, action string, target keys.AuditTarget) {
	keys.RecordAudit(ctx, s, nil, pid, keys.AuditEvent{Action: action, Actor: cliActor(), Target: target, Outcome: keys.OutcomeSuccess})
}

// graceFlag registers --grace (how long the old secret keeps working after a roll).
func graceFlag(fs *flag.FlagSet) func() (time.Duration, error) {
	g := fs.String("grace", "", "how long the old secret keeps working, e.g. 24h, 7d, or 0 to stop it at once (required)")
	return func() (time.Duration, error) {
		if *g == "" {
			return 0, usagef("%s: --grace is required (0 stops the old secret at once, for a leak)", fs.Name())
		}
		d, err := keys.ParseDuration(*g)
		if err != nil {
			return 0, usagef("%s: --grace: %v", fs.Name(), err)
		}
		return d, nil
	}
}

func keysRoll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	p := newProjectFlags("keys roll")
	fs := p.fs
	id := fs.Int64("id", 0, "id of the key to roll (required)")
	grace := graceFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON (the shape of POST /v1/api/{projectId}/apikeys/{id}/roll)")
	pid, err := p.parse(args)
	if err != nil {
		return err
	}
	if *id <= 0 {
		return usagef("keys roll: --id is required")
	}
	g, err := grace()
	if err != nil {
		return err
	}
	k, err := keys.GenerateAPIKey()
	if err != nil {
		return err
	}
	return withStore(func(s keys.Store) error {
		ak, err := s.RollAPIKey(ctx, pid, *id, k, g)
		if errors.Is(err, keys.ErrNotFound) {
			return fmt.Errorf("project %d has no API key with id %d", pid, *id)
		}
		if err != nil {
			return err
		}
		cliAudit(ctx, s, pid, keys.AuditRoll, keys.AuditTarget{Kind: keys.TargetAPIKey, ID: ak.ID, Name: ak.Name})
		if *asJSON {
			return writeJSON(stdout, admin.CreatedResponse{Success: true, ID: ak.ID, APIKey: k})
		}
		fmt.Fprintf(stdout, "%s\n", k)
		fmt.Fprintf(stderr, "Rolled API key %d %q of project %d: %s. This is the only time the new key is shown.\n",
			ak.ID, ak.Name, pid, graceText(g, ak.RolledUntil))
		return nil
	})
}

func graceText(g time.Duration, until time.Time) string {
	if g <= 0 {
		return "the old secret stopped working at once"
	}
	return "the old secret keeps working until " + until.Format(time.RFC3339)
}

func hmacRoll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	p := newProjectFlags("hmac roll")
	fs := p.fs
	id := fs.Int64("id", 0, "id of the HMAC key to roll (required)")
	grace := graceFlag(fs)
	key := fs.String("key", "", "the new HMAC key (default: 32 random bytes as 64 hex characters)")
	asJSON := fs.Bool("json", false, "print JSON (the shape of POST /v1/api/{projectId}/hmackeys/{id}/roll)")
	pid, err := p.parse(args)
	if err != nil {
		return err
	}
	if *id <= 0 {
		return usagef("hmac roll: --id is required")
	}
	g, err := grace()
	if err != nil {
		return err
	}
	secret := *key
	if secret == "" {
		if secret, err = keys.GenerateHMACKey(); err != nil {
			return err
		}
	} else if err := keys.ValidateHMACStrength(secret); err != nil {
		return usagef("hmac roll: --key: %v", err)
	}
	return withStore(func(s keys.Store) error {
		hk, err := s.RollHMACKey(ctx, pid, *id, secret, g)
		if errors.Is(err, keys.ErrNotFound) {
			return fmt.Errorf("project %d has no HMAC key with id %d", pid, *id)
		}
		if err != nil {
			return err
		}
		cliAudit(ctx, s, pid, keys.AuditRoll, keys.AuditTarget{Kind: keys.TargetHMACKey, ID: hk.ID, Name: hk.Name})
		if *asJSON {
			return writeJSON(stdout, admin.CreatedResponse{Success: true, ID: hk.ID, HMACKey: secret})
		}
		fmt.Fprintf(stdout, "%s\n", secret)
		fmt.Fprintf(stderr, "Rolled HMAC key %d %q of project %d: %s.\n", hk.ID, hk.Name, pid, graceText(g, hk.PreviousUntil))
		return nil
	})
}

func runAudit(ctx context.Context, args []string, stdout, _ io.Writer) error {
	p := newProjectFlags("audit")
	fs := p.fs
	limit := fs.Int("limit", 100, "how many events, newest first")
	before := fs.String("before", "", "show events older than this cursor (the \"next\" of a previous page)")
	asJSON := fs.Bool("json", false, "print JSON (the shape of GET /v1/api/{projectId}/audit)")
	pid, err := p.parse(args)
	if err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return usagef("audit: --limit must be between 1 and 1000")
	}
	return withStore(func(s keys.Store) error {
		events, next, err := s.ListAudit(ctx, pid, *limit, *before)
		if errors.Is(err, keys.ErrBadCursor) {
			return usagef("audit: --before: not a cursor from a previous page")
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, admin.NewAuditResponse(events, next))
		}
		return admin.WriteAudit(stdout, events, next)
	})
}
