package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limit"
)

var (
	runSettings = subcommands("settings", sub{"show", settingsShow}, sub{"set", settingsSet})
	runLimits   = subcommands("limits", sub{"set", limitsSet}, sub{"show", settingsShow}, sub{"clear", limitsClear})
)

func settingsShow(ctx context.Context, args []string, stdout, _ io.Writer) error {
	p := newProjectFlags("settings show")
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
	fmt.Fprintf(w, "project %d\n  require signatures: %v\n  require device-bound keys: %v\n", pid, ps.RequireSignatures, ps.RequireDeviceBoundKeys)
	if !ps.Limit.IsZero() {
		fmt.Fprintf(w, "  rate limit (project): %s\n", limit.Format(ps.Limit))
	}
	for id, l := range ps.KeyLimits {
		fmt.Fprintf(w, "  rate limit (key %d): %s\n", id, limit.Format(l))
	}
	return nil
}

func settingsSet(ctx context.Context, args []string, stdout, _ io.Writer) error {
	p := newProjectFlags("settings set")
	reqSig := p.fs.String("require-signatures", "", "true: refuse unsigned ingestion files for this project; false: allow them")
	reqBound := p.fs.String("require-device-bound-keys", "", "true: refuse samples signed with an HMAC key bound to no device; false: accept them")
	pid, err := p.parse(args)
	if err != nil {
		return err
	}
	if *reqSig == "" && *reqBound == "" {
		return usagef("settings set: nothing to set (try --require-signatures=true or --require-device-bound-keys=true)")
	}
	parse := func(flag, v string) (*bool, error) {
		if v == "" {
			return nil, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, usagef("settings set: --%s: want true or false", flag)
		}
		return &b, nil
	}
	sig, err := parse("require-signatures", *reqSig)
	if err != nil {
		return err
	}
	bound, err := parse("require-device-bound-keys", *reqBound)
	if err != nil {
		return err
	}
	return withStore(func(s keys.Store) error {
		ps, err := s.UpdateSettings(ctx, pid, func(ps *keys.ProjectSettings) error {
			if sig != nil {
				ps.RequireSignatures = *sig
			}
			if bound != nil {
				ps.RequireDeviceBoundKeys = *bound
			}
			return nil
		})
		if err != nil {
			return err
		}
		cliAudit(ctx, s, pid, keys.AuditSettings, keys.AuditTarget{Kind: keys.TargetSettings, Name: settingsChange(sig, bound)})
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
