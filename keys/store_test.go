package keys

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testutil"
)

// storeFactory opens a fresh, empty store and returns a function that dumps every byte it keeps
// (to prove secrets are not stored readable).
type storeFactory func(t *testing.T, sealer *Sealer) (Store, func() string)

func boltFactory(t *testing.T, sealer *Sealer) (Store, func() string) {
	t.Helper()
	dir := t.TempDir()
	s, err := OpenBolt(dir, sealer, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, func() string {
		b, err := os.ReadFile(filepath.Join(dir, DataFileName))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

func redisFactory(t *testing.T, sealer *Sealer) (Store, func() string) {
	t.Helper()
	srv := redistest.Start(t)
	rdb, err := NewRedisClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	s := NewRedisStore(rdb, sealer)
	t.Cleanup(func() { s.Close() })
	return s, func() string {
		ctx := context.Background()
		var sb strings.Builder
		ks, err := rdb.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			sb.WriteString(k)
			switch rdb.Type(ctx, k).Val() {
			case "string":
				sb.WriteString(rdb.Get(ctx, k).Val())
			case "hash":
				for f, v := range rdb.HGetAll(ctx, k).Val() {
					sb.WriteString(f + v)
				}
			}
		}
		return sb.String()
	}
}

var factories = map[string]storeFactory{"bolt": boltFactory, "redis": redisFactory}

func testSealer(t testing.TB) *Sealer {
	t.Helper()
	s, err := NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustKey(t testing.TB) string {
	t.Helper()
	k, err := GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func create(t *testing.T, s Store, pid int64, name string, role Role, dev bool) (APIKey, string) {
	t.Helper()
	key := mustKey(t)
	ak, err := s.CreateAPIKey(context.Background(), NewAPIKey{ProjectID: pid, Name: name, Role: role, IsDevelopmentKey: dev, Key: key})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return ak, key
}

// subscribe returns a live subscription (its first event, a resync, has arrived).
func subscribe(t *testing.T, ctx context.Context, s Store) <-chan Event {
	t.Helper()
	ch := s.Subscribe(ctx)
	waitEvent(t, ch, func(e Event) bool { return e.Kind == EventResync })
	return ch
}

// waitEvent reads events until one matches, or fails after a deadline.
func waitEvent(t *testing.T, ch <-chan Event, match func(Event) bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-ch:
			if match(e) {
				return
			}
		case <-deadline:
			t.Fatal("expected event not delivered within 5s")
		}
	}
}

func TestStoreConformance(t *testing.T) {
	for name, factory := range factories {
		t.Run(name, func(t *testing.T) {
			t.Run("create list lookup", func(t *testing.T) {
				s, dump := factory(t, testSealer(t))
				ctx := context.Background()
				admin, adminKey := create(t, s, 1, "admin", RoleAdmin, false)
				ro, roKey := create(t, s, 1, "ro", RoleReadOnly, false)
				other, _ := create(t, s, 2, "other", RoleIngestion, false)
				if admin.ID == ro.ID || ro.ID == other.ID {
					t.Fatalf("ids not unique: %d %d %d", admin.ID, ro.ID, other.ID)
				}
				if admin.Prefix != adminKey[:11] {
					t.Errorf("prefix %q, want %q", admin.Prefix, adminKey[:11])
				}
				list, err := s.ListAPIKeys(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				if len(list) != 2 || list[0].ID != admin.ID || list[1].ID != ro.ID {
					t.Fatalf("list = %+v", list)
				}
				for _, k := range list {
					if k.DevSecret != "" {
						t.Errorf("non-development key %d lists its secret", k.ID)
					}
					if k.Created.IsZero() {
						t.Errorf("key %d has no created time", k.ID)
					}
				}
				p, err := s.LookupAPIKey(ctx, HashKey(roKey))
				if err != nil {
					t.Fatal(err)
				}
				want := Principal{KeyID: ro.ID, ProjectID: 1, Role: RoleReadOnly, Name: "ro"}
				if p != want {
					t.Errorf("lookup = %+v, want %+v", p, want)
				}
				if _, err := s.LookupAPIKey(ctx, HashKey(mustKey(t))); !errors.Is(err, ErrNotFound) {
					t.Errorf("unknown key: err = %v, want ErrNotFound", err)
				}
				if got, err := s.GetAPIKey(ctx, 1, admin.ID); err != nil || got.Name != "admin" {
					t.Errorf("get = %+v, %v", got, err)
				}
				if _, err := s.GetAPIKey(ctx, 2, admin.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("get from another project: err = %v, want ErrNotFound", err)
				}
				raw := dump()
				if strings.Contains(raw, adminKey) || strings.Contains(raw, roKey) || strings.Contains(raw, adminKey[11:40]) {
					t.Error("the store keeps a whole (or most of an) API key")
				}
			})
			t.Run("caller supplied and invalid keys", func(t *testing.T) {
				s, _ := factory(t, nil)
				ctx := context.Background()
				own := "ei_my-own-key-that-is-long-enough-1"
				if _, err := s.CreateAPIKey(ctx, NewAPIKey{ProjectID: 1, Name: "own", Role: RoleAdmin, Key: own}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.LookupAPIKey(ctx, HashKey(own)); err != nil {
					t.Errorf("own key does not resolve: %v", err)
				}
				if _, err := s.CreateAPIKey(ctx, NewAPIKey{ProjectID: 3, Name: "dup", Role: RoleAdmin, Key: own}); !errors.Is(err, ErrExists) {
					t.Errorf("duplicate key: err = %v, want ErrExists", err)
				}
				for _, bad := range []string{"ei_short", "xx_0123456789012345678901234567890123", "ei_has a space in it 01234567890123"} {
					_, err := s.CreateAPIKey(ctx, NewAPIKey{ProjectID: 1, Name: "bad", Role: RoleAdmin, Key: bad})
					if !errors.Is(err, ErrInvalidKey) {
						t.Errorf("key %q: err = %v, want ErrInvalidKey", bad, err)
					}
					if err != nil && strings.Contains(err.Error(), bad) {
						t.Errorf("error %q echoes the key", err)
					}
				}
				if _, err := s.CreateAPIKey(ctx, NewAPIKey{ProjectID: 1, Name: "r", Role: RoleInvalid, Key: mustKey(t)}); err == nil {
					t.Error("invalid role accepted")
				}
			})
			t.Run("revoke is final", func(t *testing.T) {
				s, _ := factory(t, nil)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				events := subscribe(t, ctx, s)
				ak, key := create(t, s, 1, "victim", RoleAdmin, false)
				h := HashKey(key)
				// Lookups hammer the key while it is revoked: once RevokeAPIKey has returned, no
				// lookup that starts afterwards may resolve it.
				var revoked sync.WaitGroup
				revoked.Add(1)
				var done = make(chan struct{})
				var after = make(chan error, 1)
				go func() {
					revoked.Wait()
					for i := 0; i < 200; i++ {
						if _, err := s.LookupAPIKey(ctx, h); !errors.Is(err, ErrNotFound) {
							after <- fmt.Errorf("lookup %d after revoke: err = %v", i, err)
							return
						}
					}
					close(done)
				}()
				if err := s.RevokeAPIKey(ctx, 1, ak.ID); err != nil {
					t.Fatal(err)
				}
				revoked.Done()
				select {
				case err := <-after:
					t.Fatal(err)
				case <-done:
				}
				waitEvent(t, events, func(e Event) bool { return e.Kind == EventRevoked && e.Hash == h && e.ProjectID == 1 })
				if err := s.RevokeAPIKey(ctx, 1, ak.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("second revoke: err = %v, want ErrNotFound", err)
				}
				if list, _ := s.ListAPIKeys(ctx, 1); len(list) != 0 {
					t.Errorf("revoked key still listed: %+v", list)
				}
				// Recording a use of the revoked key (an in-flight batch) must not bring it back.
				if err := s.TouchAPIKeys(ctx, []Usage{{ProjectID: 1, KeyID: ak.ID, At: time.Now()}}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.LookupAPIKey(ctx, h); !errors.Is(err, ErrNotFound) {
					t.Errorf("revoked key resolves after a touch: %v", err)
				}
				if list, _ := s.ListAPIKeys(ctx, 1); len(list) != 0 {
					t.Errorf("revoked key listed after a touch: %+v", list)
				}
			})
			t.Run("development flag moves atomically", func(t *testing.T) {
				s, _ := factory(t, testSealer(t))
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				events := subscribe(t, ctx, s)
				first, firstKey := create(t, s, 1, "dev1", RoleIngestion, true)
				if api, _, err := DevelopmentKeys(ctx, s, 1); err != nil || api == nil || api.DevSecret != firstKey {
					t.Fatalf("development key not listed whole: %+v %v", api, err)
				}
				const n = 12
				var wg sync.WaitGroup
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func(i int) {
						defer wg.Done()
						if _, err := s.CreateAPIKey(ctx, NewAPIKey{ProjectID: 1, Name: fmt.Sprint("dev", i), Role: RoleIngestion, IsDevelopmentKey: true, Key: mustKey(t)}); err != nil {
							t.Error(err)
						}
					}(i)
				}
				wg.Wait()
				list, err := s.ListAPIKeys(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				devs := 0
				for _, k := range list {
					if k.IsDevelopmentKey {
						devs++
						if k.DevSecret == "" {
							t.Error("development key has no secret to show")
						}
					} else if k.DevSecret != "" {
						t.Errorf("former development key %d still keeps its secret", k.ID)
					}
				}
				if devs != 1 || len(list) != n+1 {
					t.Fatalf("%d keys, %d development keys; want %d and 1", len(list), devs, n+1)
				}
				p, err := s.LookupAPIKey(ctx, HashKey(firstKey))
				if err != nil || p.Dev {
					t.Errorf("old development key resolves as %+v, %v; want dev=false", p, err)
				}
				waitEvent(t, events, func(e Event) bool { return e.Kind == EventKeyChanged && e.Hash == first.Hash })
				// Other projects are untouched.
				if _, err := s.CreateAPIKey(ctx, NewAPIKey{ProjectID: 2, Name: "p2dev", Role: RoleAdmin, IsDevelopmentKey: true, Key: mustKey(t)}); err != nil {
					t.Fatal(err)
				}
				if api, _, _ := DevelopmentKeys(ctx, s, 1); api == nil {
					t.Error("project 1 lost its development key when project 2 got one")
				}
			})
			t.Run("concurrent creates", func(t *testing.T) {
				s, _ := factory(t, nil)
				ctx := context.Background()
				const n = 64
				var wg sync.WaitGroup
				var mu sync.Mutex
				ids := map[int64]string{}
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func(i int) {
						defer wg.Done()
						key := mustKey(t)
						ak, err := s.CreateAPIKey(ctx, NewAPIKey{ProjectID: int64(1 + i%3), Name: fmt.Sprint("k", i), Role: RoleReadOnly, Key: key})
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						ids[ak.ID] = key
						mu.Unlock()
					}(i)
				}
				wg.Wait()
				if len(ids) != n {
					t.Fatalf("%d distinct ids for %d creates", len(ids), n)
				}
				for id, key := range ids {
					if p, err := s.LookupAPIKey(ctx, HashKey(key)); err != nil || p.KeyID != id {
						t.Errorf("key %d: %+v %v", id, p, err)
					}
				}
			})
			t.Run("hmac keys", func(t *testing.T) {
				s, dump := factory(t, testSealer(t))
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				events := subscribe(t, ctx, s)
				const secret = "fed53116f20684c067774ebf9e7bcbdc"
				a, err := s.CreateHMACKey(ctx, NewHMACKey{ProjectID: 1, Name: "a", Secret: secret, IsDevelopmentKey: true})
				if err != nil {
					t.Fatal(err)
				}
				waitEvent(t, events, func(e Event) bool { return e.Kind == EventHMACChanged && e.ProjectID == 1 })
				b, err := s.CreateHMACKey(ctx, NewHMACKey{ProjectID: 1, Name: "b", Secret: "0", IsDevelopmentKey: true})
				if err != nil {
					t.Fatal(err)
				}
				list, err := s.ListHMACKeys(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				if len(list) != 2 || list[0].Secret != secret || list[0].IsDevelopmentKey || !list[1].IsDevelopmentKey {
					t.Fatalf("list = %+v", list)
				}
				if strings.Contains(dump(), secret) {
					t.Error("HMAC secret stored readable although a master key is set")
				}
				if err := s.DeleteHMACKey(ctx, 1, a.ID); err != nil {
					t.Fatal(err)
				}
				// A deletion names its key, so caches drop that one and keep the rest.
				waitEvent(t, events, func(e Event) bool {
					return e.Kind == EventHMACChanged && e.ProjectID == 1 && e.HMACKeyID == a.ID
				})
				if err := s.DeleteHMACKey(ctx, 1, a.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("second delete: %v", err)
				}
				if err := s.DeleteHMACKey(ctx, 2, b.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("delete from another project: %v", err)
				}
				if list, _ := s.ListHMACKeys(ctx, 1); len(list) != 1 || list[0].ID != b.ID {
					t.Errorf("after delete: %+v", list)
				}
				if _, err := s.CreateHMACKey(ctx, NewHMACKey{ProjectID: 1, Name: "", Secret: "x"}); err == nil {
					t.Error("nameless hmac key accepted")
				}
			})
			t.Run("hmac keys bound to devices", func(t *testing.T) {
				s, _ := factory(t, testSealer(t))
				ctx := context.Background()
				bound, err := s.CreateHMACKey(ctx, NewHMACKey{ProjectID: 1, Name: "cam", Secret: "k1", Devices: []string{"cam-1", "line-3-*"}})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(bound.Devices, []string{"cam-1", "line-3-*"}) {
					t.Errorf("created devices = %q", bound.Devices)
				}
				if _, err := s.CreateHMACKey(ctx, NewHMACKey{ProjectID: 1, Name: "fleet", Secret: "k2"}); err != nil {
					t.Fatal(err)
				}
				list, err := s.ListHMACKeys(ctx, 1)
				if err != nil || len(list) != 2 {
					t.Fatalf("list = %+v, %v", list, err)
				}
				if !slices.Equal(list[0].Devices, []string{"cam-1", "line-3-*"}) || list[1].Bound() {
					t.Errorf("listed devices = %q and %q", list[0].Devices, list[1].Devices)
				}
				if _, err := s.CreateHMACKey(ctx, NewHMACKey{ProjectID: 1, Name: "bad", Secret: "k3", Devices: []string{"a*b"}}); err == nil {
					t.Error("a binding with '*' inside accepted")
				}
				if list, _ := s.ListHMACKeys(ctx, 1); len(list) != 2 {
					t.Errorf("a refused key was stored: %+v", list)
				}
				if _, err := s.UpdateSettings(ctx, 1, func(ps *ProjectSettings) error { ps.RequireDeviceBoundKeys = true; return nil }); err != nil {
					t.Fatal(err)
				}
				if ps, err := s.Settings(ctx, 1); err != nil || !ps.RequireDeviceBoundKeys {
					t.Errorf("settings = %+v, %v", ps, err)
				}
				if ps, _ := s.Settings(ctx, 2); ps.RequireDeviceBoundKeys {
					t.Error("requireDeviceBoundKeys leaked to another project")
				}
			})
			t.Run("last used is recorded in batches", func(t *testing.T) {
				s, _ := factory(t, nil)
				ctx := context.Background()
				ak, _ := create(t, s, 1, "used", RoleAdmin, false)
				rec := NewUsageRecorder(s, time.Hour, nil)
				at := time.Now().Truncate(time.Millisecond)
				for i := 0; i < 100; i++ {
					rec.Touch(ak.Principal(), at.Add(-time.Duration(i)*time.Second), fmt.Sprint("192.0.2.", i))
				}
				if got, _ := s.GetAPIKey(ctx, 1, ak.ID); !got.LastUsed.IsZero() {
					t.Fatal("last used written before the flush")
				}
				if err := rec.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				got, err := s.GetAPIKey(ctx, 1, ak.ID)
				if err != nil || !got.LastUsed.Equal(at) || got.LastUsedIP != "192.0.2.0" {
					t.Errorf("last used = %v from %q (%v), want %v from 192.0.2.0", got.LastUsed, got.LastUsedIP, err, at)
				}
				if list, _ := s.ListAPIKeys(ctx, 1); len(list) != 1 || list[0].LastUsedIP != "192.0.2.0" {
					t.Errorf("listed last use = %+v", list)
				}
			})
			t.Run("settings", func(t *testing.T) {
				s, _ := factory(t, nil)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				events := subscribe(t, ctx, s)
				if ps, err := s.Settings(ctx, 1); err != nil || ps.RequireSignatures {
					t.Fatalf("default settings = %+v, %v", ps, err)
				}
				_, err := s.UpdateSettings(ctx, 1, func(ps *ProjectSettings) error {
					ps.RequireSignatures = true
					ps.Limit = Limit{Rate: 10, Period: time.Second, Burst: 20}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				ps, err := s.Settings(ctx, 1)
				if err != nil || !ps.RequireSignatures || ps.Limit.Burst != 20 {
					t.Errorf("settings = %+v, %v", ps, err)
				}
				waitEvent(t, events, func(e Event) bool { return e.Kind == EventSettingsChanged && e.ProjectID == 1 })
				if _, err := s.UpdateSettings(ctx, 1, func(*ProjectSettings) error { return errors.New("no") }); err == nil {
					t.Error("failed update reported success")
				}
				if ps2, _ := s.Settings(ctx, 2); ps2.RequireSignatures {
					t.Error("settings leaked to another project")
				}
			})
			t.Run("wrong master key", func(t *testing.T) {
				other, _ := NewSealer([]byte("ffffffffffffffffffffffffffffffff"))
				s, _ := factory(t, testSealer(t))
				ctx := context.Background()
				if _, err := s.CreateHMACKey(ctx, NewHMACKey{ProjectID: 1, Name: "a", Secret: "s3cret"}); err != nil {
					t.Fatal(err)
				}
				switch st := s.(type) {
				case *BoltStore:
					st.sealer = other
				case *RedisStore:
					st.sealer = other
				}
				_, err := s.ListHMACKeys(ctx, 1)
				if !errors.Is(err, ErrSealed) {
					t.Errorf("err = %v, want ErrSealed", err)
				}
			})
		})
	}
}

func TestBoltLockedAndPersistent(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBolt(dir, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ak, key := create(t, s, 1, "persist", RoleAdmin, false)
	gone, _ := create(t, s, 1, "gone", RoleAdmin, false)
	if err := s.RevokeAPIKey(context.Background(), 1, gone.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = OpenBolt(dir, nil, 100*time.Millisecond)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: err = %v, want ErrLocked", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("second open hung for %v", waited)
	}
	s.Close()
	s2, err := OpenBolt(dir, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if p, err := s2.LookupAPIKey(context.Background(), HashKey(key)); err != nil || p.KeyID != ak.ID {
		t.Errorf("after reopen: %+v %v", p, err)
	}
	if list, _ := s2.ListAPIKeys(context.Background(), 1); len(list) != 1 {
		t.Errorf("after reopen: %d keys listed, want 1 (revoked stays revoked)", len(list))
	}
	// A fresh id after reopen never reuses the revoked key's id.
	again, _ := create(t, s2, 1, "again", RoleAdmin, false)
	if again.ID <= gone.ID {
		t.Errorf("id %d reused after reopen (revoked was %d)", again.ID, gone.ID)
	}
}

func TestRedisOutageAndResubscribe(t *testing.T) {
	srv := redistest.Start(t)
	rdb, err := NewRedisClient(srv.URL() + "?dial_timeout=200ms&read_timeout=200ms&max_retries=0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewRedisStore(rdb, nil)
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := s.Subscribe(ctx)
	waitEvent(t, events, func(e Event) bool { return e.Kind == EventResync })
	_, key := create(t, s, 1, "k", RoleAdmin, false)

	srv.Stop()
	if err := s.Check(ctx); err == nil {
		t.Error("Check passes with Redis stopped")
	}
	_, err = s.LookupAPIKey(ctx, HashKey(key))
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("lookup with Redis down: err = %v; must be an error that is not ErrNotFound", err)
	}

	srv.Restart() // empty data: a new Redis
	testutil.Eventually(t, 10*time.Second, func() bool { return s.Check(ctx) == nil }, "store did not recover after Redis restarted")
	// The subscription came back: subscribers are told to resync, and new events flow again.
	waitEvent(t, events, func(e Event) bool { return e.Kind == EventResync })
	ak, _ := create(t, s, 1, "k2", RoleAdmin, false)
	if err := s.RevokeAPIKey(ctx, 1, ak.ID); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, func(e Event) bool { return e.Kind == EventRevoked && e.Hash == ak.Hash })
}

func TestRedisURLForms(t *testing.T) {
	tests := []struct {
		url     string
		wantErr bool
	}{
		{"redis://127.0.0.1:6379/0", false},
		{"rediss://user:pw@127.0.0.1:6380", false},
		{"redis+sentinel://127.0.0.1:26379?master_name=mymaster&addr=127.0.0.2:26379", false},
		{"redis+sentinel://127.0.0.1:26379", true},
		{"redis+cluster://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002", false},
		{"http://127.0.0.1:6379", true},
		{"redis+bogus://127.0.0.1:6379", true},
		{"redis://:hunter2@127.0.0.1:6379?nonsense=1", true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c, err := NewRedisClient(tt.url)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %v", err)
			}
			if c != nil {
				c.Close()
			}
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	for _, name := range []string{"bolt", "redis"} {
		b.Run(name, func(b *testing.B) {
			var s Store
			switch name {
			case "bolt":
				bs, err := OpenBolt(b.TempDir(), nil, 0)
				if err != nil {
					b.Fatal(err)
				}
				s = bs
			case "redis":
				srv := redistest.Start(b)
				rdb, err := NewRedisClient(srv.URL())
				if err != nil {
					b.Fatal(err)
				}
				s = NewRedisStore(rdb, nil)
			}
			defer s.Close()
			ctx := context.Background()
			key, _ := GenerateAPIKey()
			if _, err := s.CreateAPIKey(ctx, NewAPIKey{ProjectID: 1, Name: "b", Role: RoleAdmin, Key: key}); err != nil {
				b.Fatal(err)
			}
			h := HashKey(key)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.LookupAPIKey(ctx, h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
