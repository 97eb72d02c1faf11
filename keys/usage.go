package keys

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// UsageRecorder batches last-used times so the hot path costs a map write, not a store write: Touch
// remembers the newest use per key and Run flushes the batch every interval (and once more on stop).
type UsageRecorder struct {
	store interface {
		TouchAPIKeys(context.Context, []Usage) error
	}
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	pending map[int64]Usage
}

// NewUsageRecorder flushes to s every interval (one minute when zero).
func NewUsageRecorder(s Store, interval time.Duration, log *slog.Logger) *UsageRecorder {
	if interval <= 0 {
		interval = time.Minute
	}
	if log == nil {
		log = slog.Default()
	}
	return &UsageRecorder{store: s, interval: interval, log: log, pending: make(map[int64]Usage)}
}

// Touch records that the principal's key was used at t from the client address ip.
func (r *UsageRecorder) Touch(p Principal, t time.Time, ip string) {
	r.mu.Lock()
	if u, ok := r.pending[p.KeyID]; !ok || t.After(u.At) {
		r.pending[p.KeyID] = Usage{ProjectID: p.ProjectID, KeyID: p.KeyID, At: t, IP: ip}
	}
	r.mu.Unlock()
}

// Flush writes the pending batch. On error the batch is kept (merged with newer uses) for the next try.
func (r *UsageRecorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return nil
	}
	batch := make([]Usage, 0, len(r.pending))
	for _, u := range r.pending {
		batch = append(batch, u)
	}
	r.pending = make(map[int64]Usage, len(batch))
	r.mu.Unlock()
	if err := r.store.TouchAPIKeys(ctx, batch); err != nil {
		r.mu.Lock()
		for _, u := range batch {
			if cur, ok := r.pending[u.KeyID]; !ok || u.At.After(cur.At) {
				r.pending[u.KeyID] = u
			}
		}
		r.mu.Unlock()
		return err
	}
	return nil
}

// Run flushes every interval until ctx ends, then flushes once more.
func (r *UsageRecorder) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := r.Flush(fctx); err != nil {
				r.log.Warn("flush last-used times at shutdown", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := r.Flush(ctx); err != nil {
				r.log.Warn("flush last-used times", "err", err)
			}
		}
	}
}
