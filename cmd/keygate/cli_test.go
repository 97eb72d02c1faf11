package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// cli runs one keygate command in-process and returns its exit status and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

var keyRE = regexp.MustCompile(`ei_[0-9a-f]{64}`)

func TestCLIKeysEmbedded(t *testing.T) {
	t.Setenv("KEYGATE_DATA_DIR", t.TempDir())
	t.Setenv("KEYGATE_REDIS_URL", "")

	code, out, errOut := cli(t, "keys", "create", "--project", "1", "--name", "admin", "--role", "admin", "--json")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	var created struct {
		ID     int64  `json:"id"`
		APIKey string `json:"apiKey"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || !keyRE.MatchString(created.APIKey) {
		t.Fatalf("create --json: %q (%v)", out, err)
	}
	code, out, _ = cli(t, "keys", "create", "--project", "1", "--name", "ro", "--role", "readonly")
	if code != 0 || !keyRE.MatchString(out) {
		t.Fatalf("create (text): %d %q", code, out)
	}
	if code, _, _ := cli(t, "keys", "create", "--project", "1", "--name", "dev", "--role", "ingestiononly", "--dev"); code != 0 {
		t.Fatal("create dev failed")
	}

	code, out, _ = cli(t, "keys", "list", "--project", "1", "--json")
	if code != 0 {
		t.Fatal("list failed")
	}
	if strings.Contains(out, created.APIKey) {
		t.Error("list shows a whole non-development key")
	}
	var list struct {
		APIKeys []struct {
			ID     int64  `json:"id"`
			APIKey string `json:"apiKey"`
			Dev    bool   `json:"isDevelopmentKey"`
		} `json:"apiKeys"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.APIKeys) != 3 {
		t.Fatalf("list --json: %v %q", err, out)
	}
	for _, k := range list.APIKeys {
		if k.Dev != keyRE.MatchString(k.APIKey) {
			t.Errorf("key %d: dev=%v but listed as %q", k.ID, k.Dev, k.APIKey)
		}
	}

	if code, _, _ := cli(t, "keys", "revoke", "--project", "1", "--id", "1"); code != 0 {
		t.Fatal("revoke failed")
	}
	if code, _, errOut := cli(t, "keys", "revoke", "--project", "1", "--id", "1"); code != 1 || !strings.Contains(errOut, "no API key with id 1") {
		t.Errorf("second revoke: %d %q", code, errOut)
	}

	code, out, _ = cli(t, "hmac", "create", "--project", "1", "--name", "h", "--key", "fed53116f20684c067774ebf9e7bcbdc", "--dev")
	if code != 0 || strings.TrimSpace(out) != "fed53116f20684c067774ebf9e7bcbdc" {
		t.Fatalf("hmac create: %d %q", code, out)
	}
	code, out, _ = cli(t, "devkeys", "--project", "1")
	if code != 0 || !strings.Contains(out, "fed53116f20684c067774ebf9e7bcbdc") || !keyRE.MatchString(out) {
		t.Errorf("devkeys: %d %q", code, out)
	}
	code, _, errOut = cli(t, "devkeys", "--project", "7")
	if code != 1 || !strings.Contains(errOut, "You don't have any development keys set") {
		t.Errorf("devkeys without keys: %d %q", code, errOut)
	}
	code, out, _ = cli(t, "hmac", "list", "--project", "1", "--json")
	if code != 0 || !strings.Contains(out, `"hmacKey": "fed53116f20684c067774ebf9e7bcbdc"`) {
		t.Errorf("hmac list: %d %q", code, out)
	}
	if code, _, _ := cli(t, "hmac", "delete", "--project", "1", "--id", "99"); code != 1 {
		t.Errorf("delete of a missing hmac key: exit %d, want 1", code)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	t.Setenv("KEYGATE_DATA_DIR", t.TempDir())
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, 2, "usage"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"unknown role", []string{"keys", "create", "--project", "1", "--name", "x", "--role", "superuser"}, 2, "unknown role"},
		{"missing project", []string{"keys", "list"}, 2, "--project is required"},
		{"bad project", []string{"keys", "list", "--project", "abc"}, 2, "invalid value"},
		{"bad flag", []string{"keys", "create", "--bogus"}, 2, "not defined"},
		{"short own key", []string{"keys", "create", "--project", "1", "--name", "x", "--role", "admin", "--key", "ei_short"}, 2, "at least 32"},
		{"unknown subcommand", []string{"hmac", "rotate"}, 2, "unknown subcommand"},
		{"help", []string{"keys", "create", "--help"}, 0, ""},
		{"version", []string{"version"}, 0, ""},
		{"bad master key", []string{"keys", "list", "--project", "1"}, 2, "KEYGATE_MASTER_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "bad master key" {
				t.Setenv("KEYGATE_MASTER_KEY", "too-short")
			}
			code, _, errOut := cli(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d containing %q", code, errOut, tt.code, tt.want)
			}
			if strings.Contains(errOut, "goroutine") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 && tt.code == 2 && tt.want != "usage" {
				t.Errorf("not one clear line: %q", errOut)
			}
		})
	}
}

func TestCLILockedStore(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KEYGATE_DATA_DIR", dir)
	held, err := keys.OpenBolt(dir, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	start := time.Now()
	code, _, errOut := cli(t, "keys", "list", "--project", "1")
	if code != 1 || !strings.Contains(errOut, "held by another process") {
		t.Errorf("exit %d, %q", code, errOut)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("the command waited for the lock instead of failing at once")
	}
}

// TestCLIMissingStore: on a KEYGATE_DATA_DIR with no store, commands that read or change keys fail
// naming the path and the two variables and create nothing; creating a key makes the store and says where.
func TestCLIMissingStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mistyped")
	t.Setenv("KEYGATE_DATA_DIR", dir)
	t.Setenv("KEYGATE_REDIS_URL", "")
	for _, args := range [][]string{
		{"keys", "list", "--project", "1"}, {"keys", "revoke", "--project", "1", "--id", "1"},
		{"hmac", "list", "--project", "1"}, {"devkeys", "--project", "1"},
		{"settings", "show", "--project", "1"}, {"settings", "set", "--project", "1", "--require-signatures=true"},
		{"limits", "show", "--project", "1"}, {"limits", "set", "--project", "1", "--rate", "5/s"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			code, out, errOut := cli(t, args...)
			if code != 1 || out != "" {
				t.Errorf("exit %d, stdout %q: want 1 and nothing", code, out)
			}
			for _, want := range []string{filepath.Join(dir, keys.DataFileName), "KEYGATE_DATA_DIR", "KEYGATE_REDIS_URL"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q does not name %s", errOut, want)
				}
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the data directory exists after a failed read: %v", err)
			}
		})
	}
	code, _, errOut := cli(t, "keys", "create", "--project", "1", "--name", "first", "--role", "admin")
	if code != 0 || !strings.Contains(errOut, "Created a new key store at "+filepath.Join(dir, keys.DataFileName)) {
		t.Fatalf("keys create on a missing store: %d %q, want it created and named", code, errOut)
	}
	if code, out, _ := cli(t, "keys", "list", "--project", "1"); code != 0 || !strings.Contains(out, "first") {
		t.Errorf("keys list after create: %d %q", code, out)
	}
	if _, _, errOut := cli(t, "keys", "create", "--project", "1", "--name", "second", "--role", "admin"); strings.Contains(errOut, "new key store") {
		t.Errorf("second create claims a new store: %q", errOut)
	}
}

// TestCLISubcommandHelp: every subcommand's --help names the command the user typed, exits 0 and
// lists --project, so `limits show --help` does not describe `settings show`.
func TestCLISubcommandHelp(t *testing.T) {
	for _, args := range [][]string{
		{"keys", "create"}, {"keys", "list"}, {"keys", "revoke"}, {"keys", "roll"},
		{"hmac", "create"}, {"hmac", "list"}, {"hmac", "delete"}, {"hmac", "roll"},
		{"settings", "show"}, {"settings", "set"},
		{"limits", "set"}, {"limits", "show"}, {"limits", "clear"},
	} {
		name := strings.Join(args, " ")
		t.Run(name, func(t *testing.T) {
			code, out, errOut := cliHelp(t, append(args, "--help")...)
			if code != 0 {
				t.Errorf("exit %d (stderr %q), want 0", code, errOut)
			}
			if first, _, _ := strings.Cut(out, "\n"); first != "usage: keygate "+name+" [flags]" {
				t.Errorf("first line %q, want the usage of %q", first, name)
			}
			if !strings.Contains(out, "--project") {
				t.Errorf("help does not list --project: %q", out)
			}
		})
	}
	// A group's --help points at its subcommands' help.
	for _, group := range []string{"keys", "hmac", "settings", "limits"} {
		if code, out, _ := cli(t, group, "--help"); code != 0 || !strings.Contains(out, "Run `keygate "+group+" <") || !strings.Contains(out, "> --help` for its flags.") {
			t.Errorf("%s --help: %d %q, want a pointer to the subcommands' --help", group, code, out)
		}
	}
	// A usage error names the command too.
	if code, _, errOut := cli(t, "limits", "show"); code != 2 || !strings.HasPrefix(errOut, "keygate: limits show: --project") {
		t.Errorf("limits show without --project: %d %q", code, errOut)
	}
}

// cliHelp runs the command line and returns what it wrote to os.Stdout too: usage from --help goes
// there rather than to run's stdout.
func cliHelp(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	old := os.Stdout
	os.Stdout = w
	code, out, errOut := cli(t, args...)
	os.Stdout = old
	w.Close()
	usage, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return code, out + string(usage), errOut
}

// TestServeHelpAndBadValue: `keygate serve --help` lists the variables with defaults (stdout, exit
// 0); a bad value names its variable (exit 2, one line).
func TestServeHelpAndBadValue(t *testing.T) {
	code, out, _ := cli(t, "serve", "--help")
	if code != 0 || !strings.Contains(out, "KEYGATE_CACHE_TTL") || !strings.Contains(out, "default 30s") || !strings.Contains(out, "KEYGATE_TLS_CERT_FILE") {
		t.Errorf("serve --help: exit %d, stdout %.300q", code, out)
	}
	t.Setenv("KEYGATE_CACHE_TTL", "30")
	code, _, errOut := cli(t, "serve")
	if code != 2 || !strings.Contains(errOut, "KEYGATE_CACHE_TTL") || strings.Contains(errOut, "CacheTTL") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("KEYGATE_CACHE_TTL=30: exit %d, stderr %q", code, errOut)
	}
}
