package limit

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/keys"
)

// Redis is the distributed Engine: GCRA in Redis (redis_rate), timed by Redis's clock, so every
// replica draws from one bucket per key.
type Redis struct {
	lim *redis_rate.Limiter
}

// NewRedis uses a go-redis client (standalone, Sentinel or Cluster).
func NewRedis(rdb redis.UniversalClient) *Redis { return &Redis{lim: redis_rate.NewLimiter(rdb)} }

// Allow implements Engine.
func (e *Redis) Allow(ctx context.Context, key string, l keys.Limit) (Result, error) {
	r, err := e.lim.Allow(ctx, key, redis_rate.Limit{Rate: l.Rate, Burst: l.Burst, Period: l.Period})
	if err != nil {
		return Result{}, fmt.Errorf("rate limit: %w", err)
	}
	res := Result{Allowed: r.Allowed > 0, Limit: l, Remaining: r.Remaining, ResetAfter: r.ResetAfter}
	if !res.Allowed {
		res.RetryAfter = r.RetryAfter
	}
	return res, nil
}

// Fallback uses Primary (Redis) and, while it fails, Secondary (local): never unlimited, never a
// 5xx storm. After a failure Primary is skipped for Backoff so an outage costs no timeouts per
// request; then it is tried again, so recovery is automatic.
type Fallback struct {
	Primary, Secondary Engine
	Backoff            time.Duration
	// OnFallback is called for each decision the Secondary makes (a metric).
	OnFallback func()
	downUntil  atomic.Int64
}

// Allow implements Engine.
func (f *Fallback) Allow(ctx context.Context, key string, l keys.Limit) (Result, error) {
	if time.Now().UnixNano() >= f.downUntil.Load() {
		r, err := f.Primary.Allow(ctx, key, l)
		if err == nil {
			return r, nil
		}
		b := f.Backoff
		if b <= 0 {
			b = time.Second
		}
		f.downUntil.Store(time.Now().Add(b).UnixNano())
	}
	if f.OnFallback != nil {
		f.OnFallback()
	}
	return f.Secondary.Allow(ctx, key, l)
}
