package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// fakeDep is a dependency whose health the test sets.
type fakeDep struct {
	err   atomic.Pointer[error]
	calls atomic.Int64
}

func (f *fakeDep) set(err error) { f.err.Store(&err) }

func (f *fakeDep) Check(context.Context) error {
	f.calls.Add(1)
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// TestReadiness walks /readyz through start, an outage within and past the cache grace, recovery
// and the drain, answering from the checker's state.
func TestReadiness(t *testing.T) {
	logs := &syncBuffer{}
	var mu sync.Mutex
	clock := time.Unix(1700000000, 0)
	r := newReadiness(prometheus.NewRegistry(), slog.New(slog.NewTextHandler(logs, nil)), time.Minute)
	r.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	store, ann := &fakeDep{}, &fakeDep{}
	store.set(errors.New("dial tcp redis://user:secret@10.0.0.1:6379: connection refused"))
	ann.set(errors.New("change announcements not live yet"))

	answer := func() (int, string) {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	expect := func(step string, code int, status string) {
		t.Helper()
		c, body := answer()
		if c != code || !strings.Contains(body, `"status":"`+status+`"`) {
			t.Errorf("%s: %d %s; want %d %s", step, c, body, code, status)
		}
		if strings.Contains(body, "secret") {
			t.Errorf("%s: the answer quotes the store's credentials: %s", step, body)
		}
	}
	expect("before the first check", 503, "not ready")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(ctx, []dependency{{name: "store", check: store, storeUp: true}, {name: "announcements", check: ann}})
	}()
	defer func() { cancel(); <-done }()

	r.recheck(time.Second)
	expect("store never reached", 503, "not ready")
	store.set(nil)
	r.recheck(time.Second)
	expect("announcements not live yet", 503, "not ready")
	ann.set(nil)
	r.recheck(time.Second)
	expect("all up", 200, "ready")
	if v := gaugeValue(t, r.storeUp); v != 1 {
		t.Errorf("keygate_store_up %v while up", v)
	}

	store.set(errors.New("redis: connection refused"))
	r.recheck(time.Second)
	expect("store down after start", 200, "degraded")
	if v := gaugeValue(t, r.storeUp); v != 0 {
		t.Errorf("keygate_store_up %v while down", v)
	}
	// /readyz answers from the checker's state: asking it never reaches a dependency, so an
	// unreachable store cannot make the probe wait (the timing itself is a benchmark's business).
	before := store.calls.Load() + ann.calls.Load()
	for i := 0; i < 100; i++ {
		answer()
	}
	if n := store.calls.Load() + ann.calls.Load() - before; n != 0 {
		t.Errorf("100 /readyz answers called the dependencies %d times; want 0", n)
	}
	advance(59 * time.Second)
	r.recheck(time.Second)
	expect("within the cache grace", 200, "degraded")
	advance(2 * time.Second)
	expect("past the cache grace", 503, "unavailable")

	store.set(nil)
	r.recheck(time.Second)
	expect("store back", 200, "ready")
	out := logs.String()
	if !strings.Contains(out, `msg="store unreachable: serving cached keys"`) || !strings.Contains(out, `msg="store reachable again"`) || !strings.Contains(out, "down_for=1m1s") {
		t.Errorf("no log line for the store going down and coming back:\n%s", out)
	}
	if n := strings.Count(out, "store unreachable"); n != 1 {
		t.Errorf("%d lines for one outage, want 1:\n%s", n, out)
	}

	r.draining.Store(true)
	expect("draining", 503, "draining")
}
