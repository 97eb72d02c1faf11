package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/keys"
)

// TestMetricsFromStart: on Redis, /metrics has build info, store_up, the Redis pool statistics and
// zero-valued request series with a code label before any request.
func TestMetricsFromStart(t *testing.T) {
	srv := redistest.Start(t)
	sc, _ := redisStoreConfig(t, srv)
	up := newUpstream(t)
	cfg := Config{StoreConfig: sc}
	if err := envDefaults(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.StudioListen, cfg.IngestionListen, cfg.OpsListen, cfg.StudioUpstream = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", up.URL
	cfg.AccessLog = false
	a, _ := runServer(t, cfg, io.Discard)
	r := do(t, "GET", "http://"+a["ops"]+"/metrics", "", nil)
	for _, want := range []string{
		`keygate_build_info{goversion="go`, "keygate_store_up 1",
		`keygate_requests_total{class="read",code="5xx",face="studio",outcome="forwarded"} 0`,
		`keygate_requests_total{class="none",code="4xx",face="studio",outcome="not_found"} 0`,
		"keygate_redis_pool_hits_total ", "keygate_redis_pool_misses_total ", "keygate_redis_pool_timeouts_total ",
		"keygate_redis_pool_connections ", "keygate_redis_pool_idle_connections ",
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(r.body, `face="ingestion"`) {
		t.Error("series for a face that is off")
	}
}

// TestRedisLoggerStructured: go-redis's own lines come out through the slog handler as JSON.
func TestRedisLoggerStructured(t *testing.T) {
	var b bytes.Buffer
	l := redisLogger{slog.New(slog.NewJSONHandler(&b, nil))}
	l.Printf(context.Background(), "redis: %s:%d: connection pool: failed to dial redis://:secret@host:6379", "pool.go", 770)
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %q", b.String())
	}
	if m["component"] != "go-redis" || m["level"] != "WARN" || !strings.Contains(m["msg"].(string), "failed to dial") {
		t.Errorf("line %v", m)
	}
	if strings.Contains(b.String(), "secret") {
		t.Errorf("password in the log: %s", b.String())
	}
}

// TestUpstreamIdleConnectionsMetric: with the fast transport, /metrics counts the idle upstream
// connections (one after a proxied request, none before); the std transport has no such count.
func TestUpstreamIdleConnectionsMetric(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range []struct {
		kind          string
		before, after string // "" for absent
	}{
		{"fast", "keygate_upstream_idle_connections 0", "keygate_upstream_idle_connections 1"},
		{"std", "", ""},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			sc, store := redisStoreConfig(t, srv)
			key, _ := mkKey(t, store, 1, keys.RoleAdmin)
			up := newUpstream(t)
			g := startGateway(t, sc, up.URL, func(c *Config) { c.UpstreamTransport = tc.kind })
			metric := func() string {
				for _, l := range strings.Split(do(t, "GET", g.ops+"/metrics", "", nil).body, "\n") {
					if strings.HasPrefix(l, "keygate_upstream_idle_connections ") {
						return l
					}
				}
				return ""
			}
			if got := metric(); got != tc.before {
				t.Errorf("before: %q, want %q", got, tc.before)
			}
			if r := do(t, "GET", g.studio+"/v1/api/1/raw-data", key, nil); r.status != 200 {
				t.Fatalf("proxied GET: %d %s", r.status, r.body)
			}
			if got := metric(); got != tc.after {
				t.Errorf("after a proxied request: %q, want %q", got, tc.after)
			}
		})
	}
}
