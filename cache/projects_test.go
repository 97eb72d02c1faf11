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
