package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/verify"
)

// ProjectStore is what the project cache reads.
type ProjectStore interface {
	ListHMACKeys(ctx context.Context, projectID int64) ([]keys.HMACKey, error)
	Settings(ctx context.Context, projectID int64) (keys.ProjectSettings, error)
}

// Project is what the ingestion path needs of a project on every request.
type Project struct {
	// Keys are the project's HMAC keys indexed by the devices they are bound to (development key
	// first among the unbound ones), then the secrets replaced by a roll that still verify during
	// their grace, bound like their key. Nil when the project has none.
	Keys     *verify.KeyRing
	Settings keys.ProjectSettings
}

type projEntry struct {
	p       Project
	fetched time.Time
	// hmac is the key list p was built from, kept so that deleting one key rebuilds the index
	// without reading the project again.
	hmac []keys.HMACKey
	// until is the earliest end of a rolled secret's grace (zero: none): the entry is not used past
	// it, so the cache TTL never extends a grace. current is p without the rolled secrets.
	until   time.Time
	current Project
}

// newProjEntry indexes a project's keys as read at fetched: the development key first among the
// unbound ones, and the secrets replaced by a roll while their grace lasts, bound like their key.
func newProjEntry(hk []keys.HMACKey, st keys.ProjectSettings, fetched time.Time) projEntry {
	var ring []verify.RingKey
	for _, k := range hk {
		rk := verify.RingKey{ID: k.ID, Secret: []byte(k.Secret), Devices: k.Devices}
		if k.IsDevelopmentKey {
			ring = append([]verify.RingKey{rk}, ring...)
		} else {
			ring = append(ring, rk)
		}
	}
	p := Project{Settings: st}
	if len(ring) > 0 {
		p.Keys = verify.NewKeyRing(ring)
	}
	entry := projEntry{fetched: fetched, current: p, p: p, hmac: hk}
	var prev []verify.RingKey
	for _, k := range hk {
		if k.Previous != "" && k.PreviousUntil.After(fetched) {
			if entry.until.IsZero() || k.PreviousUntil.Before(entry.until) {
				entry.until = k.PreviousUntil
			}
			prev = append(prev, verify.RingKey{ID: k.ID, Secret: []byte(k.Previous), Devices: k.Devices})
		}
	}
	if len(prev) > 0 {
		entry.p = Project{Settings: st, Keys: verify.NewKeyRing(append(slices.Clone(ring), prev...))}
	}
	return entry
}

// fresh says whether the entry may be served at now without asking the store.
func (e projEntry) fresh(now time.Time, ttl time.Duration) bool {
	return now.Sub(e.fetched) < ttl && (e.until.IsZero() || now.Before(e.until))
}

// at is the entry as it may be served at now (without rolled secrets past their grace).
func (e projEntry) at(now time.Time) Project {
	if !e.until.IsZero() && !now.Before(e.until) {
		return e.current
	}
	return e.p
}

// Projects caches per-project HMAC keys and settings with the same rules as the Resolver: a TTL,
// invalidation on announcements, stale data within Grace while the store fails, ErrUnavailable after.
type Projects struct {
	store ProjectStore
	opt   Options
	mu    sync.RWMutex
	m     map[int64]projEntry
	gen   uint64
	sf    singleflight.Group
	// failing is set by a store error and cleared by the next successful read; while it is set, Get
	// never waits on the store (see Get) and probing marks the one background read in flight.
	failing atomic.Bool
	probing atomic.Bool
}

// NewProjects builds a project cache (Options as for the Resolver; Size bounds the projects kept).
func NewProjects(s ProjectStore, opt Options) *Projects {
	opt.defaults()
	return &Projects{store: s, opt: opt, m: make(map[int64]projEntry)}
}

// Get returns a project's HMAC keys and settings.
func (c *Projects) Get(ctx context.Context, pid int64) (Project, error) {
	now := c.opt.Now()
	c.mu.RLock()
	e, ok := c.m[pid]
	c.mu.RUnlock()
	if ok && e.fresh(now, c.opt.TTL) {
		return e.p, nil
	}
	if c.failing.Load() {
		// The store is failing: no request waits on it. A cached project is served from the grace
		// period, and one background read at a time finds out whether the store is back.
		c.probe(pid)
		if ok && now.Sub(e.fetched) < c.opt.TTL+c.opt.Grace {
			return e.at(now), nil
		}
		return Project{}, fmt.Errorf("%w: the store is failing", ErrUnavailable)
	}
	p, err := c.load(ctx, pid)
	if err == nil {
		return p, nil
	}
	if errors.Is(err, keys.ErrSealed) {
		return Project{}, err
	}
	if ok && now.Sub(e.fetched) < c.opt.TTL+c.opt.Grace {
		return e.at(now), nil
	}
	return Project{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// load reads a project from the store, once for all concurrent callers, and caches it unless it
// was invalidated while being read.
func (c *Projects) load(ctx context.Context, pid int64) (Project, error) {
	v, err, _ := c.sf.Do(strconv.FormatInt(pid, 10), func() (any, error) {
		c.mu.RLock()
		gen := c.gen
		cached, hit := c.m[pid]
		c.mu.RUnlock()
		// A read that finished between this Get's miss and its Do has cached the project: one store
		// read serves every concurrent miss.
		if hit && cached.fresh(c.opt.Now(), c.opt.TTL) {
			return cached.p, nil
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opt.LookupTimeout)
		defer cancel()
		hk, err := c.store.ListHMACKeys(lctx, pid)
		if err != nil {
			c.failing.Store(!errors.Is(err, keys.ErrSealed))
			return nil, err
		}
		st, err := c.store.Settings(lctx, pid)
		if err != nil {
			c.failing.Store(!errors.Is(err, keys.ErrSealed))
			return nil, err
		}
		c.failing.Store(false)
		entry := newProjEntry(hk, st, c.opt.Now())
		c.mu.Lock()
		if c.gen == gen { // not invalidated while reading
			if len(c.m) >= c.opt.Size {
				clear(c.m)
			}
			c.m[pid] = entry
		}
		c.mu.Unlock()
		return entry.p, nil
	})
	if err != nil {
		return Project{}, err
	}
	return v.(Project), nil
}

// probe starts one background read of a project unless one is running: while the store fails, it
// is how the cache notices that the store is back.
func (c *Projects) probe(pid int64) {
	if !c.probing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.probing.Store(false)
		c.load(context.Background(), pid)
	}()
}

// Apply handles one store announcement.
func (c *Projects) Apply(e keys.Event) {
	switch e.Kind {
	case keys.EventResync:
		c.mu.Lock()
		c.gen++
		clear(c.m)
		c.mu.Unlock()
	case keys.EventHMACChanged, keys.EventSettingsChanged:
		c.mu.Lock()
		c.gen++
		old, ok := c.m[e.ProjectID]
		if ok && e.Kind == keys.EventHMACChanged && e.HMACKeyID != 0 {
			// One key deleted (a device's key revoked): drop it from the index, under the lock so no
			// Get sees it after this returns, and keep every other key without a store read — a
			// 10,000-key project re-read costs ~60 ms, an index rebuild a few.
			kept := slices.DeleteFunc(slices.Clone(old.hmac), func(k keys.HMACKey) bool { return k.ID == e.HMACKeyID })
			c.m[e.ProjectID] = newProjEntry(kept, old.p.Settings, old.fetched)
		} else {
			delete(c.m, e.ProjectID)
		}
		c.mu.Unlock()
	}
}
