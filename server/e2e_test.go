package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testutil"
	"github.com/keygate/keygate/keys"
)

// upstreamRecorder is a real HTTP upstream that records what reached it.
type upstreamRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

func newUpstream(t *testing.T) *upstreamRecorder {
	t.Helper()
	u := &upstreamRecorder{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, recorded{r.Method, r.URL.Path, r.Header.Clone(), b})
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"success":true,"path":%q}`, r.URL.Path)
	}))
	t.Cleanup(u.Close)
	return u
}

var keyRE = regexp.MustCompile(`ei_[0-9a-f]{64}`)

func (u *upstreamRecorder) last() recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		return recorded{}
	}
	return u.reqs[len(u.reqs)-1]
}

func (u *upstreamRecorder) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

type gw struct {
	studio, ingestion, ops string
	stop                   func()
}

// startGateway runs a Server in-process on free loopback ports.
func startGateway(t *testing.T, store StoreConfig, upstream string, mod func(*Config)) gw {
	t.Helper()
	cfg := Config{StoreConfig: store}
	if err := envDefaults(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.StudioListen, cfg.IngestionListen, cfg.OpsListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.StudioUpstream, cfg.IngestionUpstream = upstream, upstream
	cfg.AccessLog = false
	if mod != nil {
		mod(&cfg)
	}
	a, stop := runServer(t, cfg, io.Discard)
	return gw{studio: "http://" + a["studio"], ingestion: "http://" + a["ingestion"], ops: "http://" + a["ops"], stop: stop}
}

// runServer starts New(cfg).Run and waits until it listens; stop ends it and fails the test if Run
// failed. The test's cleanup stops it too.
func runServer(t *testing.T, cfg Config, logOut io.Writer) (addrs map[string]string, stop func()) {
	t.Helper()
	ready := make(chan map[string]string, 1)
	s, err := New(cfg, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), LogOutput: logOut,
		OnReady: func(a map[string]string) { ready <- a }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case a := <-ready:
		return a, stop
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("keygate did not start")
	}
	return nil, stop
}

// envDefaults fills cfg's zero fields with their envDefault values.
func envDefaults(cfg *Config) error {
	base, err := LoadDefaults()
	if err != nil {
		return err
	}
	sc := cfg.StoreConfig
	*cfg = base
	cfg.StoreConfig = sc
	return nil
}

type resp struct {
	status int
	body   string
	header http.Header
}

func do(t *testing.T, method, url, key string, body io.Reader, hdr ...string) resp {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, string(b), res.Header}
}

func mkKey(t *testing.T, s keys.Store, pid int64, role keys.Role) (string, keys.APIKey) {
	t.Helper()
	k, _ := keys.GenerateAPIKey()
	ak, err := s.CreateAPIKey(context.Background(), keys.NewAPIKey{ProjectID: pid, Name: role.String(), Role: role, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	return k, ak
}

func redisStoreConfig(t *testing.T, srv *redistest.Server) (StoreConfig, keys.Store) {
	t.Helper()
	sc := StoreConfig{RedisURL: srv.URL() + "?dial_timeout=300ms&read_timeout=300ms&write_timeout=300ms&max_retries=1"}
	s, err := sc.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return sc, s
}

func TestGatewayRoleMatrix(t *testing.T) {
	srv := redistest.Start(t)
	sc, store := redisStoreConfig(t, srv)
	up := newUpstream(t)
	g := startGateway(t, sc, up.URL, nil)

	roleKeys := map[keys.Role]string{}
	for _, r := range keys.Roles {
		roleKeys[r], _ = mkKey(t, store, 1, r)
	}
	other, _ := mkKey(t, store, 2, keys.RoleAdmin)

	// One request per endpoint class: read, add data, deploy, admin (remote is the websocket face).
	type req struct {
		class        string
		method, url  string
		localOrProxy string
	}
	reqs := []req{
		{"read", "GET", g.studio + "/v1/api/1/raw-data", "proxy"},
		{"add data (studio)", "POST", g.studio + "/v1/api/1/raw-data/7/rename", "proxy"},
		{"add data (ingestion)", "POST", g.ingestion + "/api/training/data", "proxy"},
		{"deploy", "POST", g.studio + "/v1/api/1/jobs/build-ondevice-model", "proxy"},
		{"admin (forwarded)", "POST", g.studio + "/v1/api/1/jobs/train/keras/1", "proxy"},
		{"admin (keys)", "GET", g.studio + "/v1/api/1/apikeys", "local"},
	}
	allowed := map[keys.Role][]bool{
		keys.RoleAdmin:               {true, true, true, true, true, true},
		keys.RoleIngestionDeployment: {true, true, true, true, false, false},
		keys.RoleIngestion:           {true, true, true, false, false, false},
		keys.RoleReadOnly:            {true, false, false, false, false, false},
	}
	for _, role := range keys.Roles {
		for i, rq := range reqs {
			t.Run(role.String()+"/"+rq.class, func(t *testing.T) {
				before := up.count()
				r := do(t, rq.method, rq.url, roleKeys[role], strings.NewReader(`{}`), "Content-Type", "application/json")
				want := http.StatusForbidden
				if allowed[role][i] {
					want = http.StatusOK
				}
				if r.status != want {
					t.Fatalf("%s %s as %s: %d %s, want %d", rq.method, rq.url, role, r.status, r.body, want)
				}
				reached := up.count() > before
				if reached != (want == 200 && rq.localOrProxy == "proxy") {
					t.Errorf("upstream reached = %v", reached)
				}
				if want == 403 && !strings.Contains(r.body, `"success":false`) {
					t.Errorf("403 body %q", r.body)
				}
				if want == 200 && rq.localOrProxy == "proxy" {
					h := up.last().Header
					if h.Get("X-Keygate-Project") != "1" || h.Get("X-Keygate-Role") != role.String() || h.Get("X-Keygate-Key-Id") == "" {
						t.Errorf("identity headers %v", h)
					}
				}
			})
		}
	}

	t.Run("cross project", func(t *testing.T) {
		for _, u := range []string{"/v1/api/1/raw-data", "/v1/api/1/apikeys", "/v1/api/1"} {
			r := do(t, "GET", g.studio+u, other, nil)
			if r.status != 403 || !strings.Contains(r.body, "belongs to project 2, not project 1") {
				t.Errorf("GET %s with a project-2 key: %d %s", u, r.status, r.body)
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name, method, url, key string
			status                 int
			says                   string
		}{
			{"no key", "GET", g.studio + "/v1/api/1/raw-data", "", 401, "missing x-api-key"},
			{"unknown key", "GET", g.studio + "/v1/api/1/raw-data", "ei_" + strings.Repeat("f", 64), 401, "unknown or revoked"},
			{"garbage key", "GET", g.studio + "/v1/api/1/raw-data", "hello", 401, "unknown or revoked"},
			{"unknown route", "GET", g.studio + "/nothing", roleKeys[keys.RoleAdmin], 404, "no such endpoint"},
			{"ingestion GET", "GET", g.ingestion + "/api/training/files", roleKeys[keys.RoleAdmin], 404, "no such endpoint"},
			{"dot segments", "GET", g.studio + "/v1/api/1/%2e%2e/2/apikeys", roleKeys[keys.RoleAdmin], 400, "dot segments"},
			{"encoded slash", "GET", g.studio + "/v1/api/2%2fapikeys", roleKeys[keys.RoleAdmin], 400, "encoded slashes"},
		}
		for _, tt := range tests {
			r := do(t, tt.method, tt.url, tt.key, nil)
			if r.status != tt.status || !strings.Contains(r.body, tt.says) || !strings.Contains(r.body, `"success":false`) {
				t.Errorf("%s: %d %s, want %d saying %q", tt.name, r.status, r.body, tt.status, tt.says)
			}
			if tt.key != "" && strings.Contains(r.body, tt.key) {
				t.Errorf("%s: the key is echoed", tt.name)
			}
		}
	})
	t.Run("spoofed identity headers and hop-by-hop tricks", func(t *testing.T) {
		r := do(t, "GET", g.studio+"/v1/api/1/raw-data", roleKeys[keys.RoleReadOnly], nil,
			"X-Keygate-Role", "admin", "X-Keygate-Project", "2", "x-keygate-key-id", "1", "Connection", "X-Keygate-Role, X-Keygate-Project")
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		h := up.last().Header
		if got := h.Values("X-Keygate-Role"); len(got) != 1 || got[0] != "readonly" {
			t.Errorf("X-Keygate-Role reaching upstream: %v", got)
		}
		if got := h.Values("X-Keygate-Project"); len(got) != 1 || got[0] != "1" {
			t.Errorf("X-Keygate-Project reaching upstream: %v", got)
		}
		if h.Get("X-Api-Key") == "" {
			t.Error("x-api-key was stripped although KEYGATE_STRIP_API_KEY is off")
		}
	})
	t.Run("path forwarded as judged", func(t *testing.T) {
		r := do(t, "GET", g.studio+"/v1/api/1/raw-d%61ta?x=1", roleKeys[keys.RoleReadOnly], nil)
		if r.status != 200 || up.last().Path != "/v1/api/1/raw-data" {
			t.Errorf("%d, upstream saw %q", r.status, up.last().Path)
		}
		// Empty segments are refused, not collapsed: Express keeps them, Tomcat collapses them.
		if r := do(t, "GET", g.studio+"//v1//api/1/raw-data", roleKeys[keys.RoleReadOnly], nil); r.status != 400 {
			t.Errorf("//v1//api/1/raw-data: %d %s", r.status, r.body)
		}
	})
	t.Run("management API", func(t *testing.T) {
		admin := roleKeys[keys.RoleAdmin]
		r := do(t, "POST", g.studio+"/v1/api/1/apikeys", admin, strings.NewReader(`{"name":"new","role":"readonly","isDevelopmentKey":true}`))
		var created struct {
			Success bool
			ID      int64
			APIKey  string
		}
		if r.status != 200 || json.Unmarshal([]byte(r.body), &created) != nil || !created.Success || !keyRE.MatchString(created.APIKey) {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		r = do(t, "GET", g.studio+"/v1/api/1/devkeys", admin, nil)
		if !strings.Contains(r.body, created.APIKey) {
			t.Errorf("devkeys does not return the development key: %s", r.body)
		}
		r = do(t, "GET", g.studio+"/v1/api/projects/api-key-info", created.APIKey, nil)
		if r.status != 200 || !strings.Contains(r.body, `"role":"readonly"`) || !strings.Contains(r.body, fmt.Sprintf(`"apiKeyId":%d`, created.ID)) {
			t.Errorf("api-key-info: %d %s", r.status, r.body)
		}
		r = do(t, "POST", g.studio+"/v1/api/1/apikeys/ingestiononly", admin, strings.NewReader(`{"name":"ing"}`))
		var ing struct{ ID int64 }
		json.Unmarshal([]byte(r.body), &ing)
		if r.status != 200 || ing.ID == 0 {
			t.Fatalf("create ingestiononly: %d %s", r.status, r.body)
		}
		r = do(t, "DELETE", fmt.Sprintf("%s/v1/api/1/apikeys/ingestiononly/%d", g.studio, created.ID), admin, nil)
		if r.status != 400 || !strings.Contains(r.body, `"success":false`) {
			t.Errorf("deleting a readonly key through ingestiononly: %d %s", r.status, r.body)
		}
		r = do(t, "DELETE", fmt.Sprintf("%s/v1/api/1/apikeys/ingestiononly/%d", g.studio, ing.ID), admin, nil)
		if r.status != 200 {
			t.Errorf("delete ingestiononly: %d %s", r.status, r.body)
		}
		for _, bad := range []struct{ body, says string }{
			{`{"name":"x","role":"root"}`, "unknown role"},
			{`{"name":"","role":"admin"}`, "name is required"},
			{`{"name":"x","role":"admin","apiKey":"ei_short"}`, "at least 32"},
			{`not json`, "not valid JSON"},
		} {
			r = do(t, "POST", g.studio+"/v1/api/1/apikeys", admin, strings.NewReader(bad.body))
			if r.status != 400 || !strings.Contains(r.body, bad.says) {
				t.Errorf("POST %s: %d %s", bad.body, r.status, r.body)
			}
		}
		r = do(t, "POST", g.studio+"/v1/api/1/hmackeys", admin, strings.NewReader(`{"name":"h","hmacKey":"my-fleet-secret-2026","isDevelopmentKey":true}`))
		if r.status != 200 {
			t.Errorf("hmac create: %d %s", r.status, r.body)
		}
		r = do(t, "GET", g.studio+"/v1/api/1/devkeys/hmac", admin, nil)
		if r.status != 200 || !strings.Contains(r.body, `"hmacKey":"my-fleet-secret-2026"`) {
			t.Errorf("devkeys/hmac: %d %s", r.status, r.body)
		}
		r = do(t, "DELETE", g.studio+"/v1/api/1/apikeys/999999", admin, nil)
		if r.status != 404 {
			t.Errorf("revoke unknown: %d %s", r.status, r.body)
		}
	})
	t.Run("ops", func(t *testing.T) {
		if r := do(t, "GET", g.ops+"/readyz", "", nil); r.status != 200 {
			t.Errorf("readyz %d %s", r.status, r.body)
		}
		r := do(t, "GET", g.ops+"/metrics", "", nil)
		if r.status != 200 || !strings.Contains(r.body, `keygate_requests_total{class="read",code="2xx",face="studio",outcome="forwarded"}`) || !strings.Contains(r.body, "keygate_cache_hits_total") {
			t.Errorf("metrics missing series")
		}
		for _, path := range []string{"/healthz", "/readyz", "/metrics", "/nowhere"} {
			if r := do(t, "GET", g.ops+path, "", nil); r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("ops %s: X-Content-Type-Options %q", path, r.header.Get("X-Content-Type-Options"))
			}
		}
	})
}

func TestRevocationReachesOtherReplica(t *testing.T) {
	srv := redistest.Start(t)
	sc, store := redisStoreConfig(t, srv)
	up := newUpstream(t)
	a := startGateway(t, sc, up.URL, nil)
	b := startGateway(t, sc, up.URL, func(c *Config) { c.CacheTTL = time.Hour })
	admin, _ := mkKey(t, store, 1, keys.RoleAdmin)
	victim, ak := mkKey(t, store, 1, keys.RoleReadOnly)
	if r := do(t, "GET", b.studio+"/v1/api/1/raw-data", victim, nil); r.status != 200 {
		t.Fatalf("before revoke: %d", r.status)
	}
	start := time.Now()
	if r := do(t, "DELETE", fmt.Sprintf("%s/v1/api/1/apikeys/%d", a.studio, ak.ID), admin, nil); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	testutil.Eventually(t, 2*time.Second, func() bool {
		return do(t, "GET", b.studio+"/v1/api/1/raw-data", victim, nil).status == 401
	}, "replica B still accepts the revoked key although its cache TTL is 1h")
	t.Logf("revocation honoured by the other replica after %v", time.Since(start))
}

func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	sc, store := redisStoreConfig(t, srv)
	up := newUpstream(t)
	g := startGateway(t, sc, up.URL, func(c *Config) { c.CacheTTL = time.Hour })
	cached, _ := mkKey(t, store, 1, keys.RoleReadOnly)
	uncached, _ := mkKey(t, store, 1, keys.RoleAdmin)
	// Use the key until it is served from the cache (its creation announcement may land after the
	// first lookup, which is then not cached).
	testutil.Eventually(t, 5*time.Second, func() bool {
		before := metricValue(t, g, "keygate_cache_hits_total")
		if r := do(t, "GET", g.studio+"/v1/api/1/raw-data", cached, nil); r.status != 200 {
			t.Fatal(r.status)
		}
		return metricValue(t, g, "keygate_cache_hits_total") > before
	}, "key never served from the cache")

	srv.Stop()
	// Readiness says "degraded" but stays 200 (cached keys still pass), answered from the
	// background checker's state at once; the gauge says the store is down.
	testutil.Eventually(t, 5*time.Second, func() bool {
		return metricValue(t, g, "keygate_store_up") == 0
	}, "keygate_store_up not 0 with Redis down")
	// (That the answer never waits on the store is TestReadiness's: timing it here would only
	// measure the machine's load.)
	if r := do(t, "GET", g.ops+"/readyz", "", nil); r.status != 200 || !strings.Contains(r.body, `"status":"degraded"`) {
		t.Errorf("readyz with Redis down after start: %d %s; want 200 degraded", r.status, r.body)
	}
	for i := 0; i < 5; i++ {
		if r := do(t, "GET", g.studio+"/v1/api/1/raw-data", cached, nil); r.status != 200 {
			t.Errorf("cached key with Redis down: %d %s", r.status, r.body)
		}
		r := do(t, "GET", g.studio+"/v1/api/1/raw-data", uncached, nil)
		if r.status != 503 || r.header.Get("Retry-After") == "" {
			t.Errorf("uncached key with Redis down: %d %s (Retry-After %q); want 503 with Retry-After", r.status, r.body, r.header.Get("Retry-After"))
		}
		if r := do(t, "GET", g.studio+"/v1/api/1/raw-data", "ei_"+strings.Repeat("a", 64), nil); r.status != 503 {
			t.Errorf("unknown key with Redis down: %d; must be 503, not a cached 401 or a pass", r.status)
		}
		// Cached keys still cannot exceed their role while Redis is down.
		if r := do(t, "POST", g.studio+"/v1/api/1/raw-data/1/rename", cached, nil); r.status != 403 {
			t.Errorf("read-only write with Redis down: %d", r.status)
		}
	}

	srv.Restart() // a fresh, empty Redis: the keys are gone, and the gateway must notice.
	_, sstore := redisStoreConfig(t, srv)
	fresh, _ := mkKey(t, sstore, 1, keys.RoleAdmin)
	testutil.Eventually(t, 10*time.Second, func() bool {
		return do(t, "GET", g.studio+"/v1/api/1/raw-data", fresh, nil).status == 200
	}, "no recovery after Redis restarted")
	// The re-subscription resynced the cache: the old key (gone from the new Redis) is refused.
	testutil.Eventually(t, 5*time.Second, func() bool {
		return do(t, "GET", g.studio+"/v1/api/1/raw-data", cached, nil).status == 401
	}, "cached key survived the resync")
	testutil.Eventually(t, 5*time.Second, func() bool {
		r := do(t, "GET", g.ops+"/readyz", "", nil)
		return r.status == 200 && strings.Contains(r.body, `"status":"ready"`) && metricValue(t, g, "keygate_store_up") == 1
	}, "readyz not back to ready after recovery")
}

func TestUpstreamFailures(t *testing.T) {
	sc := StoreConfig{DataDir: t.TempDir()}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	store, err := sc.Open()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := mkKey(t, store, 1, keys.RoleAdmin)
	store.Close()

	g := startGateway(t, sc, deadURL, func(c *Config) {
		c.IngestionUpstream = slow.URL
		c.UpstreamTimeout = 200 * time.Millisecond
	})
	if r := do(t, "GET", g.studio+"/v1/api/1/raw-data", key, nil); r.status != 502 || !strings.Contains(r.body, `"success":false`) {
		t.Errorf("dead upstream: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", g.ingestion+"/api/training/data", key, strings.NewReader("x")); r.status != 504 || !strings.Contains(r.body, "did not answer in time") {
		t.Errorf("slow upstream: %d %s", r.status, r.body)
	}
	g.stop()
}

// TestGracefulShutdown: SIGTERM (the serve context ending) lets in-flight requests finish and
// turns /readyz to 503 while draining.
func TestGracefulShutdown(t *testing.T) {
	sc := StoreConfig{DataDir: t.TempDir()}
	store, err := sc.Open()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := mkKey(t, store, 1, keys.RoleAdmin)
	store.Close()
	inFlight := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inFlight)
		<-release
		w.Write([]byte(`{"success":true}`))
	}))
	defer slow.Close()
	defer free() // never leave the upstream handler blocked, even when the test fails
	g := startGateway(t, sc, slow.URL, nil)
	done := make(chan resp, 1)
	go func() { done <- do(t, "GET", g.studio+"/v1/api/1/raw-data", key, nil) }()
	<-inFlight
	stopped := make(chan struct{})
	go func() { g.stop(); close(stopped) }()
	// While draining, readiness fails so load balancers stop sending.
	testutil.Eventually(t, 5*time.Second, func() bool {
		r := do(t, "GET", g.ops+"/readyz", "", nil)
		return r.status == 503 && strings.Contains(r.body, "draining")
	}, "readyz did not turn 503 while draining")
	select {
	case <-stopped:
		t.Fatal("serve returned while a request was in flight")
	default:
	}
	free()
	if r := <-done; r.status != 200 {
		t.Errorf("in-flight request during shutdown: %d %s", r.status, r.body)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after draining")
	}
}
