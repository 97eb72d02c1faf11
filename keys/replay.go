package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisReplayGuard records accepted sample signatures in Redis, so every replica refuses a replay:
// one SET NX PX per sample (verify.ReplayGuard).
type RedisReplayGuard struct {
	rdb redis.UniversalClient
}

// NewRedisReplayGuard uses the Redis store's client (RedisStore.Client), so its marks live beside
// the keys, under the same project hash tag.
func NewRedisReplayGuard(rdb redis.UniversalClient) *RedisReplayGuard {
	return &RedisReplayGuard{rdb: rdb}
}

func seenKey(pid int64, sig string) string {
	return projKey(pid, "seen:"+sig)
}

// FirstSeen records sig and reports whether it was new.
func (g *RedisReplayGuard) FirstSeen(ctx context.Context, pid int64, sig string, ttl time.Duration) (bool, error) {
	ok, err := g.rdb.SetNX(ctx, seenKey(pid, sig), 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("replay guard: %w", err)
	}
	return ok, nil
}

// Forget removes sig.
func (g *RedisReplayGuard) Forget(ctx context.Context, pid int64, sig string) error {
	if err := g.rdb.Del(ctx, seenKey(pid, sig)).Err(); err != nil {
		return fmt.Errorf("replay guard: %w", err)
	}
	return nil
}
