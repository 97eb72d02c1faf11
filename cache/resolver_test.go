package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil"
	"github.com/keygate/keygate/keys"
)

// memLookup is an in-memory key table with a call counter, an error switch and an optional gate
// that holds lookups in flight.
type memLookup struct {
	mu    sync.Mutex
	table map[keys.Hash]keys.Principal
	err   error
	calls atomic.Int64
	gate  chan struct{}
}

func (m *memLookup) LookupAPIKey(ctx context.Context, h keys.Hash) (keys.Principal, error) {
	m.calls.Add(1)
	m.mu.Lock()
	p, ok := m.table[h]
	err := m.err
	gate := m.gate
	m.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if err != nil {
		return keys.Principal{}, err
	}
	if !ok {
		return keys.Principal{}, keys.ErrNotFound
	}
	return p, nil
}

func (m *memLookup) set(f func()) { m.mu.Lock(); f(); m.mu.Unlock() }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func setup(t *testing.T) (*Resolver, *memLookup, *clock, string, keys.Principal) {
	t.Helper()
	key, _ := keys.GenerateAPIKey()
	p := keys.Principal{KeyID: 7, ProjectID: 1, Role: keys.RoleAdmin, Name: "k"}
	m := &memLookup{table: map[keys.Hash]keys.Principal{keys.HashKey(key): p}}
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	r := NewResolver(m, Options{TTL: 30 * time.Second, NegativeTTL: 10 * time.Second, Grace: time.Minute, Backoff: time.Nanosecond, Now: c.Now})
	return r, m, c, key, p
}

func TestResolveCachesAndExpires(t *testing.T) {
	r, m, c, key, want := setup(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		p, err := r.Resolve(ctx, key)
		if err != nil || p != want {
			t.Fatalf("resolve: %+v %v", p, err)
		}
	}
	if m.calls.Load() != 1 {
		t.Errorf("%d store calls for 5 resolves of one key, want 1", m.calls.Load())
	}
	c.Advance(31 * time.Second)
	if _, err := r.Resolve(ctx, key); err != nil || m.calls.Load() != 2 {
		t.Errorf("after TTL: err %v, %d calls, want a refresh", err, m.calls.Load())
	}
	if s := r.Snapshot(); s.Hits != 4 || s.Misses != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestNegativeCache(t *testing.T) {
	r, m, c, _, _ := setup(t)
	ctx := context.Background()
	bad, _ := keys.GenerateAPIKey()
	for i := 0; i < 100; i++ {
		if _, err := r.Resolve(ctx, bad); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("unknown key: %v", err)
		}
	}
	if m.calls.Load() != 1 {
		t.Errorf("%d store calls for 100 tries of one bad key, want 1", m.calls.Load())
	}
	c.Advance(11 * time.Second)
	r.Resolve(ctx, bad)
	if m.calls.Load() != 2 {
		t.Errorf("negative entry did not expire")
	}
	// Malformed values never reach the store.
	for _, v := range []string{"", "nope", "ei_short", "Bearer ei_0123456789012345678901234567890123"} {
		if _, err := r.Resolve(ctx, v); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("%q: %v", v, err)
		}
	}
	if m.calls.Load() != 2 {
		t.Errorf("malformed keys reached the store")
	}
}

func TestCreatedKeyClearsNegativeEntry(t *testing.T) {
	r, m, _, _, _ := setup(t)
	ctx := context.Background()
	k, _ := keys.GenerateAPIKey()
	if _, err := r.Resolve(ctx, k); !errors.Is(err, ErrUnknownKey) {
		t.Fatal(err)
	}
	m.set(func() { m.table[keys.HashKey(k)] = keys.Principal{KeyID: 9, ProjectID: 1, Role: keys.RoleReadOnly} })
	r.Apply(keys.Event{Kind: keys.EventKeyChanged, Hash: keys.HashKey(k)})
	if p, err := r.Resolve(ctx, k); err != nil || p.KeyID != 9 {
		t.Errorf("new key after announcement: %+v %v", p, err)
	}
}

func TestStoreErrorsAreNotMisses(t *testing.T) {
	r, m, c, key, want := setup(t)
	ctx := context.Background()
	if _, err := r.Resolve(ctx, key); err != nil {
		t.Fatal(err)
	}
	other, _ := keys.GenerateAPIKey()
	m.set(func() { m.err = errors.New("connection refused") })

	// Uncached key while the store is down: 503, not 401.
	if _, err := r.Resolve(ctx, other); !errors.Is(err, ErrUnavailable) {
		t.Errorf("uncached key with store down: %v, want ErrUnavailable", err)
	}
	// Cached key: still works while fresh, and past TTL within the grace period.
	c.Advance(45 * time.Second)
	if p, err := r.Resolve(ctx, key); err != nil || p != want {
		t.Errorf("cached key within grace: %+v %v", p, err)
	}
	if r.Snapshot().Stale == 0 {
		t.Error("stale serve not counted")
	}
	// Beyond the grace period: 503.
	c.Advance(time.Minute)
	if _, err := r.Resolve(ctx, key); !errors.Is(err, ErrUnavailable) {
		t.Errorf("cached key past grace: %v, want ErrUnavailable", err)
	}
	// Recovery: the store answers again and the error was not remembered as a miss.
	m.set(func() { m.err = nil })
	if _, err := r.Resolve(ctx, key); err != nil {
		t.Errorf("after recovery: %v", err)
	}
	if _, err := r.Resolve(ctx, other); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key after recovery: %v", err)
	}
}

func TestSingleflight(t *testing.T) {
	r, m, _, key, _ := setup(t)
	gate := make(chan struct{})
	m.set(func() { m.gate = gate })
	var wg sync.WaitGroup
	const n = 50
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Resolve(context.Background(), key)
			errs <- err
		}()
	}
	// Wait until the one lookup is in flight, then let it finish.
	testutil.Eventually(t, 5*time.Second, func() bool { return m.calls.Load() > 0 }, "the lookup never started")
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m.calls.Load() != 1 {
		t.Errorf("%d store calls for %d concurrent misses, want 1", m.calls.Load(), n)
	}
}

func TestRevocationWinsOverInFlightLookup(t *testing.T) {
	r, m, _, key, _ := setup(t)
	gate := make(chan struct{})
	m.set(func() { m.gate = gate })
	done := make(chan error, 1)
	go func() {
		_, err := r.Resolve(context.Background(), key)
		done <- err
	}()
	testutil.Eventually(t, 5*time.Second, func() bool { return m.calls.Load() > 0 }, "the lookup never started")
	// The lookup has read the key (it is in the table); now it is revoked before the lookup returns.
	r.Apply(keys.Event{Kind: keys.EventRevoked, Hash: keys.HashKey(key)})
	m.set(func() { delete(m.table, keys.HashKey(key)); m.gate = nil })
	close(gate)
	if err := <-done; !errors.Is(err, ErrUnknownKey) {
		t.Errorf("in-flight lookup across a revocation: %v, want ErrUnknownKey", err)
	}
	if r.Len() != 0 {
		t.Error("revoked key was cached")
	}
	if _, err := r.Resolve(context.Background(), key); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("revoked key resolves: %v", err)
	}
}

func TestResyncPurges(t *testing.T) {
	r, m, _, key, _ := setup(t)
	ctx := context.Background()
	r.Resolve(ctx, key)
	m.set(func() { delete(m.table, keys.HashKey(key)) })
	r.Apply(keys.Event{Kind: keys.EventResync})
	if _, err := r.Resolve(ctx, key); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("after resync: %v", err)
	}
}

func BenchmarkResolveCached(b *testing.B) {
	key, _ := keys.GenerateAPIKey()
	m := &memLookup{table: map[keys.Hash]keys.Principal{keys.HashKey(key): {KeyID: 1, ProjectID: 1, Role: keys.RoleAdmin}}}
	r := NewResolver(m, Options{})
	ctx := context.Background()
	r.Resolve(ctx, key)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Resolve(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// inFlight starts a Resolve of key whose store lookup has read the table and is held at a gate;
// release lets it return, and the result arrives on the returned channel.
func inFlight(t *testing.T, r *Resolver, m *memLookup, key string) (release func(), result <-chan error) {
	t.Helper()
	gate := make(chan struct{})
	before := m.calls.Load()
	m.set(func() { m.gate = gate })
	done := make(chan error, 1)
	go func() {
		_, err := r.Resolve(context.Background(), key)
		done <- err
	}()
	testutil.Eventually(t, 5*time.Second, func() bool { return m.calls.Load() > before }, "the lookup never started")
	return func() { m.set(func() { m.gate = nil }); close(gate) }, done
}

// TestNoReadBeforeAnInvalidationIsCachedAfterIt reproduces a lookup in flight across a resync,
// a key change and a flood of other invalidations: what it read before them must not be cached.
func TestNoReadBeforeAnInvalidationIsCachedAfterIt(t *testing.T) {
	tests := []struct {
		name    string
		between func(r *Resolver, m *memLookup, h keys.Hash)
	}{
		{"resync", func(r *Resolver, m *memLookup, h keys.Hash) {
			m.set(func() { delete(m.table, h) }) // revoked while the announcement was missed
			r.Apply(keys.Event{Kind: keys.EventResync})
		}},
		{"key changed", func(r *Resolver, m *memLookup, h keys.Hash) {
			m.set(func() { delete(m.table, h) })
			r.Apply(keys.Event{Kind: keys.EventKeyChanged, Hash: h})
		}},
		{"tombstone forgotten", func(r *Resolver, m *memLookup, h keys.Hash) {
			m.set(func() { delete(m.table, h) })
			r.Apply(keys.Event{Kind: keys.EventRevoked, Hash: h})
			// More invalidations of other keys than the tombstone table holds evict h's tombstone.
			for i := 0; i < 10001; i++ {
				var other keys.Hash
				other[0], other[1], other[2] = byte(i), byte(i>>8), 0xff
				r.Invalidate(other, true)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, m, _, key, _ := setup(t)
			h := keys.HashKey(key)
			release, done := inFlight(t, r, m, key)
			tt.between(r, m, h)
			release()
			<-done
			if r.Len() != 0 {
				t.Fatal("a read from before the invalidation was cached after it")
			}
			calls := m.calls.Load()
			if _, err := r.Resolve(context.Background(), key); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("after the invalidation: %v, want ErrUnknownKey", err)
			}
			if m.calls.Load() != calls+1 {
				t.Errorf("the next request did not read the store afresh")
			}
		})
	}
}

// TestResyncDoesNotCacheAMissReadBefore: a lookup that read "not found" before a resync (the key
// was created while announcements were lost) must not leave a negative entry hiding the new key.
func TestResyncDoesNotCacheAMissReadBefore(t *testing.T) {
	r, m, _, _, _ := setup(t)
	k, _ := keys.GenerateAPIKey()
	release, done := inFlight(t, r, m, k)
	m.set(func() { m.table[keys.HashKey(k)] = keys.Principal{KeyID: 9, ProjectID: 1, Role: keys.RoleReadOnly} })
	r.Apply(keys.Event{Kind: keys.EventResync})
	release()
	if err := <-done; !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("in-flight lookup: %v, want what it read (ErrUnknownKey)", err)
	}
	if p, err := r.Resolve(context.Background(), k); err != nil || p.KeyID != 9 {
		t.Errorf("key created before the resync: %+v %v, want it found", p, err)
	}
}

// TestLookupAfterResyncIsCached: the generation check does not stop caching for good.
func TestLookupAfterResyncIsCached(t *testing.T) {
	r, m, _, key, _ := setup(t)
	r.Apply(keys.Event{Kind: keys.EventResync})
	for i := 0; i < 3; i++ {
		if _, err := r.Resolve(context.Background(), key); err != nil {
			t.Fatal(err)
		}
	}
	if m.calls.Load() != 1 || r.Len() != 1 {
		t.Errorf("%d store calls, %d cached after a resync, want 1 and 1", m.calls.Load(), r.Len())
	}
}

// TestResolveDeadlines: a cached principal is refused at its expiry or at the end of its roll grace
// on this replica's clock, with no store call, and neither the TTL nor the outage grace extends it.
func TestResolveDeadlines(t *testing.T) {
	tests := []struct {
		name    string
		set     func(p *keys.Principal, at time.Time)
		wantErr error
	}{
		{"expiry", func(p *keys.Principal, at time.Time) { p.Expires = at.UnixMilli() }, ErrExpired},
		{"roll grace", func(p *keys.Principal, at time.Time) { p.GraceUntil = at.UnixMilli() }, ErrUnknownKey},
		{"grace ends before expiry", func(p *keys.Principal, at time.Time) {
			p.GraceUntil, p.Expires = at.UnixMilli(), at.Add(time.Hour).UnixMilli()
		}, ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, outage := range []bool{false, true} {
				r, m, c, key, p := setup(t)
				ctx := context.Background()
				deadline := c.Now().Add(10 * time.Second) // well inside the 30s TTL
				tt.set(&p, deadline)
				m.set(func() { m.table[keys.HashKey(key)] = p })
				if got, err := r.Resolve(ctx, key); err != nil || got != p {
					t.Fatalf("before the deadline: %+v %v", got, err)
				}
				calls := m.calls.Load()
				c.Advance(9999 * time.Millisecond)
				if _, err := r.Resolve(ctx, key); err != nil {
					t.Fatalf("1ms before the deadline: %v", err)
				}
				c.Advance(time.Millisecond)
				if _, err := r.Resolve(ctx, key); !errors.Is(err, tt.wantErr) {
					t.Errorf("at the deadline (cached): err = %v, want %v", err, tt.wantErr)
				}
				if m.calls.Load() != calls {
					t.Errorf("the deadline check asked the store (%d calls)", m.calls.Load()-calls)
				}
				if outage {
					// Past the TTL with the store down: the stale entry is served only if still usable.
					m.set(func() { m.err = errors.New("down") })
					c.Advance(25 * time.Second)
					if _, err := r.Resolve(ctx, key); !errors.Is(err, tt.wantErr) {
						t.Errorf("stale during an outage: err = %v, want %v", err, tt.wantErr)
					}
				} else {
					c.Advance(25 * time.Second)
					if _, err := r.Resolve(ctx, key); !errors.Is(err, tt.wantErr) {
						t.Errorf("after a refresh: err = %v, want %v", err, tt.wantErr)
					}
				}
			}
		})
	}
}

// TestResyncWhileStoreFailsServesFromGrace: a resync invalidates cached keys, but a store that
// fails right after it (a Redis that is reconnecting) finds them within the grace period, as after
// a TTL; a key the store no longer has is refused as soon as the store answers.
func TestResyncWhileStoreFailsServesFromGrace(t *testing.T) {
	r, m, _, key, want := setup(t)
	ctx := context.Background()
	gone, _ := keys.GenerateAPIKey()
	m.set(func() { m.table[keys.HashKey(gone)] = keys.Principal{KeyID: 8, ProjectID: 1, Role: keys.RoleAdmin} })
	for _, k := range []string{key, gone} {
		if _, err := r.Resolve(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	m.set(func() { delete(m.table, keys.HashKey(gone)); m.err = errors.New("connection refused") })
	r.Apply(keys.Event{Kind: keys.EventResync})
	if p, err := r.Resolve(ctx, key); err != nil || p != want {
		t.Errorf("cached key, store failing after a resync: %+v %v, want it served from the grace period", p, err)
	}
	m.set(func() { m.err = nil })
	testutil.Eventually(t, 5*time.Second, func() bool {
		_, err := r.Resolve(ctx, gone)
		return errors.Is(err, ErrUnknownKey)
	}, "a key deleted from the store is still admitted after the store answers again")
	if p, err := r.Resolve(ctx, key); err != nil || p != want {
		t.Errorf("cached key after recovery: %+v %v", p, err)
	}
}

// TestFailingStoreDoesNotHoldRequests: while the store fails, an expired cached key is served at
// once from the grace period (a request never waits on the failing store), one background lookup
// probes the store, and its answer refreshes the entry when the store is back.
func TestFailingStoreDoesNotHoldRequests(t *testing.T) {
	r, m, c, key, want := setup(t)
	ctx := context.Background()
	if _, err := r.Resolve(ctx, key); err != nil {
		t.Fatal(err)
	}
	c.Advance(31 * time.Second)
	m.set(func() { m.err = errors.New("connection refused") })
	if p, err := r.Resolve(ctx, key); err != nil || p != want { // learns that the store fails
		t.Fatalf("expired key, store failing: %+v %v", p, err)
	}
	gate := make(chan struct{})
	calls := m.calls.Load()
	m.set(func() { m.gate = gate; m.err = nil }) // the store is back, but slow to answer
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			if p, err := r.Resolve(ctx, key); err != nil || p != want {
				t.Errorf("expired key while the store is failing: %+v %v", p, err)
				return
			}
		}
	}()
	if !testutil.Within(5*time.Second, func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}) {
		t.Fatal("requests for a cached key waited on a failing store")
	}
	if n := m.calls.Load() - calls; n != 1 {
		t.Errorf("%d store lookups for 100 requests while failing, want 1 probe", n)
	}
	close(gate)
	m.set(func() { m.gate = nil })
	testutil.Eventually(t, 5*time.Second, func() bool {
		before := r.Snapshot().Hits
		r.Resolve(ctx, key)
		return r.Snapshot().Hits == before+1
	}, "the probe's answer did not refresh the entry")
}

// TestFailingStoreFailsMissesFast: while the store fails, a key that needs a lookup gets
// ErrUnavailable at once (never 401), one probe asks the store, and once the probe has found the
// store back the key resolves.
func TestFailingStoreFailsMissesFast(t *testing.T) {
	r, m, _, _, _ := setup(t)
	ctx := context.Background()
	k, _ := keys.GenerateAPIKey()
	m.set(func() { m.err = errors.New("connection refused") })
	if _, err := r.Resolve(ctx, k); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("store down: %v", err)
	}
	gate := make(chan struct{})
	m.set(func() {
		m.table[keys.HashKey(k)] = keys.Principal{KeyID: 9, ProjectID: 1, Role: keys.RoleAdmin}
		m.err = nil
		m.gate = gate
	})
	calls := m.calls.Load()
	for i := 0; i < 50; i++ { // the gate holds the probe: a request that waited on it would hang here
		if _, err := r.Resolve(ctx, k); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("miss while failing: %v, want ErrUnavailable at once", err)
		}
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return m.calls.Load() > calls }, "no probe asked the store")
	for i := 0; i < 50; i++ {
		if _, err := r.Resolve(ctx, k); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("miss while the probe is out: %v, want ErrUnavailable at once", err)
		}
	}
	if n := m.calls.Load() - calls; n != 1 {
		t.Errorf("%d store lookups for 100 misses while failing, want 1 probe", n)
	}
	m.set(func() { m.gate = nil })
	close(gate)
	testutil.Eventually(t, 5*time.Second, func() bool { p, err := r.Resolve(ctx, k); return err == nil && p.KeyID == 9 },
		"the key does not resolve after the store came back")
}

// TestNegativeCacheHoldsOnlyLiveEntries: a flood of distinct unknown keys keeps about
// rate × NegativeTTL entries, not NegativeSize: expired ones are dropped as new ones come.
func TestNegativeCacheHoldsOnlyLiveEntries(t *testing.T) {
	r, _, c, _, _ := setup(t) // NegativeTTL 10s
	ctx := context.Background()
	for i := 0; i < 1000; i++ { // 1000 unknown keys over 100 s: 10 a second
		k, _ := keys.GenerateAPIKey()
		if _, err := r.Resolve(ctx, k); !errors.Is(err, ErrUnknownKey) {
			t.Fatal(err)
		}
		c.Advance(100 * time.Millisecond)
	}
	if n := r.neg.Len(); n > 110 {
		t.Errorf("%d negative entries after 1000 unknown keys at 10/s with a 10 s TTL, want about 100", n)
	}
	k, _ := keys.GenerateAPIKey()
	r.Resolve(ctx, k)
	if _, ok := r.neg.Peek(keys.HashKey(k)); !ok {
		t.Error("the newest unknown key is not remembered")
	}
}
