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
	"github.com/keygate/keygate/server"
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
	p := newKeyFlags("keys roll", "key to roll")
	grace := graceFlag(p.fs)
	asJSON := p.fs.Bool("json", false, "print JSON (the shape of POST /v1/api/{projectId}/apikeys/{id}/roll)")
	pid, g, err := parseRoll(p, grace, args)
	if err != nil {
		return err
	}
	return server.WithStore(nil, func(s keys.Store) error {
		ops, c := cliOps(s)
		ak, k, err := ops.RollAPIKey(ctx, c, pid, *p.id, g)
		if err != nil {
			return opError("keys roll", err, pid, *p.id, "API key")
		}
		if *asJSON {
			return writeJSON(stdout, admin.CreatedResponse{Success: true, ID: ak.ID, APIKey: k})
		}
		fmt.Fprintf(stdout, "%s\n", k)
		fmt.Fprintf(stderr, "Rolled API key %d %q of project %d: %s. This is the only time the new key is shown.\n",
			ak.ID, ak.Name, pid, graceText(g, ak.RolledUntil))
		return nil
	})
}

// parseRoll parses a roll command's flags: its project and grace.
func parseRoll(p projectFlags, grace func() (time.Duration, error), args []string) (int64, time.Duration, error) {
	pid, err := p.parse(args)
	if err != nil {
		return 0, 0, err
	}
	g, err := grace()
	return pid, g, err
}

func graceText(g time.Duration, until time.Time) string {
	if g <= 0 {
		return "the old secret stopped working at once"
	}
	return "the old secret keeps working until " + until.Format(time.RFC3339)
}

func hmacRoll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	p := newKeyFlags("hmac roll", "HMAC key to roll")
	grace := graceFlag(p.fs)
	key := p.fs.String("key", "", "the new HMAC key (default: 32 random bytes as 64 hex characters)")
	asJSON := p.fs.Bool("json", false, "print JSON (the shape of POST /v1/api/{projectId}/hmackeys/{id}/roll)")
	pid, g, err := parseRoll(p, grace, args)
	if err != nil {
		return err
	}
	if *key != "" {
		if err := keys.ValidateHMACStrength(*key); err != nil {
			return usagef("hmac roll: --key: %v", err)
		}
	}
	return server.WithStore(nil, func(s keys.Store) error {
		ops, c := cliOps(s)
		hk, secret, err := ops.RollHMACKey(ctx, c, pid, *p.id, *key, g)
		if err != nil {
			return opError("hmac roll", err, pid, *p.id, "HMAC key")
		}
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
	return server.WithStore(nil, func(s keys.Store) error {
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

// cliAudit records a CLI action in the project's audit trail.
func cliAudit(ctx context.Context, s keys.Store, pid int64, action string, target keys.AuditTarget) {
	ops, c := cliOps(s)
	ops.Audit(ctx, c, pid, action, target)
}
