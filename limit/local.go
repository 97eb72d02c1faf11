package limit

import (
	"context"
	"math"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/keygate/keygate/keys"
)

// Local is an in-process Engine: one x/time/rate bucket per key, in a bounded LRU (a flood of
// distinct keys evicts old buckets instead of growing without bound).
type Local struct {
	mu      sync.Mutex
	buckets *lru.Cache[string, *bucket]
	now     func() time.Time
}

type bucket struct {
	lim   *rate.Limiter
	limit keys.Limit
}

// NewLocal keeps at most size buckets (100000 when size <= 0); now is the clock (time.Now when nil).
func NewLocal(size int, now func() time.Time) *Local {
	if size <= 0 {
		size = 100000
	}
	if now == nil {
		now = time.Now
	}
	c, _ := lru.New[string, *bucket](size)
	return &Local{buckets: c, now: now}
}

func perSecond(l keys.Limit) rate.Limit {
	return rate.Limit(float64(l.Rate) / l.Period.Seconds())
}

// Allow implements Engine.
func (e *Local) Allow(_ context.Context, key string, l keys.Limit) (Result, error) {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.buckets.Get(key)
	if !ok || b.limit != l {
		b = &bucket{lim: rate.NewLimiter(perSecond(l), l.Burst), limit: l}
		b.lim.SetLimitAt(now, perSecond(l))
		e.buckets.Add(key, b)
	}
	res := Result{Limit: l}
	res.Allowed = b.lim.AllowN(now, 1)
	tokens := b.lim.TokensAt(now)
	res.Remaining = int(math.Max(0, math.Floor(tokens)))
	ps := float64(perSecond(l))
	res.ResetAfter = time.Duration((float64(l.Burst) - tokens) / ps * float64(time.Second))
	if !res.Allowed {
		res.RetryAfter = time.Duration((1 - tokens) / ps * float64(time.Second))
	}
	return res, nil
}
