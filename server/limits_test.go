package server

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testutil"
	"github.com/keygate/keygate/keys"
)

func TestRateLimitsAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	sc, store := redisStoreConfig(t, srv)
	up := newUpstream(t)
	ing, ak := mkKey(t, store, 1, keys.RoleIngestion)
	if _, err := store.UpdateSettings(context.Background(), 1, func(ps *keys.ProjectSettings) error {
		ps.Limit = keys.Limit{Rate: 10, Period: time.Second, Burst: 10}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	a := startGateway(t, sc, up.URL, nil)
	b := startGateway(t, sc, up.URL, nil)
	start := time.Now()
	ok, limited := 0, 0
	var last resp
	for i := 0; i < 60; i++ {
		g := a
		if i%2 == 1 {
			g = b
		}
		r := do(t, "POST", g.ingestion+"/api/training/data", ing, strings.NewReader("a,b\n"), "Content-Type", "text/csv")
		switch r.status {
		case 200:
			ok++
			if r.header.Get("RateLimit-Limit") != "10" || r.header.Get("RateLimit-Remaining") == "" {
				t.Errorf("allowed request without RateLimit headers: %v", r.header)
			}
		case 429:
			limited++
			last = r
		default:
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	elapsed := time.Since(start)
	allowance := 10 + 10*elapsed.Seconds()
	t.Logf("%d of 60 allowed in %v across two replicas; one 10/s burst-10 limit allows %.1f", ok, elapsed, allowance)
	if float64(ok) > allowance*1.05+1 || ok < 10 {
		t.Errorf("%d allowed; the shared limit allows %.1f", ok, allowance)
	}
	if limited == 0 {
		t.Fatal("nothing was limited")
	}
	if !strings.Contains(last.body, `"success":false`) || !strings.Contains(last.body, "rate limit exceeded for project 1") || strings.Contains(last.body, ing) {
		t.Errorf("429 body: %s", last.body)
	}
	if last.header.Get("Retry-After") == "" || last.header.Get("RateLimit-Remaining") != "0" || last.header.Get("RateLimit-Reset") == "" {
		t.Errorf("429 headers: %v", last.header)
	}

	// A per-key override is tighter than the project's.
	store.UpdateSettings(context.Background(), 1, func(ps *keys.ProjectSettings) error {
		ps.Limit = keys.Limit{}
		ps.KeyLimits = map[int64]keys.Limit{ak.ID: {Rate: 1, Period: time.Hour, Burst: 2}}
		return nil
	})
	testutil.Eventually(t, 5*time.Second, func() bool {
		r := do(t, "POST", a.ingestion+"/api/training/data", ing, strings.NewReader("a,b\n"), "Content-Type", "text/csv")
		return r.status == 429 && strings.Contains(r.body, "rate limit exceeded for key")
	}, "key override not applied")

	// Redis down: the local limiter takes over per replica (never unlimited, never a 5xx). Project 2
	// gets a limit that refills too slowly to matter (1 an hour, burst 50), so what the local bucket
	// allows does not depend on how fast the requests go: a loaded machine running the race detector
	// can take seconds for them, and a per-second limit refills meanwhile.
	other, _ := mkKey(t, store, 2, keys.RoleIngestion)
	const localBurst = 50
	if _, err := store.UpdateSettings(context.Background(), 2, func(ps *keys.ProjectSettings) error {
		ps.Limit = keys.Limit{Rate: 1, Period: time.Hour, Burst: localBurst}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Use the key until replica A answers it from its cache (the key's creation announcement may
	// land after the first lookup, which is then not cached).
	testutil.Eventually(t, 5*time.Second, func() bool {
		before := metricValue(t, a, "keygate_cache_hits_total")
		if r := do(t, "POST", a.ingestion+"/api/training/data", other, strings.NewReader("x"), "Content-Type", "text/csv"); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		return metricValue(t, a, "keygate_cache_hits_total") > before
	}, "key never served from the cache")
	srv.Stop()
	codes := map[int]int{}
	for i := 0; i < 400; i++ {
		r := do(t, "POST", a.ingestion+"/api/training/data", other, strings.NewReader("x"), "Content-Type", "text/csv")
		codes[r.status]++
		if r.status >= 500 && i == 0 {
			t.Logf("first 5xx: %s", r.body)
		}
	}
	if codes[429] == 0 || codes[200] == 0 || codes[200] > localBurst || codes[200]+codes[429] != 400 {
		t.Errorf("with Redis down: %v; want at most %d 200s (the local bucket), then 429s, no 5xx", codes, localBurst)
	}
	m := do(t, "GET", a.ops+"/metrics", "", nil)
	if !strings.Contains(m.body, "keygate_rate_limit_fallback_total") || strings.Contains(m.body, "keygate_rate_limit_fallback_total 0\n") {
		t.Error("fallback decisions not counted")
	}
}

// metricValue reads one unlabelled series from a gateway's /metrics.
func metricValue(t *testing.T, g gw, name string) float64 {
	t.Helper()
	r := do(t, "GET", g.ops+"/metrics", "", nil)
	for _, line := range strings.Split(r.body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
