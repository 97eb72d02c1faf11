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
