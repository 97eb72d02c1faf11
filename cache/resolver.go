// Package cache is keygate's hot read path: it resolves an x-api-key value to a keys.Principal
// through an in-process LRU in front of the key store, so a cached key costs no store round trip.
package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/keygate/keygate/keys"
)

// Sentinel errors the gateway maps to statuses.
var (
	// ErrUnknownKey: the key is malformed, unknown or revoked (401), or a rolled secret past its grace.
	ErrUnknownKey = errors.New("unknown or revoked API key")
	// ErrExpired: the key has expired (401 "API key expired").
	ErrExpired = errors.New("API key expired")
	// ErrUnavailable: the key needs a lookup and the store cannot answer (503, never 401).
	ErrUnavailable = errors.New("key store unavailable")
)

// Lookup is the one store call the resolver needs.
type Lookup interface {
	LookupAPIKey(ctx context.Context, h keys.Hash) (keys.Principal, error)
}

// Options tune the resolver. Zero values take the defaults in parentheses.
type Options struct {
	// Size bounds the number of cached principals (100000).
	Size int
	// TTL is how long a cached principal is used without asking the store again (30s). It bounds how
	// long a revocation can go unnoticed if its announcement is lost.
	TTL time.Duration
	// NegativeSize bounds the number of cached definite misses (100000).
	NegativeSize int
	// NegativeTTL is how long a definite miss is remembered (10s), so floods of bad keys do not reach the store.
	NegativeTTL time.Duration
	// Grace is how long past TTL a cached principal keeps working while the store is failing (5m).
	Grace time.Duration
	// LookupTimeout bounds one store lookup (2s).
	LookupTimeout time.Duration
	// Backoff: after a store error, uncached keys fail fast for this long instead of queueing on a
	// dead store (250ms).
	Backoff time.Duration
	// Now is the clock (time.Now); tests inject their own.
	Now func() time.Time
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Size <= 0 {
		o.Size = 100000
	}
	if o.NegativeSize <= 0 {
		o.NegativeSize = 100000
	}
	def(&o.TTL, 30*time.Second)
	def(&o.NegativeTTL, 10*time.Second)
	def(&o.Grace, 5*time.Minute)
	def(&o.LookupTimeout, 2*time.Second)
	def(&o.Backoff, 250*time.Millisecond)
	if o.Now == nil {
		o.Now = time.Now
	}
}

type posEntry struct {
	p       keys.Principal
	fetched time.Time
	gen     uint64 // the generation when the read that produced it started
}

// Resolver resolves API keys through the cache. Entries are keyed by the key's SHA-256, so the
// cache never holds a key, and revocation announcements (which carry hashes) find their entry.
//
// golang-lru's plain LRU is used with per-entry timestamps rather than its expirable variant: an
// expired entry must stay around to be served during an outage (Grace), and time must come from an
// injectable clock.
type Resolver struct {
	store Lookup
	opt   Options
	pos   *lru.Cache[keys.Hash, posEntry]
	neg   *lru.Cache[keys.Hash, time.Time]
	// gen is the cache's generation: every purge and invalidation bumps it. A lookup notes the
	// generation before it reads the store and caches its answer only if nothing that concerns its
	// key happened since (checked under mu, which every purge and invalidation also holds, so the
	// check and the insert are one step).
	mu  sync.Mutex
	gen atomic.Uint64
	// purged is the generation of the last purge (a resync: announcements may have been missed, so
	// no read started before it may be cached after it, and every entry read before it is treated
	// as expired: re-read from the store, or served from the grace period only while the store fails).
	purged atomic.Uint64
	// changed remembers, per hash, the generation at which it was last revoked or changed (a
	// tombstone), so a lookup in flight across the invalidation does not cache what it read.
	changed *lru.Cache[keys.Hash, invalidation]
	// forgotten is the highest generation of a tombstone the changed LRU evicted: a lookup that
	// started before it cannot know whether its key was invalidated, so it does not cache.
	forgotten uint64
	sf        singleflight.Group

	downUntil atomic.Int64 // unix nanos: store calls are skipped until then
	// failing is set by a store error and cleared by the next definite answer. While it is set, no
	// request waits on the store: an expired entry within the grace period is served at once, a
	// key that needs a lookup gets ErrUnavailable at once, and one background lookup at a time
	// (probing) finds out whether the store is back.
	failing atomic.Bool
	probing atomic.Bool

	stats Stats
}

type invalidation struct {
	seq     uint64
	revoked bool
}

// Stats are the resolver's counters (read with Snapshot).
type Stats struct {
	Hits, NegativeHits, Misses, Stale, Unavailable, Invalidations, Malformed atomic.Uint64
}

// StatsSnapshot is a copy of the counters.
type StatsSnapshot struct {
	Hits, NegativeHits, Misses, Stale, Unavailable, Invalidations, Malformed uint64
}

// NewResolver builds a resolver over a store.
func NewResolver(store Lookup, opt Options) *Resolver {
	opt.defaults()
	pos, _ := lru.New[keys.Hash, posEntry](opt.Size)
	neg, _ := lru.New[keys.Hash, time.Time](opt.NegativeSize)
	r := &Resolver{store: store, opt: opt, pos: pos, neg: neg}
	// The eviction callback runs inside changed.Add, which is only called with r.mu held.
	r.changed, _ = lru.NewWithEvict[keys.Hash, invalidation](10000, func(_ keys.Hash, inv invalidation) {
		r.forgotten = max(r.forgotten, inv.seq)
	})
	return r
}

// Resolve returns the principal for an x-api-key value, ErrUnknownKey, ErrExpired, or ErrUnavailable.
//
// Every principal it returns — fresh, cached or stale — is checked against its absolute deadlines
// (expiry, a rolled secret's grace) on this replica's clock, so neither the cache TTL nor the
// outage grace can make a key outlive them.
func (r *Resolver) Resolve(ctx context.Context, key string) (keys.Principal, error) {
	if !keys.LooksLikeAPIKey(key) {
		r.stats.Malformed.Add(1)
		return keys.Principal{}, ErrUnknownKey
	}
	h := keys.HashKey(key)
	now := r.opt.Now()
	if e, ok := r.pos.Get(h); ok {
		age := now.Sub(e.fetched)
		if age < r.opt.TTL && e.gen >= r.purged.Load() {
			r.stats.Hits.Add(1)
			return usable(e.p, now)
		}
		inGrace := age < r.opt.TTL+r.opt.Grace
		if inGrace && r.failing.Load() {
			r.probe(h)
			r.stats.Stale.Add(1)
			return usable(e.p, now)
		}
		p, err := r.fill(ctx, h)
		if err == nil {
			return usable(p, r.opt.Now())
		}
		if errors.Is(err, ErrUnknownKey) {
			return p, err
		}
		if inGrace {
			r.stats.Stale.Add(1)
			return usable(e.p, now)
		}
		return keys.Principal{}, err
	}
	if at, ok := r.neg.Get(h); ok && now.Sub(at) < r.opt.NegativeTTL {
		r.stats.NegativeHits.Add(1)
		return keys.Principal{}, ErrUnknownKey
	}
	r.stats.Misses.Add(1)
	if r.failing.Load() {
		// The store is failing: answer 503 at once rather than queue on it; the probe finds out
		// when it is back (and caches this key if it exists).
		r.probe(h)
		r.stats.Unavailable.Add(1)
		return keys.Principal{}, ErrUnavailable
	}
	p, err := r.fill(ctx, h)
	if err != nil {
		return p, err
	}
	return usable(p, r.opt.Now())
}

// usable refuses a principal past its expiry or its roll grace: two integer comparisons.
func usable(p keys.Principal, now time.Time) (keys.Principal, error) {
	if p.Expires == 0 && p.GraceUntil == 0 {
		return p, nil
	}
	switch ok, expired := p.Usable(now.UnixMilli()); {
	case ok:
		return p, nil
	case expired:
		return keys.Principal{}, ErrExpired
	}
	return keys.Principal{}, ErrUnknownKey
}

// fill asks the store, once for all concurrent callers of one key, and caches a definite answer.
func (r *Resolver) fill(ctx context.Context, h keys.Hash) (keys.Principal, error) {
	v, err, _ := r.sf.Do(string(h[:]), func() (any, error) {
		// A caller that missed just before another's lookup completed finds its answer here.
		if e, ok := r.pos.Peek(h); ok && r.opt.Now().Sub(e.fetched) < r.opt.TTL && e.gen >= r.purged.Load() {
			return e.p, nil
		}
		if time.Now().UnixNano() < r.downUntil.Load() {
			return nil, ErrUnavailable
		}
		start := r.gen.Load()
		// The lookup serves every waiting caller: one caller going away must not fail the others.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opt.LookupTimeout)
		p, err := r.store.LookupAPIKey(lctx, h)
		cancel()
		now := r.opt.Now()
		r.failing.Store(err != nil && !errors.Is(err, keys.ErrNotFound))
		switch {
		case err == nil:
			r.mu.Lock()
			defer r.mu.Unlock()
			if inv, ok := r.changed.Get(h); ok && inv.seq > start && inv.revoked {
				// Revoked while we were reading: never resurrect it.
				return nil, ErrUnknownKey
			}
			if r.current(h, start) {
				r.pos.Add(h, posEntry{p: p, fetched: now, gen: start})
				r.neg.Remove(h)
			}
			// Otherwise changed or purged while we were reading: this caller's request predates the
			// change and gets what was read, but it is not cached (the next request reads afresh).
			return p, nil
		case errors.Is(err, keys.ErrNotFound):
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.current(h, start) {
				r.neg.Add(h, now)
				r.trimNegative(now)
				r.pos.Remove(h)
			}
			return nil, ErrUnknownKey
		default:
			// A store error is never cached as a miss.
			r.downUntil.Store(time.Now().Add(r.opt.Backoff).UnixNano())
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	})
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			r.stats.Unavailable.Add(1)
		}
		return keys.Principal{}, err
	}
	return v.(keys.Principal), nil
}

// trimNegative drops up to two expired entries from the old end of the negative cache, so that a
// flood of distinct unknown keys holds about rate × NegativeTTL entries rather than filling the
// cache to NegativeSize with answers nobody may use again. The caller holds r.mu.
func (r *Resolver) trimNegative(now time.Time) {
	for i := 0; i < 2; i++ {
		h, at, ok := r.neg.GetOldest()
		if !ok || now.Sub(at) < r.opt.NegativeTTL {
			return
		}
		r.neg.Remove(h)
	}
}

// probe starts one background lookup of h unless one is running or the store is in its backoff:
// while the store fails, it is how the resolver notices that it is back.
func (r *Resolver) probe(h keys.Hash) {
	if time.Now().UnixNano() < r.downUntil.Load() || !r.probing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.probing.Store(false)
		r.fill(context.Background(), h)
	}()
}

// current reports whether nothing that concerns h happened since generation start: no purge, no
// invalidation of h, and no forgotten tombstone. The caller holds r.mu.
func (r *Resolver) current(h keys.Hash, start uint64) bool {
	if r.purged.Load() > start || r.forgotten > start {
		return false
	}
	inv, ok := r.changed.Get(h)
	return !ok || inv.seq <= start
}

// Invalidate drops a key's cached answer and leaves a tombstone so that a lookup in flight cannot
// cache what it read before; revoked also makes such a lookup answer ErrUnknownKey.
func (r *Resolver) Invalidate(h keys.Hash, revoked bool) {
	r.mu.Lock()
	seq := r.gen.Add(1)
	r.changed.Add(h, invalidation{seq: seq, revoked: revoked})
	r.pos.Remove(h)
	r.neg.Remove(h)
	r.mu.Unlock()
	r.stats.Invalidations.Add(1)
}

// Purge invalidates everything cached (announcements may have been missed): every entry must be
// read from the store again before it is served fresh, and no lookup that started before the purge
// caches its answer after it. Entries are kept, not dropped, so that a store that fails right after
// the resync (a reconnecting Redis) still finds them for the grace period, as after a TTL.
func (r *Resolver) Purge() {
	r.mu.Lock()
	r.purged.Store(r.gen.Add(1))
	r.neg.Purge()
	r.mu.Unlock()
	r.stats.Invalidations.Add(1)
}

// Apply handles one store announcement.
func (r *Resolver) Apply(e keys.Event) {
	switch e.Kind {
	case keys.EventResync:
		r.Purge()
	case keys.EventRevoked:
		r.Invalidate(e.Hash, true)
	case keys.EventKeyChanged:
		r.Invalidate(e.Hash, false)
	}
}

// Len is the number of cached principals.
func (r *Resolver) Len() int { return r.pos.Len() }

// Snapshot copies the counters.
func (r *Resolver) Snapshot() StatsSnapshot {
	s := &r.stats
	return StatsSnapshot{
		Hits: s.Hits.Load(), NegativeHits: s.NegativeHits.Load(), Misses: s.Misses.Load(), Stale: s.Stale.Load(),
		Unavailable: s.Unavailable.Load(), Invalidations: s.Invalidations.Load(), Malformed: s.Malformed.Load(),
	}
}
