package main

import (
	"context"
	"errors"
	"io"
	"strconv"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/server"
)

var (
	runSettings = subcommands("settings", sub{"show", "", showCmd("settings show", "", showSettings)}, sub{"set", "", settingsSet})
	runLimits   = subcommands("limits", sub{"set", "", limitsSet}, sub{"show", "", showCmd("limits show", "", showSettings)}, sub{"clear", "", limitsClear})
)

func showSettings(ctx context.Context, s keys.Store, pid int64) (any, func(io.Writer) error, error) {
	ps, err := s.Settings(ctx, pid)
	return ps, func(w io.Writer) error { return admin.WriteSettings(w, pid, ps) }, err
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
	return server.WithStore(nil, func(s keys.Store) error {
		ops, c := cliOps(s)
		ps, err := ops.UpdateSettings(ctx, c, pid, sig.v, bound.v)
		if err != nil {
			return err
		}
		return admin.WriteSettings(stdout, pid, ps)
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
	return server.WithStore(nil, func(s keys.Store) error {
		ops, c := cliOps(s)
		ps, err := ops.SetLimit(ctx, c, pid, keyID, l)
		if err != nil {
			return opError("limits set", err, pid, keyID, "API key")
		}
		return admin.WriteSettings(stdout, pid, ps)
	})
}
