package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// TestCLILifecycle: keys create --ttl, keys roll --grace, hmac roll and audit on the embedded store.
func TestCLILifecycle(t *testing.T) {
	t.Setenv("KEYGATE_DATA_DIR", t.TempDir())
	t.Setenv("KEYGATE_REDIS_URL", "")
	code, out, errOut := cli(t, "keys", "create", "--project", "1", "--name", "month", "--role", "readonly", "--ttl", "30d", "--json")
	if code != 0 {
		t.Fatalf("create --ttl: %d %s", code, errOut)
	}
	var created struct {
		ID      int64      `json:"id"`
		APIKey  string     `json:"apiKey"`
		Expires *time.Time `json:"expires"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Expires == nil ||
		time.Until(*created.Expires) < 29*24*time.Hour || time.Until(*created.Expires) > 30*24*time.Hour {
		t.Fatalf("create --ttl 30d: %q (%v)", out, err)
	}
	for _, bad := range []string{"-1h", "soon", "0"} {
		if code, _, _ := cli(t, "keys", "create", "--project", "1", "--name", "x", "--role", "readonly", "--ttl", bad); code != 2 {
			t.Errorf("--ttl %s: exit %d, want 2", bad, code)
		}
	}
	code, out, _ = cli(t, "keys", "list", "--project", "1")
	if code != 0 || !strings.Contains(out, "EXPIRES") || !strings.Contains(out, created.Expires.UTC().Format("2006-01-02")) {
		t.Errorf("list does not show the expiry: %s", out)
	}
	if code, _, _ := cli(t, "keys", "roll", "--project", "1", "--id", fmt.Sprint(created.ID)); code != 2 {
		t.Errorf("roll without --grace: exit %d, want 2", code)
	}
	code, out, errOut = cli(t, "keys", "roll", "--project", "1", "--id", fmt.Sprint(created.ID), "--grace", "24h")
	newKey := strings.TrimSpace(out)
	if code != 0 || !keyRE.MatchString(newKey) || newKey == created.APIKey || !strings.Contains(errOut, "keeps working until") {
		t.Fatalf("roll: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := cli(t, "keys", "roll", "--project", "1", "--id", "999", "--grace", "0"); code != 1 || !strings.Contains(errOut, "no API key with id 999") {
		t.Errorf("roll of a missing key: %d %s", code, errOut)
	}
	if code, _, errOut := cli(t, "hmac", "create", "--project", "1", "--name", "weak", "--key", "abc"); code != 2 || strings.Contains(errOut, "abc") {
		t.Errorf("weak --key: exit %d %s", code, errOut)
	}
	code, out, _ = cli(t, "hmac", "create", "--project", "1", "--name", "fleet", "--json")
	var hk struct {
		ID      int64  `json:"id"`
		HMACKey string `json:"hmacKey"`
	}
	if err := json.Unmarshal([]byte(out), &hk); code != 0 || err != nil || len(hk.HMACKey) != 64 {
		t.Fatalf("hmac create: %d %q", code, out)
	}
	if code, out, _ := cli(t, "hmac", "roll", "--project", "1", "--id", fmt.Sprint(hk.ID), "--grace", "1h"); code != 0 || len(strings.TrimSpace(out)) != 64 {
		t.Errorf("hmac roll: %d %q", code, out)
	}
	code, out, _ = cli(t, "audit", "--project", "1", "--json")
	var trail struct {
		Events []keys.AuditEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &trail); code != 0 || err != nil {
		t.Fatalf("audit --json: %d %q", code, out)
	}
	var actions []string
	for _, e := range trail.Events {
		actions = append(actions, e.Target.Kind+":"+e.Action)
		if !strings.HasSuffix(e.Actor.Name, "(CLI)") {
			t.Errorf("CLI event actor = %+v", e.Actor)
		}
	}
	if got := strings.Join(actions, " "); got != "hmackey:roll hmackey:create apikey:roll apikey:create" {
		t.Errorf("audit actions newest first = %q", got)
	}
	if code, out, _ := cli(t, "audit", "--project", "1"); code != 0 || !strings.Contains(out, "ACTION") || !strings.Contains(out, "roll") {
		t.Errorf("audit (text): %d %s", code, out)
	}
}
