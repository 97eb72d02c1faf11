package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/verify"
)

type hmacTable struct {
	keys  []keys.HMACKey
	calls atomic.Int64
	now   func() time.Time
}

func (h *hmacTable) ListHMACKeys(context.Context, int64) ([]keys.HMACKey, error) {
	h.calls.Add(1)
	out := append([]keys.HMACKey(nil), h.keys...)
	for i := range out {
		// As the stores do: a rolled secret is listed only while it still verifies.
		if !h.now().Before(out[i].PreviousUntil) {
			out[i].Previous = ""
		}
	}
	return out, nil
}

func (h *hmacTable) Settings(context.Context, int64) (keys.ProjectSettings, error) {
	return keys.ProjectSettings{}, nil
}

// TestProjectsRolledSecretGrace: a rolled HMAC secret verifies during its grace and not a
// millisecond after, even though the cache TTL is longer.
func TestProjectsRolledSecretGrace(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	grace := c.Now().Add(5 * time.Second)
	store := &hmacTable{now: c.Now, keys: []keys.HMACKey{
		{ID: 1, Secret: "new", Previous: "old", PreviousUntil: grace, IsDevelopmentKey: true},
		{ID: 2, Secret: "other"},
		{ID: 3, Secret: "bound-new", Previous: "bound-old", PreviousUntil: grace, Devices: []string{"cam-1"}},
	}}
	p := NewProjects(store, Options{TTL: time.Minute, Now: c.Now})
	ctx := context.Background()
	// verifies reports which of the secrets sign a sample of device the project accepts.
	verifies := func(device string, secrets ...string) []string {
		t.Helper()
		proj, err := p.Get(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, sec := range secrets {
			raw := fmt.Appendf(nil, `{"protected":{"ver":"v1","alg":"HS256"},"signature":"","payload":{"device_name":%q,"values":[]}}`, device)
			body, err := verify.Sign(raw, verify.FormatJSON, []byte(sec), verify.SignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := verify.ParseFull(body, verify.FormatJSON)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := proj.Keys.Verify(&s, body, false); err == nil {
				out = append(out, sec)
			}
		}
		return out
	}
	all := []string{"new", "other", "old", "bound-new", "bound-old"}
	if got := verifies("cam-1", all...); !slices.Equal(got, all) {
		t.Fatalf("during grace = %v, want %v", got, all)
	}
	// A rolled secret keeps its key's binding.
	if got := verifies("cam-2", all...); !slices.Equal(got, []string{"new", "other", "old"}) {
		t.Errorf("another device during grace = %v, want [new other old]", got)
	}
	c.Advance(4 * time.Second)
	verifies("cam-1")
	if store.calls.Load() != 1 {
		t.Errorf("%d store calls within the TTL and the grace, want 1", store.calls.Load())
	}
	c.Advance(time.Second)
	if got := verifies("cam-1", all...); !slices.Equal(got, []string{"new", "other", "bound-new"}) {
		t.Errorf("after grace = %v, want [new other bound-new]", got)
	}
}

// flakyProjects is a project store that can fail or hold its reads at a gate.
type flakyProjects struct {
	mu    sync.Mutex
	err   error
	gate  chan struct{}
	limit keys.Limit
	calls atomic.Int64
}

func (f *flakyProjects) ListHMACKeys(context.Context, int64) ([]keys.HMACKey, error) {
	f.calls.Add(1)
	f.mu.Lock()
	err, gate := f.err, f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return nil, err
}

func (f *flakyProjects) Settings(context.Context, int64) (keys.ProjectSettings, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return keys.ProjectSettings{Limit: f.limit}, f.err
}

// TestProjectsFailingStoreDoesNotHoldRequests: while the store fails, an expired project is served
// at once from the grace period and an uncached one fails at once; one background read probes the
// store, and the cache is current again once the store answers.
func TestProjectsFailingStoreDoesNotHoldRequests(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	store := &flakyProjects{limit: keys.Limit{Rate: 5, Period: time.Second, Burst: 5}}
	p := NewProjects(store, Options{TTL: 30 * time.Second, Grace: time.Minute, Now: c.Now})
	ctx := context.Background()
	if _, err := p.Get(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c.Advance(31 * time.Second)
	store.mu.Lock()
	store.err = errors.New("connection refused")
	store.mu.Unlock()
	if got, err := p.Get(ctx, 1); err != nil || got.Settings.Limit != store.limit { // learns that the store fails
		t.Fatalf("expired project, store failing: %+v %v", got, err)
	}
	gate := make(chan struct{})
	calls := store.calls.Load()
	store.mu.Lock()
	store.gate, store.err, store.limit = gate, nil, keys.Limit{Rate: 7, Period: time.Second, Burst: 7}
	store.mu.Unlock()
	for i := 0; i < 50; i++ { // the gate holds the probe: a Get that waited on it would hang here
		if got, err := p.Get(ctx, 1); err != nil || got.Settings.Limit.Rate != 5 {
			t.Fatalf("expired project while failing: %+v %v, want the cached one at once", got, err)
		}
		if _, err := p.Get(ctx, 2); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("uncached project while failing: %v, want ErrUnavailable at once", err)
		}
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return store.calls.Load() > calls }, "no probe read the store")
	if n := store.calls.Load() - calls; n != 1 {
		t.Errorf("%d store reads while failing, want 1 probe", n)
	}
	store.mu.Lock()
	store.gate = nil
	store.mu.Unlock()
	close(gate)
	testutil.Eventually(t, 5*time.Second, func() bool { got, err := p.Get(ctx, 1); return err == nil && got.Settings.Limit.Rate == 7 },
		"the project was not read again after the store came back")
}

// boundKeys returns n HMAC keys, key i bound to device dev-i with secret key-i.
func boundKeys(pid int64, n int) []keys.HMACKey {
	out := make([]keys.HMACKey, n)
	for i := range out {
		out[i] = keys.HMACKey{ID: int64(i + 1), ProjectID: pid, Secret: fmt.Sprintf("key-%d", i+1), Devices: []string{fmt.Sprintf("dev-%d", i+1)}}
	}
	return out
}

// signedBy verifies a sample of device signed with secret against the project as cached.
func signedBy(t testing.TB, p *Projects, pid int64, secret, device string) error {
	t.Helper()
	proj, err := p.Get(context.Background(), pid)
	if err != nil {
		t.Fatal(err)
	}
	raw := fmt.Appendf(nil, `{"protected":{"ver":"v1","alg":"HS256"},"signature":"","payload":{"device_name":%q,"values":[]}}`, device)
	body, err := verify.Sign(raw, verify.FormatJSON, []byte(secret), verify.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := verify.ParseFull(body, verify.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	_, err = proj.Keys.Verify(&s, body, false)
	return err
}

// TestProjectsOneDeviceKeyRevoked: deleting one device's key takes it out of the cached index at
// once and keeps every other key, without reading the project again; any other HMAC change still
// drops the project.
func TestProjectsOneDeviceKeyRevoked(t *testing.T) {
	store := newProjectTable()
	store.hmac[1] = boundKeys(1, 1000)
	c := NewProjects(store, Options{TTL: time.Hour})
	for _, id := range []int{5, 6, 1000} {
		if err := signedBy(t, c, 1, fmt.Sprintf("key-%d", id), fmt.Sprintf("dev-%d", id)); err != nil {
			t.Fatalf("device %d before: %v", id, err)
		}
	}
	store.mu.Lock()
	store.hmac[1] = slices.DeleteFunc(store.hmac[1], func(k keys.HMACKey) bool { return k.ID == 5 })
	store.mu.Unlock()
	c.Apply(keys.Event{Kind: keys.EventHMACChanged, ProjectID: 1, HMACKeyID: 5})
	tests := []struct {
		name string
		id   int
		want error
	}{
		{"the revoked device's key", 5, verify.ErrWrongDevice},
		{"its neighbour", 6, nil},
		{"the last device", 1000, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := signedBy(t, c, 1, fmt.Sprintf("key-%d", tc.id), fmt.Sprintf("dev-%d", tc.id)); !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if n := store.callsFor(1); n != 1 {
		t.Errorf("%d store reads, want 1: a revocation must not re-read the project", n)
	}
	c.Apply(keys.Event{Kind: keys.EventHMACChanged, ProjectID: 1})
	signedBy(t, c, 1, "key-6", "dev-6")
	if n := store.callsFor(1); n != 2 {
		t.Errorf("%d store reads after a change without a key id, want 2", n)
	}
}

// BenchmarkProjectsRevokeOne: what revoking one device's key costs a replica of a 10,000-key
// project (the index rebuilt under the cache's lock).
func BenchmarkProjectsRevokeOne(b *testing.B) {
	store := newProjectTable()
	store.hmac[1] = boundKeys(1, 10000)
	c := NewProjects(store, Options{TTL: time.Hour})
	if _, err := c.Get(context.Background(), 1); err != nil {
		b.Fatal(err)
	}
	id := int64(0)
	for b.Loop() {
		id++
		c.Apply(keys.Event{Kind: keys.EventHMACChanged, ProjectID: 1, HMACKeyID: id})
	}
}
