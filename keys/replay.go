package keys

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// RedisReplayGuard records accepted sample signatures in Redis, so every replica refuses a replay:
// one SET NX PX per sample (verify.ReplayGuard).
type RedisReplayGuard struct {
	s *RedisStore
}

// NewRedisReplayGuard uses the store's client.
func NewRedisReplayGuard(s *RedisStore) *RedisReplayGuard { return &RedisReplayGuard{s: s} }

func seenKey(pid int64, sig string) string {
	return "kg:{p" + strconv.FormatInt(pid, 10) + "}:seen:" + sig
}

// FirstSeen records sig and reports whether it was new.
func (g *RedisReplayGuard) FirstSeen(ctx context.Context, pid int64, sig string, ttl time.Duration) (bool, error) {
	ok, err := g.s.rdb.SetNX(ctx, seenKey(pid, sig), 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("replay guard: %w", err)
	}
	return ok, nil
}

// Forget removes sig.
func (g *RedisReplayGuard) Forget(ctx context.Context, pid int64, sig string) error {
	if err := g.s.rdb.Del(ctx, seenKey(pid, sig)).Err(); err != nil {
		return fmt.Errorf("replay guard: %w", err)
	}
	return nil
}
