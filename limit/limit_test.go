package limit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testutil"
	"github.com/keygate/keygate/keys"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want keys.Limit
		bad  bool
	}{
		{"100/s burst 200", keys.Limit{Rate: 100, Period: time.Second, Burst: 200}, false},
		{"600/m", keys.Limit{Rate: 600, Period: time.Minute, Burst: 600}, false},
		{"5000/h burst 10", keys.Limit{Rate: 5000, Period: time.Hour, Burst: 10}, false},
		{" 10/S  BURST 5 ", keys.Limit{Rate: 10, Period: time.Second, Burst: 5}, false},
		{"off", keys.Limit{}, false},
		{"", keys.Limit{}, false},
		{"100", keys.Limit{}, true},
		{"100/d", keys.Limit{}, true},
		{"-1/s", keys.Limit{}, true},
		{"10/s burst", keys.Limit{}, true},
		{"10/s burst 0", keys.Limit{}, true},
		{"10/s bust 5", keys.Limit{}, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v bad=%v", tt.in, got, err, tt.want, tt.bad)
		}
		if err == nil && !got.IsZero() {
			back, err := Parse(Format(got))
			if err != nil || back != got {
				t.Errorf("Format round trip of %+v: %q", got, Format(got))
			}
		}
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestLocalBurstThenRefill(t *testing.T) {
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	e := NewLocal(10, c.Now)
	l := keys.Limit{Rate: 10, Period: time.Second, Burst: 5}
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		r, _ := e.Allow(ctx, "k", l)
		if !r.Allowed || r.Remaining != 4-i {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	r, _ := e.Allow(ctx, "k", l)
	if r.Allowed || r.RetryAfter <= 0 || r.RetryAfter > 100*time.Millisecond {
		t.Fatalf("over the burst: %+v", r)
	}
	if r.ResetAfter < 400*time.Millisecond || r.ResetAfter > 500*time.Millisecond {
		t.Errorf("reset after %v, want ~0.5s (5 tokens at 10/s)", r.ResetAfter)
	}
	c.Advance(100 * time.Millisecond) // one token back
	if r, _ := e.Allow(ctx, "k", l); !r.Allowed {
		t.Errorf("after 100ms at 10/s: %+v", r)
	}
	if r, _ := e.Allow(ctx, "k", l); r.Allowed {
		t.Errorf("second request after 100ms allowed")
	}
	// Other keys have their own buckets.
	if r, _ := e.Allow(ctx, "other", l); !r.Allowed {
		t.Error("another key was limited")
	}
	// Over one simulated minute, the allowed count is burst + rate*time.
	allowed := 0
	for i := 0; i < 6000; i++ {
		c.Advance(10 * time.Millisecond)
		if r, _ := e.Allow(ctx, "long", l); r.Allowed {
			allowed++
		}
	}
	if allowed < 600 || allowed > 605 {
		t.Errorf("%d allowed in 60s at 10/s burst 5", allowed)
	}
	// A changed limit takes effect at once.
	if r, _ := e.Allow(ctx, "k", keys.Limit{Rate: 1000, Period: time.Second, Burst: 1000}); !r.Allowed {
		t.Error("raised limit not applied")
	}
}

func TestLocalBounded(t *testing.T) {
	e := NewLocal(100, nil)
	l := keys.Limit{Rate: 1, Period: time.Hour, Burst: 1}
	for i := 0; i < 1000; i++ {
		e.Allow(context.Background(), string(rune('a'+i%26))+time.Duration(i).String(), l)
	}
	if n := e.buckets.Len(); n > 100 {
		t.Errorf("%d buckets kept, bound is 100", n)
	}
}

// TestRedisSharedLimit runs two engines with separate connections (two replicas) against one Redis:
// together they allow burst + rate×elapsed, not twice that. The window is measured, not assumed.
func TestRedisSharedLimit(t *testing.T) {
	srv := redistest.Start(t)
	l := keys.Limit{Rate: 50, Period: time.Second, Burst: 20}
	var engines []*Redis
	for i := 0; i < 2; i++ {
		rdb, err := keys.NewRedisClient(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer rdb.Close()
		engines = append(engines, NewRedis(rdb))
	}
	ctx := context.Background()
	var allowed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			e := engines[w%2]
			for i := 0; i < 150; i++ {
				r, err := e.Allow(ctx, "kg:{p1}:project:1", l)
				if err != nil {
					t.Error(err)
					return
				}
				if r.Allowed {
					allowed.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	maxAllowed := float64(l.Burst) + elapsed.Seconds()*float64(l.Rate)
	got := float64(allowed.Load())
	t.Logf("%d of 600 allowed in %v by two replicas (one limit allows %.0f)", allowed.Load(), elapsed, maxAllowed)
	// Stated tolerance: 5% over the limit's allowance (+1 for the request in flight at the edge).
	if got > maxAllowed*1.05+1 {
		t.Errorf("two replicas allowed %.0f, one shared limit allows %.0f", got, maxAllowed)
	}
	if got < float64(l.Burst) {
		t.Errorf("only %.0f allowed, less than the burst", got)
	}
	r, _ := engines[0].Allow(ctx, "kg:{p1}:project:1", l)
	if !r.Allowed && (r.RetryAfter <= 0 || r.RetryAfter > time.Second) {
		t.Errorf("retry after %v", r.RetryAfter)
	}
}

func TestFallbackWhenRedisIsDown(t *testing.T) {
	srv := redistest.Start(t)
	rdb, err := keys.NewRedisClient(srv.URL() + "?dial_timeout=200ms&read_timeout=200ms&max_retries=0")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	var fallbacks atomic.Int64
	f := &Fallback{Primary: NewRedis(rdb), Secondary: NewLocal(10, nil), Backoff: 50 * time.Millisecond, OnFallback: func() { fallbacks.Add(1) }}
	l := keys.Limit{Rate: 1, Period: time.Hour, Burst: 3}
	ctx := context.Background()
	if r, err := f.Allow(ctx, "k", l); err != nil || !r.Allowed {
		t.Fatal(r, err)
	}
	srv.Stop()
	allowed := 0
	for i := 0; i < 10; i++ {
		r, err := f.Allow(ctx, "k", l)
		if err != nil {
			t.Fatalf("fallback returned an error: %v", err)
		}
		if r.Allowed {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("with Redis down, %d of 10 allowed; the local bucket allows its burst of 3, never unlimited", allowed)
	}
	if fallbacks.Load() != 10 {
		t.Errorf("%d fallback decisions counted, want 10", fallbacks.Load())
	}
	srv.Restart()
	testutil.Eventually(t, 10*time.Second, func() bool {
		before := fallbacks.Load()
		r, err := f.Allow(ctx, "fresh", l)
		return err == nil && r.Allowed && fallbacks.Load() == before // answered by Redis again
	}, "did not go back to Redis after it restarted")
}

func TestRedisErrorIsReported(t *testing.T) {
	srv := redistest.Start(t)
	rdb, _ := keys.NewRedisClient(srv.URL() + "?dial_timeout=100ms&max_retries=0")
	defer rdb.Close()
	srv.Stop()
	if _, err := NewRedis(rdb).Allow(context.Background(), "k", keys.Limit{Rate: 1, Period: time.Second, Burst: 1}); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}
