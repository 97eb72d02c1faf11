package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/internal/apierr"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server"
)

// cmdFunc runs one command with its arguments (after the command's name).
type cmdFunc = func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// sub is one command of keygate or of a group such as `keygate keys`.
type sub struct {
	name, summary string
	run           cmdFunc
}

// subcommands dispatches `keygate [group] <command>`; group "" is keygate's own list.
func subcommands(group string, subs ...sub) cmdFunc {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			w := stdout
			if len(args) == 0 && group == "" {
				w = stderr
			}
			names := make([]string, len(subs))
			for i, s := range subs {
				names[i] = s.name
			}
			if group == "" {
				fmt.Fprintln(w, "usage: keygate <command> [flags]\n\ncommands:")
				for _, c := range subs {
					fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
				}
				fmt.Fprintln(w, "\nRun `keygate <command> --help` for a command's flags. Configuration: see README.md.")
			} else {
				fmt.Fprintf(w, "usage: keygate %s <%s> [flags]\n", group, strings.Join(names, "|"))
				fmt.Fprintf(w, "Run `keygate %s <%s> --help` for its flags.\n", group, strings.Join(names, "|"))
			}
			if len(args) == 0 {
				return silentError{2}
			}
			return nil
		}
		for _, s := range subs {
			if s.name == args[0] {
				return s.run(ctx, args[1:], stdout, stderr)
			}
		}
		if group == "" {
			fmt.Fprintf(stderr, "keygate: unknown command %q (run `keygate help`)\n", args[0])
			return silentError{2}
		}
		return usagef("%s: unknown subcommand %q", group, args[0])
	}
}

var (
	runKeys = subcommands("keys", sub{"create", "", keysCreate}, sub{"list", "", showCmd("keys list", " (the shape of GET /v1/api/{projectId}/apikeys)", listAPIKeys)},
		sub{"revoke", "", removeCmd("keys revoke", "API key", "Revoked", revokeAny)},
		sub{"roll", "", rollCmd("keys", "API key", "apikeys")})
	runHMAC = subcommands("hmac", sub{"create", "", hmacCreate}, sub{"list", "", showCmd("hmac list", " (the shape of GET /v1/api/{projectId}/hmackeys)", listHMACKeys)},
		sub{"delete", "", removeCmd("hmac delete", "HMAC key", "Deleted", admin.Ops.DeleteHMACKey)},
		sub{"roll", "", rollCmd("hmac", "HMAC key", "hmackeys")})
)

// revokeAny revokes an API key whatever its role.
func revokeAny(o admin.Ops, ctx context.Context, c admin.Caller, pid, id int64) error {
	return o.RevokeAPIKey(ctx, c, pid, id, keys.RoleInvalid)
}

// projectFlags is a command's flag set with its required --project (and --id, when it names a key).
type projectFlags struct {
	fs      *flag.FlagSet
	project *int64
	id      *int64
}

func newProjectFlags(name string) projectFlags {
	fs := newFlagSet(name)
	return projectFlags{fs: fs, project: fs.Int64("project", 0, "project id (required)")}
}

// newKeyFlags is newProjectFlags with a required --id naming one of the project's keys.
func newKeyFlags(name, what string) projectFlags {
	p := newProjectFlags(name)
	p.id = p.fs.Int64("id", 0, "id of the "+what+" (required)")
	return p
}

// parse parses the command's flags and returns its --project.
func (p projectFlags) parse(args []string) (int64, error) {
	if err := parseFlags(p.fs, args); err != nil {
		return 0, err
	}
	if *p.project <= 0 {
		return 0, usagef("%s: --project is required and must be a positive integer", p.fs.Name())
	}
	if p.id != nil && *p.id <= 0 {
		return 0, usagef("%s: --id is required", p.fs.Name())
	}
	return *p.project, nil
}

// cliOps are the key-management operations (admin.Ops) on s, acting as the CLI's user.
func cliOps(s keys.Store) (admin.Ops, admin.Caller) {
	return admin.Ops{Store: s}, admin.OSCaller()
}

// opError is the CLI's one reading of an operation's error: a refused input is a usage error
// (exit 2) named after the command, a missing key names what was looked for.
func opError(name string, err error, pid, id int64, what string) error {
	var e *apierr.Error
	switch {
	case errors.As(err, &e) && e.Status == http.StatusBadRequest:
		return usagef("%s: %s", name, e.Public)
	case errors.Is(err, keys.ErrNotFound):
		return fmt.Errorf("project %d has no %s with id %d", pid, what, id)
	}
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func keysCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	p := newProjectFlags("keys create")
	name := p.fs.String("name", "", "name of the key (required)")
	role := p.fs.String("role", "", "admin, ingestion_deployment, ingestiononly or readonly (required)")
	dev := p.fs.Bool("dev", false, "make it the project's development key (moves the flag off the previous one)")
	key := p.fs.String("key", "", "use this key (ei_…, at least 32 characters) instead of generating one")
	ttl := p.fs.String("ttl", "", "expire the key this long after creation, e.g. 30d, 12h (default: never)")
	asJSON := p.fs.Bool("json", false, "print JSON")
	pid, err := p.parse(args)
	if err != nil {
		return err
	}
	var life time.Duration
	if *ttl != "" {
		if life, err = keys.ParseDuration(*ttl); err != nil || life <= 0 {
			return usagef("keys create: --ttl: want a positive duration such as 30d or 12h, got %q", *ttl)
		}
	}
	r, err := keys.ParseRole(*role)
	if err != nil {
		return usagef("keys create: --role: %v", err)
	}
	n := keys.NewAPIKey{ProjectID: pid, Name: *name, Role: r, IsDevelopmentKey: *dev, Key: *key, TTL: life}
	if n.Key == "" {
		if n.Key, err = keys.GenerateAPIKey(); err != nil {
			return err
		}
	}
	if err := n.Validate(); err != nil { // before a store is opened, or created
		return usagef("keys create: %v", err)
	}
	return server.WithStore(stderr, func(s keys.Store) error {
		ops, c := cliOps(s)
		ak, k, err := ops.CreateAPIKey(ctx, c, n)
		if err != nil {
			return opError("keys create", err, pid, 0, "API key")
		}
		exp := ""
		if !ak.Expires.IsZero() {
			exp = ", expires " + ak.Expires.Format(time.RFC3339)
		}
		return printSecret(stdout, stderr, *asJSON, admin.NewCreatedAPIKeyResponse(ak, k), k, "Created API key %d %q (%s) for project %d%s%s. This is the only time the whole key is shown.",
			ak.ID, ak.Name, ak.Role.Label(), pid, devSuffix(ak.IsDevelopmentKey), exp)
	})
}

// printSecret shows a secret that is shown only this once: with --json the endpoint's shape, else
// the secret alone on stdout (for scripts) and what was done on stderr.
func printSecret(stdout, stderr io.Writer, asJSON bool, resp any, secret, format string, a ...any) error {
	if asJSON {
		return writeJSON(stdout, resp)
	}
	fmt.Fprintln(stdout, secret)
	fmt.Fprintf(stderr, format+"\n", a...)
	return nil
}

func devSuffix(dev bool) string {
	if dev {
		return ", development key"
	}
	return ""
}

// reader reads what a show command prints: the JSON value and the text form. A notice error
// means "printed, then say this on stderr and exit 1" (devkeys with none set).
type reader func(ctx context.Context, s keys.Store, pid int64) (any, func(io.Writer) error, error)

type notice string

func (n notice) Error() string { return string(n) }

// showCmd is a command that reads one thing of a project and prints it: as text, or with --json in
// the shape of the HTTP endpoint that answers the same (named in shape). flags, when set, adds the
// command's own flags and returns its reader.
func showCmd(name, shape string, read reader, flags ...func(*flag.FlagSet) reader) cmdFunc {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		p := newProjectFlags(name)
		for _, f := range flags {
			read = f(p.fs)
		}
		asJSON := p.fs.Bool("json", false, "print JSON"+shape)
		pid, err := p.parse(args)
		if err != nil {
			return err
		}
		return server.WithStore(nil, func(s keys.Store) error {
			v, text, err := read(ctx, s, pid)
			var note notice
			if err != nil && !errors.As(err, &note) {
				return err
			}
			if *asJSON {
				err = writeJSON(stdout, v)
			} else {
				err = text(stdout)
			}
			if err == nil && note != "" {
				fmt.Fprintln(stderr, note)
				return silentError{1}
			}
			return err
		})
	}
}

func listAPIKeys(ctx context.Context, s keys.Store, pid int64) (any, func(io.Writer) error, error) {
	list, err := s.ListAPIKeys(ctx, pid)
	resp := admin.NewListAPIKeysResponse(list, time.Now())
	return resp, func(w io.Writer) error { return admin.WriteAPIKeys(w, resp.APIKeys) }, err
}

func listHMACKeys(ctx context.Context, s keys.Store, pid int64) (any, func(io.Writer) error, error) {
	list, err := s.ListHMACKeys(ctx, pid)
	resp := admin.NewListHMACKeysResponse(list)
	return resp, func(w io.Writer) error { return admin.WriteHMACKeys(w, resp.HMACKeys) }, err
}

// removeCmd is `keys revoke` and `hmac delete`: one key of a project by --id.
func removeCmd(name, what, done string, remove func(admin.Ops, context.Context, admin.Caller, int64, int64) error) cmdFunc {
	return func(ctx context.Context, args []string, stdout, _ io.Writer) error {
		p := newKeyFlags(name, what)
		pid, err := p.parse(args)
		if err != nil {
			return err
		}
		return server.WithStore(nil, func(s keys.Store) error {
			ops, c := cliOps(s)
			if err := remove(ops, ctx, c, pid, *p.id); err != nil {
				return opError(name, err, pid, *p.id, what)
			}
			fmt.Fprintf(stdout, "%s %s %d of project %d.\n", done, what, *p.id, pid)
			return nil
		})
	}
}

func hmacCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	p := newProjectFlags("hmac create")
	name := p.fs.String("name", "", "name of the key (required; with --devices-from, the names are NAME (DEVICE))")
	key := p.fs.String("key", "", "the HMAC key, at least 16 bytes (default: 32 random bytes as 64 hex characters)")
	dev := p.fs.Bool("dev", false, "make it the project's development HMAC key")
	var devices multiFlag
	p.fs.Var(&devices, "device", "bind the key to this device name, or a prefix ending in '*' (repeatable)")
	devicesFrom := p.fs.String("devices-from", "", "create one generated key per device named in this file (one name a line; blank lines and # comments skipped)")
	asJSON := p.fs.Bool("json", false, "print JSON")
	pid, err := p.parse(args)
	if err != nil {
		return err
	}
	if *name == "" {
		return usagef("hmac create: --name is required")
	}
	if *devicesFrom != "" {
		if len(devices) > 0 || *key != "" || *dev {
			return usagef("hmac create: --devices-from generates one key per device; it cannot be combined with --device, --key or --dev")
		}
		return hmacCreateBulk(ctx, pid, *name, *devicesFrom, *asJSON, stdout, stderr)
	}
	n := keys.NewHMACKey{ProjectID: pid, Name: *name, Secret: *key, IsDevelopmentKey: *dev, Devices: devices}
	if n.Secret == "" {
		if n.Secret, err = keys.GenerateHMACKey(); err != nil {
			return err
		}
	}
	if err := admin.CheckHMACKey(n); err != nil { // before a store is opened, or created
		return opError("hmac create", err, pid, 0, "HMAC key")
	}
	server.WarnPlaintextTo(stderr)
	return server.WithStore(stderr, func(s keys.Store) error {
		ops, c := cliOps(s)
		hk, err := ops.CreateHMACKey(ctx, c, n)
		if err != nil {
			return opError("hmac create", err, pid, 0, "HMAC key")
		}
		bound := ""
		if hk.Bound() {
			bound = ", bound to " + strings.Join(hk.Devices, ", ")
		}
		return printSecret(stdout, stderr, *asJSON, admin.CreatedHMACKeyResponse{Success: true, HMACKeyView: admin.NewHMACKeyView(hk)}, hk.Secret,
			"Created HMAC key %d %q for project %d%s%s.", hk.ID, hk.Name, pid, devSuffix(hk.IsDevelopmentKey), bound)
	})
}

// hmacCreateBulk creates one generated key per device named in the file at path and prints each
// pair once (keys.CreateDeviceKeys: if the store fails midway, the keys already made still print).
func hmacCreateBulk(ctx context.Context, pid int64, name, path string, asJSON bool, stdout, stderr io.Writer) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("hmac create: --devices-from: %w", err)
	}
	devs, err := keys.ParseDeviceList(string(b))
	if err != nil {
		return usagef("hmac create: %s %v", path, err)
	}
	server.WarnPlaintextTo(stderr)
	return server.WithStore(stderr, func(s keys.Store) error {
		ops, c := cliOps(s)
		made, cerr := ops.CreateDeviceKeys(ctx, c, pid, name, devs)
		if asJSON {
			if err := writeJSON(stdout, admin.DeviceKeysResponse{Success: cerr == nil, Keys: made}); err != nil {
				return err
			}
		} else if err := admin.WriteDeviceKeys(stdout, made); err != nil {
			return err
		}
		if cerr != nil {
			return fmt.Errorf("created %d of %d device keys: %w", len(made), len(devs), cerr)
		}
		fmt.Fprintf(stderr, "Created %d device-bound HMAC keys for project %d.\n", len(made), pid)
		return nil
	})
}

func readDevKeys(ctx context.Context, s keys.Store, pid int64) (any, func(io.Writer) error, error) {
	api, hk, err := keys.DevelopmentKeys(ctx, s, pid)
	if err == nil && api == nil && hk == nil {
		err = notice(fmt.Sprintf("%s for project %d (no development keys set).", admin.NoDevKeysMessage, pid))
	}
	return admin.NewDevKeysResponse(api, hk), func(w io.Writer) error { admin.WriteDevKeys(w, api, hk); return nil }, err
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

func graceText(g time.Duration, until time.Time) string {
	if g <= 0 {
		return "the old secret stopped working at once"
	}
	return "the old secret keeps working until " + until.Format(time.RFC3339)
}

// rollCmd is `keys roll` and `hmac roll`: a new secret for key --id, the old one working for
// --grace more (an HMAC key's new secret may be given with --key).
func rollCmd(group, what, path string) cmdFunc {
	name := group + " roll"
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		p := newKeyFlags(name, what+" to roll")
		grace := graceFlag(p.fs)
		key := new(string)
		if group == "hmac" {
			key = p.fs.String("key", "", "the new HMAC key (default: 32 random bytes as 64 hex characters)")
		}
		asJSON := p.fs.Bool("json", false, "print JSON (the shape of POST /v1/api/{projectId}/"+path+"/{id}/roll)")
		pid, err := p.parse(args)
		if err != nil {
			return err
		}
		g, err := grace()
		if err != nil {
			return err
		}
		return server.WithStore(nil, func(s keys.Store) error {
			ops, c := cliOps(s)
			resp, done, until, shown := admin.CreatedResponse{Success: true}, "", time.Time{}, ""
			var secret string
			if group == "hmac" {
				var hk keys.HMACKey
				hk, secret, err = ops.RollHMACKey(ctx, c, pid, *p.id, *key, g)
				resp.ID, resp.HMACKey, done, until = hk.ID, secret, fmt.Sprintf("HMAC key %d %q", hk.ID, hk.Name), hk.PreviousUntil
			} else {
				var ak keys.APIKey
				ak, secret, err = ops.RollAPIKey(ctx, c, pid, *p.id, g)
				resp.ID, resp.APIKey, done, until = ak.ID, secret, fmt.Sprintf("API key %d %q", ak.ID, ak.Name), ak.RolledUntil
				shown = " This is the only time the new key is shown."
			}
			if err != nil {
				return opError(name, err, pid, *p.id, what)
			}
			return printSecret(stdout, stderr, *asJSON, resp, secret, "Rolled %s of project %d: %s.%s", done, pid, graceText(g, until), shown)
		})
	}
}

func auditFlags(fs *flag.FlagSet) reader {
	limit := fs.Int("limit", 100, "how many events, newest first")
	before := fs.String("before", "", "show events older than this cursor (the \"next\" of a previous page)")
	return func(ctx context.Context, s keys.Store, pid int64) (any, func(io.Writer) error, error) {
		if *limit < 1 || *limit > 1000 {
			return nil, nil, usagef("audit: --limit must be between 1 and 1000")
		}
		events, next, err := s.ListAudit(ctx, pid, *limit, *before)
		if errors.Is(err, keys.ErrBadCursor) {
			err = usagef("audit: --before: not a cursor from a previous page")
		}
		return admin.NewAuditResponse(events, next), func(w io.Writer) error { return admin.WriteAudit(w, events, next) }, err
	}
}
