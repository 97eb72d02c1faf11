package cache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// projectTable is a ProjectStore in memory: per-project HMAC keys and settings, a call count per
// project, an injectable error, and an optional gate that holds reads until the test releases them.
type projectTable struct {
	mu       sync.Mutex
	hmac     map[int64][]keys.HMACKey
	settings map[int64]keys.ProjectSettings
	calls    map[int64]int
	err      error
	gate     chan struct{} // when set, reads wait on it
	entered  chan int64    // when set, each read announces itself before waiting
}

func newProjectTable() *projectTable {
	return &projectTable{hmac: map[int64][]keys.HMACKey{}, settings: map[int64]keys.ProjectSettings{}, calls: map[int64]int{}}
}

func (p *projectTable) ListHMACKeys(ctx context.Context, pid int64) ([]keys.HMACKey, error) {
	// Read first, then wait: a held read returns what the store had when it was asked.
	p.mu.Lock()
	p.calls[pid]++
	gate, entered, err := p.gate, p.entered, p.err
	out := append([]keys.HMACKey(nil), p.hmac[pid]...)
	p.mu.Unlock()
	if entered != nil {
		entered <- pid
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (p *projectTable) Settings(_ context.Context, pid int64) (keys.ProjectSettings, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return keys.ProjectSettings{}, p.err
	}
	return p.settings[pid], nil
}

func (p *projectTable) set(pid int64, secrets ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ks []keys.HMACKey
	for i, s := range secrets {
		ks = append(ks, keys.HMACKey{ID: int64(i + 1), ProjectID: pid, Secret: s})
	}
	p.hmac[pid] = ks
}

func (p *projectTable) fail(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func (p *projectTable) callsFor(pid int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[pid]
}

// secrets reads a project through the cache as strings, failing the test on an error.
func secrets(t *testing.T, c *Projects, pid int64) []string {
	t.Helper()
	proj, err := c.Get(context.Background(), pid)
	if err != nil {
		t.Fatalf("Get(%d): %v", pid, err)
	}
	var out []string
	for _, k := range proj.Keys.Secrets() {
		out = append(out, string(k))
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestProjectsDevelopmentKeyFirst: the development key is tried first, the others keep their order,
// and the settings come along.
func TestProjectsDevelopmentKeyFirst(t *testing.T) {
	store := newProjectTable()
	store.hmac[1] = []keys.HMACKey{{ID: 1, Secret: "a"}, {ID: 2, Secret: "b"}, {ID: 3, Secret: "dev", IsDevelopmentKey: true}, {ID: 4, Secret: "c"}}
	store.settings[1] = keys.ProjectSettings{RequireSignatures: true}
	c := NewProjects(store, Options{})
	proj, err := c.Get(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !proj.Settings.RequireSignatures {
		t.Error("settings not returned")
	}
	if got := secrets(t, c, 1); !equal(got, []string{"dev", "a", "b", "c"}) {
		t.Errorf("keys %v, want [dev a b c]", got)
	}
	if got := secrets(t, c, 2); len(got) != 0 {
		t.Errorf("a project without keys: %v", got)
	}
}

// TestProjectsTTLAndAnnouncements: within the TTL the store is asked once; after it, again; an
// announcement for a project drops that project only, a resync drops all.
func TestProjectsTTLAndAnnouncements(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	store := newProjectTable()
	store.set(1, "one")
	store.set(2, "two")
	c := NewProjects(store, Options{TTL: 10 * time.Second, Now: clk.Now})

	steps := []struct {
		name       string
		do         func()
		wantCalls1 int // store reads of project 1 after the step's Get of both projects
		wantCalls2 int
		want1      []string
	}{
		{"first read", func() {}, 1, 1, []string{"one"}},
		{"within the TTL", func() { store.set(1, "changed"); clk.Advance(9 * time.Second) }, 1, 1, []string{"one"}},
		{"TTL passed", func() { clk.Advance(time.Second) }, 2, 2, []string{"changed"}},
		{"HMAC change of project 1", func() { store.set(1, "rotated"); c.Apply(keys.Event{Kind: keys.EventHMACChanged, ProjectID: 1}) }, 3, 2, []string{"rotated"}},
		{"settings change of project 1", func() { c.Apply(keys.Event{Kind: keys.EventSettingsChanged, ProjectID: 1}) }, 4, 2, []string{"rotated"}},
		{"revocations do not touch projects", func() { c.Apply(keys.Event{Kind: keys.EventRevoked, ProjectID: 1}) }, 4, 2, []string{"rotated"}},
		{"resync", func() { c.Apply(keys.Event{Kind: keys.EventResync}) }, 5, 3, []string{"rotated"}},
	}
	for _, st := range steps {
		st.do()
		got := secrets(t, c, 1)
		secrets(t, c, 2)
		if !equal(got, st.want1) {
			t.Errorf("%s: project 1 keys %v, want %v", st.name, got, st.want1)
		}
		if n1, n2 := store.callsFor(1), store.callsFor(2); n1 != st.wantCalls1 || n2 != st.wantCalls2 {
			t.Errorf("%s: store reads %d and %d, want %d and %d", st.name, n1, n2, st.wantCalls1, st.wantCalls2)
		}
	}
}

// TestProjectsStoreDown: while the store fails, what was read is served until TTL+Grace, then
// ErrUnavailable; a project never read is unavailable at once; ErrSealed is never hidden by stale data.
func TestProjectsStoreDown(t *testing.T) {
	down := errors.New("connection refused")
	for _, tc := range []struct {
		name    string
		storeEr error
		after   time.Duration // since the first read
		want    []string      // nil: an error
		wantErr error
	}{
		{"fresh entry, no store call needed", down, 5 * time.Second, []string{"k"}, nil},
		{"stale within grace", down, 30 * time.Second, []string{"k"}, nil},
		{"just before TTL+grace", down, 70*time.Second - time.Millisecond, []string{"k"}, nil},
		{"past TTL+grace", down, 70 * time.Second, nil, ErrUnavailable},
		{"sealed is never served stale", keys.ErrSealed, 30 * time.Second, nil, keys.ErrSealed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1_700_000_000, 0)}
			store := newProjectTable()
			store.set(1, "k")
			c := NewProjects(store, Options{TTL: 10 * time.Second, Grace: time.Minute, Now: clk.Now})
			secrets(t, c, 1)
			store.fail(tc.storeEr)
			clk.Advance(tc.after)
			proj, err := c.Get(context.Background(), 1)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if tc.wantErr == ErrUnavailable && !errors.Is(err, down) {
					t.Errorf("the cause is lost: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if len(proj.Keys.Secrets()) != 1 || string(proj.Keys.Secrets()[0]) != tc.want[0] {
				t.Errorf("keys %q, want %v", proj.Keys.Secrets(), tc.want)
			}
			if _, err := c.Get(context.Background(), 99); !errors.Is(err, ErrUnavailable) && !errors.Is(err, keys.ErrSealed) {
				t.Errorf("a project never read, store down: err = %v", err)
			}
		})
	}
}

// TestProjectsInvalidatedWhileReading: a read that started before an announcement is returned to
// its caller but not cached, so the next Get reads the store again and sees the change.
func TestProjectsInvalidatedWhileReading(t *testing.T) {
	store := newProjectTable()
	store.set(1, "before")
	gate := make(chan struct{})
	store.gate, store.entered = gate, make(chan int64, 4)
	c := NewProjects(store, Options{})
	done := make(chan []string, 1)
	go func() {
		proj, _ := c.Get(context.Background(), 1)
		var out []string
		for _, k := range proj.Keys.Secrets() {
			out = append(out, string(k))
		}
		done <- out
	}()
	<-store.entered // the read is in flight
	store.set(1, "after")
	c.Apply(keys.Event{Kind: keys.EventHMACChanged, ProjectID: 1})
	close(gate)
	if got := <-done; !equal(got, []string{"before"}) {
		t.Errorf("the read in flight returned %v, want [before]", got)
	}
	if got := secrets(t, c, 1); !equal(got, []string{"after"}) {
		t.Errorf("after the announcement: %v, want [after] (a read from before it was cached)", got)
	}
	if n := store.callsFor(1); n != 2 {
		t.Errorf("%d store reads, want 2", n)
	}
}

// TestProjectsOneReadForConcurrentGets: concurrent misses for one project share one store read. A
// Get either joins the read in flight or, arriving after it, finds its result cached: one read,
// whatever the interleaving.
func TestProjectsOneReadForConcurrentGets(t *testing.T) {
	store := newProjectTable()
	store.set(1, "k")
	gate := make(chan struct{})
	store.gate, store.entered = gate, make(chan int64, 16)
	c := NewProjects(store, Options{})
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			proj, err := c.Get(context.Background(), 1)
			if err == nil && (len(proj.Keys.Secrets()) != 1 || string(proj.Keys.Secrets()[0]) != "k") {
				err = errors.New("wrong keys")
			}
			errs <- err
		}()
	}
	<-store.entered
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := store.callsFor(1); got != 1 {
		t.Fatalf("%d store reads for %d concurrent Gets, want 1", got, n)
	}
}

// TestProjectsSizeBound: the cache never holds more than Size projects.
func TestProjectsSizeBound(t *testing.T) {
	store := newProjectTable()
	c := NewProjects(store, Options{Size: 3})
	for pid := int64(1); pid <= 10; pid++ {
		store.set(pid, "k")
		secrets(t, c, pid)
		c.mu.RLock()
		size := len(c.m)
		c.mu.RUnlock()
		if size > 3 {
			t.Fatalf("after %d projects the cache holds %d, bound 3", pid, size)
		}
	}
	// The most recent project is cached: reading it again does not ask the store.
	before := store.callsFor(10)
	secrets(t, c, 10)
	if store.callsFor(10) != before {
		t.Error("the last project read was not cached")
	}
}
