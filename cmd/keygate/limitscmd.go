package main

import (
	"cmp"
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
	runLimits   = subcommands("limits", sub{"set", "", limitsCmd("set")}, sub{"show", "", showCmd("limits show", "", showSettings)}, sub{"clear", "", limitsCmd("clear")})
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

// limitsCmd is `limits set` (override the project's limit, or one key's with --key) and
// `limits clear` (remove that override).
func limitsCmd(verb string) cmdFunc {
	name := "limits " + verb
	return func(ctx context.Context, args []string, stdout, _ io.Writer) error {
		p := newProjectFlags(name)
		keyID := p.fs.Int64("key", 0, "API key id: "+verb+" this key's limit instead of the project's")
		var rate *string
		burst := new(int)
		if verb == "set" {
			rate = p.fs.String("rate", "", "RATE/UNIT, e.g. 50/s, 600/m (required)")
			burst = p.fs.Int("burst", 0, "bucket size (default: the rate)")
		}
		pid, err := p.parse(args)
		if err != nil {
			return err
		}
		var l keys.Limit
		if rate != nil {
			if l, err = limit.ParseRate(*rate); err != nil {
				return usagef("%s: --rate: %v", name, err)
			}
			if *burst < 0 {
				return usagef("%s: --burst must be positive", name)
			}
			l.Burst = cmp.Or(*burst, l.Burst)
		}
		return server.WithStore(nil, func(s keys.Store) error {
			ops, c := cliOps(s)
			ps, err := ops.SetLimit(ctx, c, pid, *keyID, l)
			if err != nil {
				return opError(name, err, pid, *keyID, "API key")
			}
			return admin.WriteSettings(stdout, pid, ps)
		})
	}
}
