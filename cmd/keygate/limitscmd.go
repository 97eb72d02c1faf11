package main

import (
	"context"
	"fmt"
	"io"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limit"
)

var runLimits = subcommands("limits", map[string]func(context.Context, []string, io.Writer, io.Writer) error{
	"set": limitsSet, "show": limitsShow, "clear": limitsClear,
}, []string{"set", "show", "clear"})

func formatLimit(l keys.Limit) string { return limit.Format(l) }

// limitsSet overrides the project's limit, or one key's with --key.
func limitsSet(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("limits set")
	project := projectFlag(fs)
	keyID := fs.Int64("key", 0, "API key id: set this key's limit instead of the project's")
	rate := fs.String("rate", "", "RATE/UNIT, e.g. 50/s, 600/m (required)")
	burst := fs.Int("burst", 0, "bucket size (default: the rate)")
	pid, err := parseProject(fs, args, project)
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
	return withStore(func(s keys.Store) error {
		if *keyID > 0 {
			if _, err := s.GetAPIKey(ctx, pid, *keyID); err != nil {
				return fmt.Errorf("project %d has no API key with id %d", pid, *keyID)
			}
		}
		ps, err := s.UpdateSettings(ctx, pid, func(ps *keys.ProjectSettings) error {
			if *keyID > 0 {
				if ps.KeyLimits == nil {
					ps.KeyLimits = map[int64]keys.Limit{}
				}
				ps.KeyLimits[*keyID] = l
			} else {
				ps.Limit = l
			}
			return nil
		})
		if err != nil {
			return err
		}
		return printSettings(stdout, pid, ps, false)
	})
}

func limitsShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return settingsShow(ctx, args, stdout, stderr)
}

func limitsClear(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("limits clear")
	project := projectFlag(fs)
	keyID := fs.Int64("key", 0, "API key id: clear this key's override instead of the project's")
	pid, err := parseProject(fs, args, project)
	if err != nil {
		return err
	}
	return withStore(func(s keys.Store) error {
		ps, err := s.UpdateSettings(ctx, pid, func(ps *keys.ProjectSettings) error {
			if *keyID > 0 {
				delete(ps.KeyLimits, *keyID)
			} else {
				ps.Limit = keys.Limit{}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return printSettings(stdout, pid, ps, false)
	})
}
