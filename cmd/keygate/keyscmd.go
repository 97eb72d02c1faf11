package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server"
)

// subcommands dispatches `keygate <group> <sub>`.
func subcommands(group string, subs map[string]func(context.Context, []string, io.Writer, io.Writer) error, order []string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprintf(stdout, "usage: keygate %s <", group)
			for i, o := range order {
				if i > 0 {
					fmt.Fprint(stdout, "|")
				}
				fmt.Fprint(stdout, o)
			}
			fmt.Fprintln(stdout, "> [flags]")
			if len(args) == 0 {
				return silentError{2}
			}
			return nil
		}
		f, ok := subs[args[0]]
		if !ok {
			return usagef("%s: unknown subcommand %q", group, args[0])
		}
		return f(ctx, args[1:], stdout, stderr)
	}
}

var runKeys = subcommands("keys", map[string]func(context.Context, []string, io.Writer, io.Writer) error{
	"create": keysCreate, "list": keysList, "revoke": keysRevoke,
}, []string{"create", "list", "revoke"})

var runHMAC = subcommands("hmac", map[string]func(context.Context, []string, io.Writer, io.Writer) error{
	"create": hmacCreate, "list": hmacList, "delete": hmacDelete,
}, []string{"create", "list", "delete"})

// projectFlag registers --project and returns a getter that validates it.
func projectFlag(fs *flag.FlagSet) func() (int64, error) {
	p := fs.Int64("project", 0, "project id (required)")
	return func() (int64, error) {
		if *p <= 0 {
			return 0, usagef("%s: --project is required and must be a positive integer", fs.Name())
		}
		return *p, nil
	}
}

// parseProject parses a command's flags and its required --project.
func parseProject(fs *flag.FlagSet, args []string, project func() (int64, error)) (int64, error) {
	if err := parseFlags(fs, args); err != nil {
		return 0, err
	}
	return project()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func keysCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys create")
	project := projectFlag(fs)
	name := fs.String("name", "", "name of the key (required)")
	role := fs.String("role", "", "admin, ingestion_deployment, ingestiononly or readonly (required)")
	dev := fs.Bool("dev", false, "make it the project's development key (moves the flag off the previous one)")
	key := fs.String("key", "", "use this key (ei_…, at least 32 characters) instead of generating one")
	asJSON := fs.Bool("json", false, "print JSON")
	pid, err := parseProject(fs, args, project)
	if err != nil {
		return err
	}
	if *name == "" {
		return usagef("keys create: --name is required")
	}
	r, err := keys.ParseRole(*role)
	if err != nil {
		return usagef("keys create: --role: %v", err)
	}
	k := *key
	if k == "" {
		if k, err = keys.GenerateAPIKey(); err != nil {
			return err
		}
	} else if err := keys.ValidateAPIKey(k); err != nil {
		return usagef("keys create: --key: %v", err)
	}
	return withNewStore(stderr, func(s keys.Store) error {
		ak, err := s.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: pid, Name: *name, Role: r, IsDevelopmentKey: *dev, Key: k})
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, struct {
				admin.CreatedResponse
				Name             string    `json:"name"`
				Role             keys.Role `json:"role"`
				ProjectID        int64     `json:"projectId"`
				IsDevelopmentKey bool      `json:"isDevelopmentKey"`
			}{admin.CreatedResponse{Success: true, ID: ak.ID, APIKey: k}, ak.Name, ak.Role, ak.ProjectID, ak.IsDevelopmentKey})
		}
		fmt.Fprintf(stdout, "%s\n", k)
		fmt.Fprintf(stderr, "Created API key %d %q (%s) for project %d%s. This is the only time the whole key is shown.\n",
			ak.ID, ak.Name, ak.Role.Label(), pid, devSuffix(ak.IsDevelopmentKey))
		return nil
	})
}

func devSuffix(dev bool) string {
	if dev {
		return ", development key"
	}
	return ""
}

func keysList(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("keys list")
	project := projectFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON (the shape of GET /v1/api/{projectId}/apikeys)")
	pid, err := parseProject(fs, args, project)
	if err != nil {
		return err
	}
	return withStore(func(s keys.Store) error {
		list, err := s.ListAPIKeys(ctx, pid)
		if err != nil {
			return err
		}
		views := make([]admin.APIKeyView, 0, len(list))
		for _, k := range list {
			views = append(views, admin.NewAPIKeyView(k))
		}
		if *asJSON {
			return writeJSON(stdout, admin.ListAPIKeysResponse{Success: true, APIKeys: views})
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tDEV\tKEY\tCREATED\tLAST USED")
		for _, v := range views {
			lu := "never"
			if v.LastUsed != nil {
				lu = v.LastUsed.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, v.Role, yes(v.IsDevelopmentKey), v.APIKey, v.Created.Format(time.RFC3339), lu)
		}
		return tw.Flush()
	})
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

func keysRevoke(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("keys revoke")
	project := projectFlag(fs)
	id := fs.Int64("id", 0, "id of the key to revoke (required)")
	pid, err := parseProject(fs, args, project)
	if err != nil {
		return err
	}
	if *id <= 0 {
		return usagef("keys revoke: --id is required")
	}
	return withStore(func(s keys.Store) error {
		if err := s.RevokeAPIKey(ctx, pid, *id); err != nil {
			if errors.Is(err, keys.ErrNotFound) {
				return fmt.Errorf("project %d has no API key with id %d", pid, *id)
			}
			return err
		}
		fmt.Fprintf(stdout, "Revoked API key %d of project %d.\n", *id, pid)
		return nil
	})
}

func hmacCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("hmac create")
	project := projectFlag(fs)
	name := fs.String("name", "", "name of the key (required; with --devices-from, the names are NAME (DEVICE))")
	key := fs.String("key", "", "the HMAC key (default: 32 random hex characters)")
	dev := fs.Bool("dev", false, "make it the project's development HMAC key")
	var devices multiFlag
	fs.Var(&devices, "device", "bind the key to this device name, or a prefix ending in '*' (repeatable)")
	devicesFrom := fs.String("devices-from", "", "create one generated key per device named in this file (one name a line; blank lines and # comments skipped)")
	asJSON := fs.Bool("json", false, "print JSON")
	pid, err := parseProject(fs, args, project)
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
	secret := *key
	if secret == "" {
		if secret, err = keys.GenerateHMACKey(); err != nil {
			return err
		}
	}
	n := keys.NewHMACKey{ProjectID: pid, Name: *name, Secret: secret, IsDevelopmentKey: *dev, Devices: devices}
	if err := n.Validate(); err != nil {
		return usagef("hmac create: %v", err)
	}
	cfg, err := server.LoadStoreConfig()
	if err != nil {
		return err
	}
	if cfg.MasterKey == "" {
		server.WarnPlaintext(slog.New(slog.NewTextHandler(stderr, nil)))
	}
	return withNewStore(stderr, func(s keys.Store) error {
		hk, err := s.CreateHMACKey(ctx, n)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, struct {
				Success bool `json:"success"`
				admin.HMACKeyView
			}{true, admin.NewHMACKeyView(hk)})
		}
		fmt.Fprintf(stdout, "%s\n", hk.Secret)
		bound := ""
		if hk.Bound() {
			bound = ", bound to " + strings.Join(hk.Devices, ", ")
		}
		fmt.Fprintf(stderr, "Created HMAC key %d %q for project %d%s%s.\n", hk.ID, hk.Name, pid, devSuffix(hk.IsDevelopmentKey), bound)
		return nil
	})
}

// DeviceKey is one line of `hmac create --devices-from --json`: a device and the key made for it.
type DeviceKey struct {
	Device  string `json:"device"`
	ID      int64  `json:"id"`
	HMACKey string `json:"hmacKey"`
}

// readDeviceList reads one device name (or prefix ending in '*') a line, checking them all before
// anything is created.
func readDeviceList(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hmac create: --devices-from: %w", err)
	}
	var out []string
	seen := map[string]int{}
	for i, line := range strings.Split(string(b), "\n") {
		d := strings.TrimSpace(line)
		if d == "" || strings.HasPrefix(d, "#") {
			continue
		}
		if err := keys.ValidateDevicePattern(d); err != nil {
			return nil, usagef("hmac create: %s line %d: %v", path, i+1, err)
		}
		if first, dup := seen[d]; dup {
			return nil, usagef("hmac create: %s line %d: device %q is already on line %d", path, i+1, d, first)
		}
		seen[d] = i + 1
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, usagef("hmac create: %s names no devices", path)
	}
	return out, nil
}

// hmacCreateBulk creates one generated key per device and prints each pair once. If the store
// fails midway, the keys already created are still printed, so none is lost.
func hmacCreateBulk(ctx context.Context, pid int64, name, path string, asJSON bool, stdout, stderr io.Writer) error {
	devs, err := readDeviceList(path)
	if err != nil {
		return err
	}
	cfg, err := server.LoadStoreConfig()
	if err != nil {
		return err
	}
	if cfg.MasterKey == "" {
		server.WarnPlaintext(slog.New(slog.NewTextHandler(stderr, nil)))
	}
	return withNewStore(stderr, func(s keys.Store) error {
		made := make([]DeviceKey, 0, len(devs))
		var cerr error
		for _, d := range devs {
			secret, err := keys.GenerateHMACKey()
			if err != nil {
				cerr = err
				break
			}
			hk, err := s.CreateHMACKey(ctx, keys.NewHMACKey{ProjectID: pid, Name: name + " (" + d + ")", Secret: secret, Devices: []string{d}})
			if err != nil {
				cerr = fmt.Errorf("create the key of device %q: %w", d, err)
				break
			}
			made = append(made, DeviceKey{Device: d, ID: hk.ID, HMACKey: hk.Secret})
		}
		if asJSON {
			if err := writeJSON(stdout, struct {
				Success bool        `json:"success"`
				Keys    []DeviceKey `json:"keys"`
			}{cerr == nil, made}); err != nil {
				return err
			}
		} else {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			for _, k := range made {
				fmt.Fprintf(tw, "%s\t%s\n", k.Device, k.HMACKey)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if cerr != nil {
			return fmt.Errorf("created %d of %d device keys: %w", len(made), len(devs), cerr)
		}
		fmt.Fprintf(stderr, "Created %d device-bound HMAC keys for project %d.\n", len(made), pid)
		return nil
	})
}

func hmacList(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("hmac list")
	project := projectFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON (the shape of GET /v1/api/{projectId}/hmackeys)")
	pid, err := parseProject(fs, args, project)
	if err != nil {
		return err
	}
	return withStore(func(s keys.Store) error {
		list, err := s.ListHMACKeys(ctx, pid)
		if err != nil {
			return err
		}
		views := make([]admin.HMACKeyView, 0, len(list))
		for _, k := range list {
			views = append(views, admin.NewHMACKeyView(k))
		}
		if *asJSON {
			return writeJSON(stdout, admin.ListHMACKeysResponse{Success: true, HMACKeys: views})
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tDEV\tHMAC KEY\tDEVICES\tCREATED")
		for _, v := range views {
			devs := "any"
			if len(v.Devices) > 0 {
				devs = strings.Join(v.Devices, ",")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, yes(v.IsDevelopmentKey), v.HMACKey, devs, v.Created.Format(time.RFC3339))
		}
		return tw.Flush()
	})
}

func hmacDelete(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("hmac delete")
	project := projectFlag(fs)
	id := fs.Int64("id", 0, "id of the HMAC key to delete (required)")
	pid, err := parseProject(fs, args, project)
	if err != nil {
		return err
	}
	if *id <= 0 {
		return usagef("hmac delete: --id is required")
	}
	return withStore(func(s keys.Store) error {
		if err := s.DeleteHMACKey(ctx, pid, *id); err != nil {
			if errors.Is(err, keys.ErrNotFound) {
				return fmt.Errorf("project %d has no HMAC key with id %d", pid, *id)
			}
			return err
		}
		fmt.Fprintf(stdout, "Deleted HMAC key %d of project %d.\n", *id, pid)
		return nil
	})
}

func runDevKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("devkeys")
	project := projectFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON (the shape of GET /v1/api/{projectId}/devkeys)")
	pid, err := parseProject(fs, args, project)
	if err != nil {
		return err
	}
	return withStore(func(s keys.Store) error {
		api, hk, err := keys.DevelopmentKeys(ctx, s, pid)
		if err != nil {
			return err
		}
		if *asJSON {
			resp := admin.DevKeysResponse{Success: true}
			if api != nil {
				resp.APIKey = &api.DevSecret
			}
			if hk != nil {
				resp.HMACKey = &hk.Secret
			}
			if err := writeJSON(stdout, resp); err != nil {
				return err
			}
		} else {
			if api != nil {
				fmt.Fprintf(stdout, "API key:  %s  (id %d, %q, %s)\n", api.DevSecret, api.ID, api.Name, api.Role.Label())
			}
			if hk != nil {
				fmt.Fprintf(stdout, "HMAC key: %s  (id %d, %q)\n", hk.Secret, hk.ID, hk.Name)
			}
		}
		if api == nil && hk == nil {
			fmt.Fprintf(stderr, "%s for project %d (no development keys set).\n", admin.NoDevKeysMessage, pid)
			return silentError{1}
		}
		return nil
	})
}
