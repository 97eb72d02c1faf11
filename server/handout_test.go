package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/keys"
)

// TestDevKeyHandoutOnOpsListener: with KEYGATE_SERVICE_TOKEN_FILE the ops listener hands out the
// current development keys for the token, on every replica at once; without it the path is 404;
// a short token refuses to start, naming the variable.
func TestDevKeyHandoutOnOpsListener(t *testing.T) {
	srv := redistest.Start(t)
	sc, store := redisStoreConfig(t, srv)
	up := newUpstream(t)
	token := strings.Repeat("s3rv1ce-", 5)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	on := func(c *Config) { c.ServiceTokenFile = file }
	a := startGateway(t, sc, up.URL, on)
	b := startGateway(t, sc, up.URL, on)
	off := startGateway(t, sc, up.URL, nil)

	ctx := context.Background()
	first, _ := keys.GenerateAPIKey()
	if _, err := store.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: 1, Name: "dev1", Role: keys.RoleIngestion, IsDevelopmentKey: true, Key: first}); err != nil {
		t.Fatal(err)
	}
	get := func(g gw, pid, tok string) resp {
		t.Helper()
		return do(t, "GET", g.ops+"/internal/projects/"+pid+"/devkeys", "", nil, "Authorization", "Bearer "+tok)
	}
	for name, g := range map[string]gw{"a": a, "b": b} {
		if r := get(g, "1", token); r.status != 200 || !strings.Contains(r.body, `"apiKey":"`+first+`"`) {
			t.Errorf("replica %s: %d %s", name, r.status, r.body)
		}
	}
	if r := get(a, "1", token+"x"); r.status != 401 || strings.Contains(r.body, "ei_") || !strings.Contains(r.body, `"success":false`) {
		t.Errorf("wrong token: %d %s", r.status, r.body)
	}
	if r := get(a, "2", token); r.status != 404 || !strings.Contains(r.body, "You don't have any development keys set") {
		t.Errorf("no development keys: %d %s", r.status, r.body)
	}
	// The flag moves through replica a's management API; replica b hands out the new key at once.
	adminKey, _ := mkKey(t, store, 1, keys.RoleAdmin)
	r := do(t, "POST", a.studio+"/v1/api/1/apikeys", adminKey, strings.NewReader(`{"name":"dev2","role":"ingestiononly","isDevelopmentKey":true}`), "Content-Type", "application/json")
	second := keyRE.FindString(r.body)
	if r.status != 200 || second == "" {
		t.Fatalf("create dev2: %d %s", r.status, r.body)
	}
	if r := get(b, "1", token); r.status != 200 || !strings.Contains(r.body, second) {
		t.Errorf("after the flag moved, replica b: %d %s", r.status, r.body)
	}
	if r := get(off, "1", token); r.status != 404 {
		t.Errorf("without KEYGATE_SERVICE_TOKEN_FILE: %d %s", r.status, r.body)
	}
	res, err := http.Get(a.ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(metrics), `keygate_devkey_handouts_total{outcome="handed_out"} 1`) ||
		!strings.Contains(string(metrics), `keygate_devkey_handouts_total{outcome="unauthorized"} 1`) {
		t.Errorf("hand-out metrics:\n%s", grepLines(string(metrics), "keygate_devkey_handouts_total"))
	}

	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("tooshort\n"), 0o600)
	cfg := Config{StoreConfig: sc}
	if err := envDefaults(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.ServiceTokenFile = short
	_, err = New(cfg, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var ce ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "KEYGATE_SERVICE_TOKEN_FILE") || strings.Contains(err.Error(), "tooshort") {
		t.Errorf("short token: %v, want a configuration error naming KEYGATE_SERVICE_TOKEN_FILE (and not the token)", err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
