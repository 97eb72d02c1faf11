package keys

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for expiry, grace and retention decisions.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Millisecond)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func withClock(t *testing.T, s Store, c *fakeClock) {
	t.Helper()
	switch st := s.(type) {
	case *BoltStore:
		st.now = c.Now
	case *RedisStore:
		st.now = c.Now
	default:
		t.Fatalf("no clock to set on %T", s)
	}
}

func TestStoreLifecycle(t *testing.T) {
	for name, factory := range factories {
		t.Run(name, func(t *testing.T) {
			t.Run("expiry and retention", func(t *testing.T) {
				s, _ := factory(t, nil)
				clock := newFakeClock()
				withClock(t, s, clock)
				s.SetLifecycle(Lifecycle{ExpiredRetention: 24 * time.Hour})
				ctx := context.Background()
				key := mustKey(t)
				creator := &Actor{KeyID: 7, Name: "boss"}
				ak, err := s.CreateAPIKey(ctx, NewAPIKey{ProjectID: 1, Name: "short", Role: RoleReadOnly, Key: key, TTL: time.Hour, CreatedBy: creator})
				if err != nil {
					t.Fatal(err)
				}
				forever, foreverKey := create(t, s, 1, "forever", RoleReadOnly, false)
				if want := clock.Now().Add(time.Hour); !ak.Expires.Equal(want) {
					t.Errorf("expires = %v, want %v", ak.Expires, want)
				}
				p, err := s.LookupAPIKey(ctx, HashKey(key))
				if err != nil || p.Expires != clock.Now().Add(time.Hour).UnixMilli() {
					t.Fatalf("lookup = %+v, %v; want the expiry in the principal", p, err)
				}
				if ok, _ := p.Usable(clock.Now().UnixMilli()); !ok {
					t.Error("fresh key not usable")
				}
				clock.Advance(2 * time.Hour)
				if p, err = s.LookupAPIKey(ctx, HashKey(key)); err != nil {
					t.Fatalf("expired key within retention: %v (must still resolve, to be refused as expired)", err)
				}
				if ok, expired := p.Usable(clock.Now().UnixMilli()); ok || !expired {
					t.Errorf("expired principal usable=%v expired=%v", ok, expired)
				}
				list, err := s.ListAPIKeys(ctx, 1)
				if err != nil || len(list) != 2 || !list[0].Expired(clock.Now()) || list[1].Expired(clock.Now()) {
					t.Fatalf("list within retention = %+v, %v", list, err)
				}
				if list[0].CreatedBy == nil || *list[0].CreatedBy != *creator {
					t.Errorf("created by = %+v, want %+v", list[0].CreatedBy, creator)
				}
				clock.Advance(23 * time.Hour)
				list, err = s.ListAPIKeys(ctx, 1)
				if err != nil || len(list) != 1 || list[0].ID != forever.ID {
					t.Fatalf("list past retention = %+v, %v; want only the key without expiry", list, err)
				}
				if _, err := s.LookupAPIKey(ctx, HashKey(key)); !errors.Is(err, ErrNotFound) {
					t.Errorf("removed key: lookup err = %v, want ErrNotFound", err)
				}
				if _, err := s.LookupAPIKey(ctx, HashKey(foreverKey)); err != nil {
					t.Errorf("key without expiry: %v", err)
				}
				if _, err := s.CreateAPIKey(ctx, NewAPIKey{ProjectID: 1, Name: "neg", Role: RoleAdmin, Key: mustKey(t), TTL: -time.Second}); err == nil {
					t.Error("negative ttl accepted")
				}
			})
			t.Run("roll with grace", func(t *testing.T) {
				s, _ := factory(t, testSealer(t))
				clock := newFakeClock()
				withClock(t, s, clock)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				events := subscribe(t, ctx, s)
				ak, k1 := create(t, s, 1, "rolling", RoleIngestion, true)
				_, other := create(t, s, 1, "other", RoleAdmin, false)
				if _, err := s.RollAPIKey(ctx, 1, ak.ID, other, time.Hour); !errors.Is(err, ErrExists) {
					t.Errorf("roll onto a key in use: err = %v, want ErrExists", err)
				}
				if _, err := s.RollAPIKey(ctx, 2, ak.ID, mustKey(t), time.Hour); !errors.Is(err, ErrNotFound) {
					t.Errorf("roll in another project: err = %v, want ErrNotFound", err)
				}
				k2 := mustKey(t)
				rolled, err := s.RollAPIKey(ctx, 1, ak.ID, k2, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				if rolled.ID != ak.ID || rolled.Name != ak.Name || rolled.Role != ak.Role || !rolled.IsDevelopmentKey || rolled.DevSecret != k2 {
					t.Errorf("rolled = %+v; want same id, name, role, flags and the new development secret", rolled)
				}
				if want := clock.Now().Add(time.Hour); !rolled.RolledUntil.Equal(want) {
					t.Errorf("rolled until %v, want %v", rolled.RolledUntil, want)
				}
				waitEvent(t, events, func(e Event) bool { return e.Kind == EventKeyChanged && e.Hash == HashKey(k2) })
				graceEnd := clock.Now().Add(time.Hour).UnixMilli()
				waitEvent(t, events, func(e Event) bool {
					return e.Kind == EventKeyChanged && e.Hash == HashKey(k1) && e.GraceUntil == graceEnd
				})
				p1, err := s.LookupAPIKey(ctx, HashKey(k1))
				if err != nil || p1.KeyID != ak.ID || p1.GraceUntil != clock.Now().Add(time.Hour).UnixMilli() {
					t.Fatalf("old secret during grace = %+v, %v", p1, err)
				}
				p2, err := s.LookupAPIKey(ctx, HashKey(k2))
				if err != nil || p2.KeyID != ak.ID || p2.GraceUntil != 0 || !p2.Dev {
					t.Fatalf("new secret = %+v, %v", p2, err)
				}
				if api, _, _ := DevelopmentKeys(ctx, s, 1); api == nil || api.DevSecret != k2 {
					t.Errorf("development key after roll = %+v", api)
				}
				clock.Advance(time.Hour)
				if _, err := s.LookupAPIKey(ctx, HashKey(k1)); !errors.Is(err, ErrNotFound) {
					t.Errorf("old secret after grace: err = %v, want ErrNotFound", err)
				}
				if _, err := s.LookupAPIKey(ctx, HashKey(k2)); err != nil {
					t.Errorf("new secret after grace: %v", err)
				}
				// Roll for a leak: grace 0 stops the current secret at once, announced as revoked.
				k3 := mustKey(t)
				if _, err := s.RollAPIKey(ctx, 1, ak.ID, k3, 0); err != nil {
					t.Fatal(err)
				}
				waitEvent(t, events, func(e Event) bool { return e.Kind == EventRevoked && e.Hash == HashKey(k2) })
				if _, err := s.LookupAPIKey(ctx, HashKey(k2)); !errors.Is(err, ErrNotFound) {
					t.Errorf("secret rolled with grace 0: err = %v, want ErrNotFound", err)
				}
				// Revoking during a grace stops both secrets.
				k4 := mustKey(t)
				if _, err := s.RollAPIKey(ctx, 1, ak.ID, k4, time.Hour); err != nil {
					t.Fatal(err)
				}
				if err := s.RevokeAPIKey(ctx, 1, ak.ID); err != nil {
					t.Fatal(err)
				}
				for i, k := range []string{k3, k4} {
					if _, err := s.LookupAPIKey(ctx, HashKey(k)); !errors.Is(err, ErrNotFound) {
						t.Errorf("secret %d after revoke: err = %v", i, err)
					}
				}
				waitEvent(t, events, func(e Event) bool { return e.Kind == EventRevoked && e.Hash == HashKey(k3) })
			})
			t.Run("hmac roll with grace", func(t *testing.T) {
				s, dump := factory(t, testSealer(t))
				clock := newFakeClock()
				withClock(t, s, clock)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				events := subscribe(t, ctx, s)
				const old, fresh = "aaaabbbbccccddddeeeeffff00001111", "11110000ffffeeeeddddccccbbbbaaaa"
				hk, err := s.CreateHMACKey(ctx, NewHMACKey{ProjectID: 1, Name: "h", Secret: old, IsDevelopmentKey: true})
				if err != nil {
					t.Fatal(err)
				}
				rolled, err := s.RollHMACKey(ctx, 1, hk.ID, fresh, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				if rolled.Secret != fresh || rolled.Previous != old || !rolled.IsDevelopmentKey {
					t.Errorf("rolled = %+v", rolled)
				}
				waitEvent(t, events, func(e Event) bool { return e.Kind == EventHMACChanged && e.ProjectID == 1 })
				if raw := dump(); containsAny(raw, old, fresh) {
					t.Error("an HMAC secret is stored readable after a roll")
				}
				list, err := s.ListHMACKeys(ctx, 1)
				if err != nil || len(list) != 1 || list[0].Previous != old || list[0].Secret != fresh {
					t.Fatalf("list during grace = %+v, %v", list, err)
				}
				clock.Advance(time.Hour)
				if list, _ = s.ListHMACKeys(ctx, 1); len(list) != 1 || list[0].Previous != "" {
					t.Errorf("list after grace = %+v; the old secret must be gone", list)
				}
				if _, err := s.RollHMACKey(ctx, 2, hk.ID, fresh, 0); !errors.Is(err, ErrNotFound) {
					t.Errorf("roll in another project: err = %v", err)
				}
			})
			t.Run("make an existing key the development key", func(t *testing.T) {
				s, _ := factory(t, testSealer(t))
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				events := subscribe(t, ctx, s)
				a, aKey := create(t, s, 1, "a", RoleIngestion, false)
				b, bKey := create(t, s, 1, "b", RoleIngestion, true)
				if _, err := s.SetDevelopmentAPIKey(ctx, 1, a.ID, bKey); !errors.Is(err, ErrWrongKey) {
					t.Errorf("wrong key: err = %v, want ErrWrongKey", err)
				}
				if _, err := s.SetDevelopmentAPIKey(ctx, 2, a.ID, aKey); !errors.Is(err, ErrNotFound) {
					t.Errorf("other project: err = %v, want ErrNotFound", err)
				}
				got, err := s.SetDevelopmentAPIKey(ctx, 1, a.ID, aKey)
				if err != nil || !got.IsDevelopmentKey || got.DevSecret != aKey {
					t.Fatalf("set = %+v, %v", got, err)
				}
				waitEvent(t, events, func(e Event) bool { return e.Kind == EventKeyChanged && e.Hash == b.Hash })
				if api, _, _ := DevelopmentKeys(ctx, s, 1); api == nil || api.ID != a.ID || api.DevSecret != aKey {
					t.Errorf("development key = %+v", api)
				}
				if p, err := s.LookupAPIKey(ctx, HashKey(bKey)); err != nil || p.Dev {
					t.Errorf("former development key resolves as %+v, %v", p, err)
				}
				if p, err := s.LookupAPIKey(ctx, HashKey(aKey)); err != nil || !p.Dev {
					t.Errorf("new development key resolves as %+v, %v", p, err)
				}
				h1, _ := s.CreateHMACKey(ctx, NewHMACKey{ProjectID: 1, Name: "h1", Secret: "00112233445566778899aabbccddeeff", IsDevelopmentKey: true})
				h2, _ := s.CreateHMACKey(ctx, NewHMACKey{ProjectID: 1, Name: "h2", Secret: "ffeeddccbbaa99887766554433221100"})
				if _, err := s.SetDevelopmentHMACKey(ctx, 1, h2.ID); err != nil {
					t.Fatal(err)
				}
				if _, hk, _ := DevelopmentKeys(ctx, s, 1); hk == nil || hk.ID != h2.ID {
					t.Errorf("development hmac key = %+v, want %d (not %d)", hk, h2.ID, h1.ID)
				}
				if _, err := s.SetDevelopmentHMACKey(ctx, 2, h2.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("other project: err = %v", err)
				}
			})
			t.Run("audit trail", func(t *testing.T) {
				s, _ := factory(t, nil)
				clock := newFakeClock()
				withClock(t, s, clock)
				s.SetLifecycle(Lifecycle{AuditRetention: 48 * time.Hour})
				ctx := context.Background()
				if evs, next, err := s.ListAudit(ctx, 1, 10, ""); err != nil || len(evs) != 0 || next != "" {
					t.Fatalf("empty trail = %+v %q %v", evs, next, err)
				}
				for i := 0; i < 5; i++ {
					e := AuditEvent{Time: clock.Now(), Action: AuditCreate, Actor: Actor{KeyID: 9, Name: "admin"},
						Target: AuditTarget{Kind: TargetAPIKey, ID: int64(i), Name: fmt.Sprint("k", i)}, IPAddress: "192.0.2.1", Outcome: OutcomeSuccess}
					if err := s.AppendAudit(ctx, 1, e); err != nil {
						t.Fatal(err)
					}
					clock.Advance(time.Second)
				}
				if err := s.AppendAudit(ctx, 2, AuditEvent{Action: AuditRevoke, Outcome: OutcomeDenied}); err != nil {
					t.Fatal(err)
				}
				var ids []int64
				before := ""
				for page := 0; ; page++ {
					evs, next, err := s.ListAudit(ctx, 1, 2, before)
					if err != nil {
						t.Fatal(err)
					}
					for _, e := range evs {
						if e.Actor.KeyID != 9 || e.IPAddress != "192.0.2.1" || e.Outcome != OutcomeSuccess || e.Time.IsZero() {
							t.Errorf("event = %+v", e)
						}
						ids = append(ids, e.Target.ID)
					}
					if next == "" {
						break
					}
					if page > 5 {
						t.Fatal("paging does not end")
					}
					before = next
				}
				if fmt.Sprint(ids) != "[4 3 2 1 0]" {
					t.Errorf("targets newest first over pages = %v, want [4 3 2 1 0]", ids)
				}
				if _, _, err := s.ListAudit(ctx, 1, 2, "bogus"); !errors.Is(err, ErrBadCursor) {
					t.Errorf("bad cursor: err = %v", err)
				}
				clock.Advance(48*time.Hour + time.Second)
				if err := s.AppendAudit(ctx, 1, AuditEvent{Action: AuditRoll, Outcome: OutcomeSuccess}); err != nil {
					t.Fatal(err)
				}
				evs, _, err := s.ListAudit(ctx, 1, 10, "")
				if err != nil || len(evs) != 1 || evs[0].Action != AuditRoll {
					t.Errorf("after the retention = %+v, %v; want only the new event", evs, err)
				}
				if evs, _, _ := s.ListAudit(ctx, 2, 10, ""); len(evs) != 0 {
					t.Errorf("project 2 past retention still lists %+v", evs)
				}
			})
		})
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if len(sub) > 0 && len(s) >= len(sub) {
			for i := 0; i+len(sub) <= len(s); i++ {
				if s[i:i+len(sub)] == sub {
					return true
				}
			}
		}
	}
	return false
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"30d", 30 * 24 * time.Hour, false},
		{"24h", 24 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"0", 0, false},
		{"-1h", 0, true},
		{"xd", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
}

func TestHMACStrength(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"abc", false},
		{"0123456789abcdef", false}, // 16 hex characters: 8 bytes
		{"0123456789abcdef0123456789abcdef", true},
		{"a-passphrase-of-16", true},
		{"short-passw0rd!", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			err := ValidateHMACStrength(tt.key)
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && (!errors.Is(err, ErrWeakHMACKey) || containsAny(err.Error(), tt.key)) {
				t.Errorf("error %q: want ErrWeakHMACKey, never the key", err)
			}
		})
	}
	k, err := GenerateHMACKey()
	if err != nil || len(k) != 64 || ValidateHMACStrength(k) != nil {
		t.Errorf("generated = %q, %v; want 64 hex characters", k, err)
	}
}
