package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limit"
)

var (
	runSettings = subcommands("settings", sub{"show", settingsShow("settings show")}, sub{"set", settingsSet})
	runLimits   = subcommands("limits", sub{"set", limitsSet}, sub{"show", settingsShow("limits show")}, sub{"clear", limitsClear})
)

// settingsShow prints a project's settings and limits; name is the command it runs as, so its
// usage and errors name the command the user typed (`limits show` shares it with `settings show`).
func settingsShow(name string) cmdFunc {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return showSettings(ctx, name, args, stdout)
	}
}

func showSettings(ctx context.Context, name string, args []string, stdout io.Writer) error {
	p := newProjectFlags(name)
	asJSON := p.fs.Bool("json", false, "print JSON")
	pid, err := p.parse(args)
	if err != nil {
		return err
	}
	return withStore(func(s keys.Store) error {
		ps, err := s.Settings(ctx, pid)
		if err != nil {
			return err
		}
		return printSettings(stdout, pid, ps, *asJSON)
	})
}

func printSettings(w io.Writer, pid int64, ps keys.ProjectSettings, asJSON bool) error {
	if asJSON {
		return writeJSON(w, ps)
	}
	return admin.WriteSettings(w, pid, ps)
}

// optBool is a true/false flag that may be left out (nil).
type optBool struct{ v *bool }

func (o *optBool) String() string { return "" }
func (o *optBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	o.v = &b
	return nil
}

// apply sets *to when the flag was given.
func (o optBool) apply(to *bool) {
	if o.v != nil {
		*to = *o.v
	}
}

func settingsSet(ctx context.Context, args []string, stdout, _ io.Writer) error {
	p := newProjectFlags("settings set")
	var sig, bound optBool
	p.fs.Var(&sig, "require-signatures", "true: refuse unsigned ingestion files for this project; false: allow them")
	p.fs.Var(&bound, "require-device-bound-keys", "true: refuse samples signed with an HMAC key bound to no device; false: accept them")
	pid, err := p.parse(args)
	if err != nil {
		return err
	}
	if sig.v == nil && bound.v == nil {
		return usagef("settings set: nothing to set (try --require-signatures=true or --require-device-bound-keys=true)")
	}
	return withStore(func(s keys.Store) error {
		ps, err := s.UpdateSettings(ctx, pid, func(ps *keys.ProjectSettings) error {
			sig.apply(&ps.RequireSignatures)
			bound.apply(&ps.RequireDeviceBoundKeys)
			return nil
		})
		if err != nil {
			return err
		}
		cliAudit(ctx, s, pid, keys.AuditSettings, keys.AuditTarget{Kind: keys.TargetSettings, Name: settingsChange(sig.v, bound.v)})
		return printSettings(stdout, pid, ps, false)
	})
}

// limitsSet overrides the project's limit, or one key's with --key.
func limitsSet(ctx context.Context, args []string, stdout, _ io.Writer) error {
	p := newProjectFlags("limits set")
	keyID := p.fs.Int64("key", 0, "API key id: set this key's limit instead of the project's")
	rate := p.fs.String("rate", "", "RATE/UNIT, e.g. 50/s, 600/m (required)")
	burst := p.fs.Int("burst", 0, "bucket size (default: the rate)")
	pid, err := p.parse(args)
	if err != nil {
		return err
	}
	l, err := limit.ParseRate(*rate)
	if err != nil {
		return usagef("limits set: --rate: %v", err)
	}
	if *burst < 0 {
		return usagef("limits set: --burst must be positive")
	}
	if *burst > 0 {
		l.Burst = *burst
	}
	return setLimit(ctx, stdout, pid, *keyID, l)
}

// limitsClear removes the project's override, or one key's with --key.
func limitsClear(ctx context.Context, args []string, stdout, _ io.Writer) error {
	p := newProjectFlags("limits clear")
	keyID := p.fs.Int64("key", 0, "API key id: clear this key's override instead of the project's")
	pid, err := p.parse(args)
	if err != nil {
		return err
	}
	return setLimit(ctx, stdout, pid, *keyID, keys.Limit{})
}

func setLimit(ctx context.Context, stdout io.Writer, pid, keyID int64, l keys.Limit) error {
	return withStore(func(s keys.Store) error {
		if keyID > 0 && !l.IsZero() {
			if _, err := s.GetAPIKey(ctx, pid, keyID); err != nil {
				return fmt.Errorf("project %d has no API key with id %d", pid, keyID)
			}
		}
		ps, err := s.UpdateSettings(ctx, pid, func(ps *keys.ProjectSettings) error { ps.SetLimit(keyID, l); return nil })
		if err != nil {
			return err
		}
		cliAudit(ctx, s, pid, keys.AuditLimit, limitTarget(keyID))
		return printSettings(stdout, pid, ps, false)
	})
}

// settingsChange names what a settings change set, for the audit trail.
func settingsChange(sig, bound *bool) string {
	var parts []string
	if sig != nil {
		parts = append(parts, "requireSignatures="+strconv.FormatBool(*sig))
	}
	if bound != nil {
		parts = append(parts, "requireDeviceBoundKeys="+strconv.FormatBool(*bound))
	}
	return strings.Join(parts, " ")
}

// limitTarget is what a limit change acts on: a key's override, or the project's settings.
func limitTarget(keyID int64) keys.AuditTarget {
	if keyID > 0 {
		return keys.AuditTarget{Kind: keys.TargetAPIKey, ID: keyID}
	}
	return keys.AuditTarget{Kind: keys.TargetSettings, Name: "limit"}
}
