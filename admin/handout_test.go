package admin

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keygate/keygate/keys"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	tokenA = "0123456789abcdef0123456789abcdef-token-a"
	tokenB = "fedcba9876543210fedcba9876543210-token-b"
)

type handoutEnv struct {
	h     *Handout
	store *keys.BoltStore
	reg   *prometheus.Registry
	log   *syncBuf
	clock *fakeClock
	file  string
	token *ServiceToken
}

func newHandoutEnv(t *testing.T, limit keys.Limit) *handoutEnv {
	t.Helper()
	store, err := keys.OpenBolt(t.TempDir(), newSealer(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &handoutEnv{store: store, reg: prometheus.NewRegistry(), log: &syncBuf{}, clock: &fakeClock{t: time.Unix(1_700_000_000, 0)}}
	e.file = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(e.file, []byte(tokenA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(e.log, nil))
	if e.token, err = LoadServiceToken(e.file, log); err != nil {
		t.Fatal(err)
	}
	e.token.now = e.clock.Now
	e.h, err = NewHandout(HandoutOptions{Store: store, Token: e.token, PerCaller: limit, Metrics: e.reg, Log: log, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *handoutEnv) get(t *testing.T, path, auth, from string) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(HandoutPattern, e.h)
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = from + ":40000"
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w
}

// counted reads keygate_devkey_handouts_total{outcome} from the registry the handout registered in.
func (e *handoutEnv) counted(t *testing.T, outcome string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "keygate_devkey_handouts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

func TestHandout(t *testing.T) {
	e := newHandoutEnv(t, keys.Limit{Rate: 1000, Period: time.Second, Burst: 1000})
	ctx := context.Background()
	devKey, _ := keys.GenerateAPIKey()
	if _, err := e.store.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: 1, Name: "dev", Role: keys.RoleIngestion, IsDevelopmentKey: true, Key: devKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CreateHMACKey(ctx, keys.NewHMACKey{ProjectID: 1, Name: "dev hmac", Secret: "hmac-secret-1", IsDevelopmentKey: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CreateHMACKey(ctx, keys.NewHMACKey{ProjectID: 3, Name: "dev hmac", Secret: "hmac-only", IsDevelopmentKey: true}); err != nil {
		t.Fatal(err)
	}
	plain, _ := keys.GenerateAPIKey()
	if _, err := e.store.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: 2, Name: "plain", Role: keys.RoleAdmin, Key: plain}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, auth string
		status           int
		has, hasNot      []string
	}{
		{"both keys", "/internal/projects/1/devkeys", "Bearer " + tokenA, 200, []string{`"success":true`, `"apiKey":"` + devKey + `"`, `"hmacKey":"hmac-secret-1"`}, nil},
		{"scheme in any case", "/internal/projects/1/devkeys", "bearer " + tokenA, 200, []string{devKey}, nil},
		{"hmac key only", "/internal/projects/3/devkeys", "Bearer " + tokenA, 200, []string{`"hmacKey":"hmac-only"`}, []string{"apiKey"}},
		{"no development keys", "/internal/projects/2/devkeys", "Bearer " + tokenA, 404, []string{`"success":false`, NoDevKeysMessage}, []string{"ei_"}},
		{"unknown project", "/internal/projects/99/devkeys", "Bearer " + tokenA, 404, []string{NoDevKeysMessage}, nil},
		{"no token", "/internal/projects/1/devkeys", "", 401, []string{`"success":false`, "service token"}, []string{"ei_", "hmac-secret"}},
		{"wrong token", "/internal/projects/1/devkeys", "Bearer " + tokenA + "x", 401, []string{"service token"}, []string{"ei_", "hmac-secret"}},
		{"token prefix", "/internal/projects/1/devkeys", "Bearer " + tokenA[:32], 401, nil, []string{"ei_"}},
		{"other scheme", "/internal/projects/1/devkeys", "Basic " + tokenA, 401, nil, []string{"ei_"}},
		{"wrong token, project without keys", "/internal/projects/2/devkeys", "Bearer nope", 401, nil, []string{NoDevKeysMessage}},
		{"bad project id", "/internal/projects/01/devkeys", "Bearer " + tokenA, 400, []string{"positive integer"}, nil},
		{"bad project id without token", "/internal/projects/abc/devkeys", "", 401, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := e.get(t, tc.path, tc.auth, "10.0.0.1")
			body := w.Body.String()
			if w.Code != tc.status {
				t.Fatalf("%d %s, want %d", w.Code, body, tc.status)
			}
			for _, s := range tc.has {
				if !strings.Contains(body, s) {
					t.Errorf("answer %s lacks %q", body, s)
				}
			}
			for _, s := range tc.hasNot {
				if strings.Contains(body, s) {
					t.Errorf("answer %s holds %q", body, s)
				}
			}
			if w.Header().Get("Cache-Control") != "no-store" && w.Code == 200 {
				t.Error("a hand-out may be cached")
			}
		})
	}
	if logged := e.log.String(); strings.Contains(logged, devKey) || strings.Contains(logged, tokenA) || strings.Contains(logged, "hmac-secret") {
		t.Errorf("the log holds a key or the token: %s", logged)
	}
	if !strings.Contains(e.log.String(), "outcome=handed_out") || !strings.Contains(e.log.String(), "caller=10.0.0.1") {
		t.Errorf("no log line per hand-out: %s", e.log.String())
	}
	for outcome, want := range map[string]float64{HandoutOK: 3, HandoutNone: 2, HandoutUnauthorized: 6, HandoutBadRequest: 1} {
		if got := e.counted(t, outcome); got != want {
			t.Errorf("keygate_devkey_handouts_total{outcome=%q} = %v, want %v", outcome, got, want)
		}
	}
	events, _, err := e.store.ListAudit(ctx, 1, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var ok, denied int
	for _, ev := range events {
		if ev.Action != AuditDevKeyHandout || ev.IPAddress != "10.0.0.1" {
			t.Errorf("audit event %+v", ev)
		}
		switch ev.Outcome {
		case keys.OutcomeSuccess:
			ok++
		case keys.OutcomeDenied:
			denied++
		}
	}
	if ok != 2 || denied != 4 {
		t.Errorf("project 1 audit: %d hand-outs and %d refusals, want 2 and 4", ok, denied)
	}

	t.Run("the flag moves, the key is revoked", func(t *testing.T) {
		second, _ := keys.GenerateAPIKey()
		ak, err := e.store.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: 1, Name: "dev2", Role: keys.RoleIngestion, IsDevelopmentKey: true, Key: second})
		if err != nil {
			t.Fatal(err)
		}
		if w := e.get(t, "/internal/projects/1/devkeys", "Bearer "+tokenA, "10.0.0.1"); w.Code != 200 || !strings.Contains(w.Body.String(), second) || strings.Contains(w.Body.String(), devKey) {
			t.Errorf("after the flag moved: %d %s", w.Code, w.Body)
		}
		if err := e.store.RevokeAPIKey(ctx, 1, ak.ID); err != nil {
			t.Fatal(err)
		}
		if w := e.get(t, "/internal/projects/1/devkeys", "Bearer "+tokenA, "10.0.0.1"); w.Code != 200 || strings.Contains(w.Body.String(), "ei_") {
			t.Errorf("after the revocation (only the HMAC key is left): %d %s", w.Code, w.Body)
		}
	})
}

func TestHandoutTokenRotation(t *testing.T) {
	e := newHandoutEnv(t, keys.Limit{Rate: 1000, Period: time.Second, Burst: 1000})
	k, _ := keys.GenerateAPIKey()
	if _, err := e.store.CreateAPIKey(context.Background(), keys.NewAPIKey{ProjectID: 1, Name: "dev", Role: keys.RoleIngestion, IsDevelopmentKey: true, Key: k}); err != nil {
		t.Fatal(err)
	}
	status := func(token string) int {
		return e.get(t, "/internal/projects/1/devkeys", "Bearer "+token, "10.0.0.2").Code
	}
	steps := []struct {
		name    string
		content string // written to the file before the step ("" = unchanged)
		a, b    int
	}{
		{"initial token", "", 200, 401},
		{"rotated", tokenB + "\n", 200, 401}, // within the re-check interval: not read yet
		{"rotated, a second later", "", 401, 200},
		{"rotation to a short token keeps the current one", "short\n", 401, 200},
		{"rotation to an empty file keeps it too", "\n", 401, 200},
		{"back to A", tokenA, 200, 401},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.content != "" {
				if err := os.WriteFile(e.file, []byte(st.content), 0o600); err != nil {
					t.Fatal(err)
				}
				// A different size or modification time marks the change; make sure of the latter.
				mt := e.clock.Now().Add(time.Duration(len(st.content)) * time.Hour)
				os.Chtimes(e.file, mt, mt)
				if st.name != "rotated" {
					e.clock.Advance(2 * time.Second)
				}
			} else {
				e.clock.Advance(2 * time.Second)
			}
			if a, b := status(tokenA), status(tokenB); a != st.a || b != st.b {
				t.Errorf("token A -> %d, token B -> %d; want %d and %d", a, b, st.a, st.b)
			}
		})
	}
	if !strings.Contains(e.log.String(), "holds no valid token") {
		t.Error("a broken rotation was not logged")
	}
}

func TestServiceTokenRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          string
	}{
		{"empty", "", "is empty"},
		{"whitespace", " \n", "is empty"},
		{"short", "0123456789abcdef0123456789abcde\n", "too short"},
		{"inner space", "0123456789abcdef 0123456789abcdef0\n", "printable ASCII"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			os.WriteFile(p, []byte(tc.content), 0o600)
			_, err := LoadServiceToken(p, nil)
			if err == nil || !strings.Contains(err.Error(), ServiceTokenEnv) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %s and saying %q", err, ServiceTokenEnv, tc.want)
			}
		})
	}
	if _, err := LoadServiceToken(filepath.Join(dir, "missing"), nil); err == nil || !strings.Contains(err.Error(), ServiceTokenEnv) {
		t.Errorf("missing file: %v", err)
	}
}

func TestHandoutRateLimitPerCaller(t *testing.T) {
	e := newHandoutEnv(t, keys.Limit{Rate: 1, Period: time.Second, Burst: 3})
	for i := 0; i < 3; i++ {
		if w := e.get(t, "/internal/projects/5/devkeys", "Bearer "+tokenA, "10.0.0.3"); w.Code != 404 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	w := e.get(t, "/internal/projects/6/devkeys", "Bearer "+tokenA, "10.0.0.3")
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), `"success":false`) {
		t.Errorf("over the limit: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if w := e.get(t, "/internal/projects/6/devkeys", "Bearer wrong", "10.0.0.3"); w.Code != 429 {
		t.Errorf("wrong token over the limit: %d (the limit applies before the token)", w.Code)
	}
	if w := e.get(t, "/internal/projects/6/devkeys", "Bearer "+tokenA, "10.0.0.4"); w.Code != 404 {
		t.Errorf("another caller: %d", w.Code)
	}
	e.clock.Advance(time.Second)
	if w := e.get(t, "/internal/projects/6/devkeys", "Bearer "+tokenA, "10.0.0.3"); w.Code != 404 {
		t.Errorf("a second later: %d", w.Code)
	}
	if got := e.counted(t, HandoutRateLimited); got != 2 {
		t.Errorf("rate_limited count %v, want 2", got)
	}
}
