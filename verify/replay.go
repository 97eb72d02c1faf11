package verify

import (
	"context"
	"sync"
	"time"
)

// ReplayGuard remembers accepted signatures. FirstSeen records sig for the project and reports
// whether it was new; Forget undoes it (when the upstream did not take the sample, so the device's
// retry is not called a replay). The Redis implementation lives with the other Redis code
// (keys.RedisReplayGuard); MemoryReplayGuard serves the embedded store.
type ReplayGuard interface {
	FirstSeen(ctx context.Context, projectID int64, sig string, ttl time.Duration) (bool, error)
	Forget(ctx context.Context, projectID int64, sig string) error
}

type seenKey struct {
	project int64
	sig     string
}

// MemoryReplayGuard is an in-process ReplayGuard, bounded in size (oldest entries go first when full).
type MemoryReplayGuard struct {
	mu    sync.Mutex
	seen  map[seenKey]time.Time // expiry
	max   int
	now   func() time.Time
	sweep time.Time
}

// NewMemoryReplayGuard keeps at most max signatures (1,000,000 when max <= 0).
func NewMemoryReplayGuard(max int, now func() time.Time) *MemoryReplayGuard {
	if max <= 0 {
		max = 1_000_000
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayGuard{seen: make(map[seenKey]time.Time), max: max, now: now}
}

// FirstSeen implements ReplayGuard.
func (g *MemoryReplayGuard) FirstSeen(_ context.Context, pid int64, sig string, ttl time.Duration) (bool, error) {
	now := g.now()
	k := seenKey{pid, sig}
	g.mu.Lock()
	defer g.mu.Unlock()
	if exp, ok := g.seen[k]; ok && now.Before(exp) {
		return false, nil
	}
	if len(g.seen) >= g.max || now.Sub(g.sweep) > time.Minute {
		g.sweep = now
		for key, exp := range g.seen {
			if !now.Before(exp) {
				delete(g.seen, key)
			}
		}
		// Still full: drop the entries closest to expiry.
		for key := range g.seen {
			if len(g.seen) < g.max {
				break
			}
			delete(g.seen, key)
		}
	}
	g.seen[k] = now.Add(ttl)
	return true, nil
}

// Forget implements ReplayGuard.
func (g *MemoryReplayGuard) Forget(_ context.Context, pid int64, sig string) error {
	g.mu.Lock()
	delete(g.seen, seenKey{pid, sig})
	g.mu.Unlock()
	return nil
}
