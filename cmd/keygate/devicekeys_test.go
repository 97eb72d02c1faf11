package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLIDeviceKeys(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KEYGATE_DATA_DIR", dir)
	t.Setenv("KEYGATE_REDIS_URL", "")
	list := filepath.Join(dir, "devices.txt")
	if err := os.WriteFile(list, []byte("# fleet of line 3\ncam-1\n\n  cam-2  \nline-4-*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, "hmac", "create", "--project", "1", "--name", "fleet", "--devices-from", list, "--json")
	if code != 0 {
		t.Fatalf("bulk create: %d %s", code, errOut)
	}
	var bulk struct {
		Success bool `json:"success"`
		Keys    []struct {
			Device  string `json:"device"`
			ID      int64  `json:"id"`
			HMACKey string `json:"hmacKey"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &bulk); err != nil || !bulk.Success || len(bulk.Keys) != 3 {
		t.Fatalf("bulk create --json: %q (%v)", out, err)
	}
	seen := map[string]bool{}
	for i, want := range []string{"cam-1", "cam-2", "line-4-*"} {
		k := bulk.Keys[i]
		if k.Device != want || len(k.HMACKey) < 32 || seen[k.HMACKey] {
			t.Errorf("key %d = %+v, want a fresh generated key for %s", i, k, want)
		}
		seen[k.HMACKey] = true
	}

	code, _, errOut = cli(t, "hmac", "create", "--project", "1", "--name", "pair", "--device", "dev-a", "--device", "dev-b")
	if code != 0 || !strings.Contains(errOut, "bound to dev-a, dev-b") {
		t.Errorf("create --device: %d %q", code, errOut)
	}
	code, out, _ = cli(t, "hmac", "list", "--project", "1")
	if code != 0 || !strings.Contains(out, "dev-a,dev-b") || !strings.Contains(out, "fleet (cam-2)") {
		t.Errorf("hmac list: %d %q", code, out)
	}
	code, out, _ = cli(t, "settings", "set", "--project", "1", "--require-device-bound-keys=true")
	if code != 0 || !strings.Contains(out, "require device-bound keys: true") {
		t.Errorf("settings set: %d %q", code, out)
	}

	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("cam-1\ncam-1\n"), 0o600)
	errs := []struct {
		name string
		args []string
		want string
	}{
		{"star inside", []string{"hmac", "create", "--project", "1", "--name", "x", "--device", "a*b"}, "allowed only at the end"},
		{"duplicate in the file", []string{"hmac", "create", "--project", "1", "--name", "x", "--devices-from", bad}, "already on line 1"},
		{"bulk with a given key", []string{"hmac", "create", "--project", "1", "--name", "x", "--devices-from", list, "--key", "k"}, "cannot be combined"},
		{"bad setting", []string{"settings", "set", "--project", "1", "--require-device-bound-keys=maybe"}, "want true or false"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, errOut := cli(t, tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 saying %q", code, errOut, tc.want)
			}
		})
	}
	if _, out, _ := cli(t, "hmac", "list", "--project", "1", "--json"); strings.Count(out, `"devices"`) != 4 {
		t.Errorf("refused commands stored keys: %s", out)
	}
}
