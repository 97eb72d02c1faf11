package cache

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
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
	}}
	p := NewProjects(store, Options{TTL: time.Minute, Now: c.Now})
	ctx := context.Background()
	names := func() []string {
		t.Helper()
		proj, err := p.Get(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range proj.HMACKeys {
			out = append(out, string(k))
		}
		return out
	}
	if got := names(); len(got) != 3 || got[0] != "new" || got[2] != "old" {
		t.Fatalf("during grace = %v, want [new other old]", got)
	}
	c.Advance(4 * time.Second)
	names()
	if store.calls.Load() != 1 {
		t.Errorf("%d store calls within the TTL and the grace, want 1", store.calls.Load())
	}
	c.Advance(time.Second)
	if got := names(); len(got) != 2 || got[0] != "new" || got[1] != "other" {
		t.Errorf("after grace = %v, want [new other]", got)
	}
}
