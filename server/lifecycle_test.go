package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testutil"
	"github.com/keygate/keygate/keys"
)

func postJSON(t *testing.T, method, url, key, body string) resp {
	t.Helper()
	return do(t, method, url, key, strings.NewReader(body), "Content-Type", "application/json")
}

func decodeBody[T any](t *testing.T, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("answer %d %q: %v", r.status, r.body, err)
	}
	return v
}

// TestKeyLifecycleAcrossReplicas drives expiry, roll and the audit trail through the HTTP API of one
// replica and checks them on another whose cache TTL is an hour: deadlines are not extended by it.
func TestKeyLifecycleAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	sc, store := redisStoreConfig(t, srv)
	up := newUpstream(t)
	a := startGateway(t, sc, up.URL, nil)
	b := startGateway(t, sc, up.URL, func(c *Config) { c.CacheTTL = time.Hour })
	admin, adminKey := mkKey(t, store, 1, keys.RoleAdmin)
	readonly, _ := mkKey(t, store, 1, keys.RoleReadOnly)
	api := a.studio + "/v1/api/1"
	get := func(base, key string) resp { return do(t, "GET", base+"/v1/api/1/raw-data", key, nil) }

	t.Run("expiry", func(t *testing.T) {
		r := postJSON(t, "POST", api+"/apikeys", admin, `{"name":"short","role":"readonly","isDevelopmentKey":false,"ttl":1}`)
		if r.status != 200 {
			t.Fatalf("create with ttl: %d %s", r.status, r.body)
		}
		short := decodeBody[struct{ APIKey string }](t, r).APIKey
		for _, base := range []string{a.studio, b.studio} {
			if r := get(base, short); r.status != 200 {
				t.Fatalf("fresh key: %d %s", r.status, r.body)
			}
		}
		list := decodeBody[struct {
			APIKeys []struct {
				Name          string
				Expires       *time.Time
				CreatedByUser *keys.Actor
			}
		}](t, do(t, "GET", api+"/apikeys", admin, nil))
		found := false
		for _, k := range list.APIKeys {
			if k.Name == "short" {
				found = true
				if k.Expires == nil || k.CreatedByUser == nil || k.CreatedByUser.KeyID != adminKey.ID {
					t.Errorf("listing of the ttl key: expires %v, created by %+v", k.Expires, k.CreatedByUser)
				}
			}
		}
		if !found {
			t.Fatal("ttl key not listed")
		}
		for _, base := range []string{a.studio, b.studio} {
			testutil.Eventually(t, 5*time.Second, func() bool {
				r := get(base, short)
				return r.status == 401 && strings.Contains(r.body, "API key expired")
			}, "the expired key is not refused as expired")
		}
		for _, ttl := range []string{"-1", `"1h"`} {
			if r := postJSON(t, "POST", api+"/apikeys", admin, `{"name":"bad","role":"readonly","ttl":`+ttl+`}`); r.status != 400 {
				t.Errorf("ttl %s: %d %s", ttl, r.status, r.body)
			}
		}
	})

	t.Run("roll", func(t *testing.T) {
		r := postJSON(t, "POST", api+"/apikeys", admin, `{"name":"rolling","role":"readonly","isDevelopmentKey":false}`)
		created := decodeBody[struct {
			ID     int64
			APIKey string
		}](t, r)
		old := created.APIKey
		if r := get(b.studio, old); r.status != 200 { // cached on B for an hour from here
			t.Fatalf("before roll: %d", r.status)
		}
		r = postJSON(t, "POST", fmt.Sprintf("%s/apikeys/%d/roll", api, created.ID), admin, `{"grace":1}`)
		rolled := decodeBody[struct {
			Success bool
			ID      int64
			APIKey  string
		}](t, r)
		if r.status != 200 || !rolled.Success || rolled.ID != created.ID || !keys.LooksLikeAPIKey(rolled.APIKey) || rolled.APIKey == old {
			t.Fatalf("roll: %d %s", r.status, r.body)
		}
		for _, k := range []string{old, rolled.APIKey} {
			if r := get(b.studio, k); r.status != 200 {
				t.Errorf("during grace: %d %s", r.status, r.body)
			}
		}
		testutil.Eventually(t, 5*time.Second, func() bool { return get(b.studio, old).status == 401 }, "old secret still works after its grace")
		if r := get(b.studio, rolled.APIKey); r.status != 200 {
			t.Errorf("new secret after the grace: %d", r.status)
		}
		// grace 0: the current secret is refused at once on the other replica (announced as revoked).
		r = postJSON(t, "POST", fmt.Sprintf("%s/apikeys/%d/roll", api, created.ID), admin, `{"grace":0}`)
		if r.status != 200 {
			t.Fatalf("roll with grace 0: %d %s", r.status, r.body)
		}
		testutil.Eventually(t, 2*time.Second, func() bool { return get(b.studio, rolled.APIKey).status == 401 }, "a secret rolled with grace 0 still works")
		for _, tc := range []struct{ path, body string }{{"/apikeys/999999/roll", `{"grace":1}`}, {fmt.Sprintf("/apikeys/%d/roll", created.ID), `{"grace":-1}`}} {
			if r := postJSON(t, "POST", api+tc.path, admin, tc.body); r.status != 404 && r.status != 400 {
				t.Errorf("%s %s: %d", tc.path, tc.body, r.status)
			}
		}
		if r := do(t, "DELETE", fmt.Sprintf("%s/apikeys/%d", api, created.ID), admin, nil); r.status != 200 {
			t.Fatalf("revoke: %d", r.status)
		}
	})

	t.Run("development key and hmac", func(t *testing.T) {
		r := postJSON(t, "POST", api+"/apikeys", admin, `{"name":"future-dev","role":"ingestiononly","isDevelopmentKey":false}`)
		c := decodeBody[struct {
			ID     int64
			APIKey string
		}](t, r)
		url := fmt.Sprintf("%s/apikeys/%d", api, c.ID)
		if r := postJSON(t, "PUT", url, admin, `{"isDevelopmentKey":true,"apiKey":"`+admin+`"}`); r.status != 400 {
			t.Errorf("another key's secret: %d %s", r.status, r.body)
		}
		if r := postJSON(t, "PUT", url, admin, `{"isDevelopmentKey":true,"apiKey":"`+c.APIKey+`"}`); r.status != 200 {
			t.Fatalf("make development key: %d %s", r.status, r.body)
		}
		dev := decodeBody[struct{ APIKey string }](t, do(t, "GET", api+"/devkeys", admin, nil))
		if dev.APIKey != c.APIKey {
			t.Errorf("devkeys after PUT = %q", dev.APIKey)
		}
		for _, weak := range []string{"abc", "0123456789abcdef"} {
			if r := postJSON(t, "POST", api+"/hmackeys", admin, `{"name":"weak","hmacKey":"`+weak+`","isDevelopmentKey":false}`); r.status != 400 || strings.Contains(r.body, weak) {
				t.Errorf("weak hmac key %q: %d %s", weak, r.status, r.body)
			}
		}
		r = postJSON(t, "POST", api+"/hmackeys", admin, `{"name":"fleet","hmacKey":"00112233445566778899aabbccddeeff","isDevelopmentKey":false}`)
		hid := decodeBody[struct{ ID int64 }](t, r).ID
		r = postJSON(t, "POST", fmt.Sprintf("%s/hmackeys/%d/roll", api, hid), admin, `{"grace":60}`)
		hr := decodeBody[struct{ HMACKey string }](t, r)
		if r.status != 200 || len(hr.HMACKey) != 64 {
			t.Fatalf("hmac roll: %d %s", r.status, r.body)
		}
		if r := postJSON(t, "PUT", fmt.Sprintf("%s/hmackeys/%d", api, hid), admin, `{"isDevelopmentKey":true}`); r.status != 200 {
			t.Fatalf("make development hmac key: %d %s", r.status, r.body)
		}
		if dev := decodeBody[struct{ HMACKey string }](t, do(t, "GET", api+"/devkeys", admin, nil)); dev.HMACKey != hr.HMACKey {
			t.Errorf("development hmac key = %q, want the rolled one", dev.HMACKey)
		}
	})

	t.Run("audit", func(t *testing.T) {
		if r := do(t, "GET", api+"/audit", readonly, nil); r.status != 403 {
			t.Fatalf("read-only key on audit: %d", r.status)
		}
		r := do(t, "GET", api+"/audit?limit=1000", admin, nil)
		trail := decodeBody[struct {
			Success bool
			Events  []keys.AuditEvent
			Next    *string
		}](t, r)
		if r.status != 200 || !trail.Success || trail.Next != nil {
			t.Fatalf("audit: %d %s", r.status, r.body)
		}
		count := map[string]int{}
		for _, e := range trail.Events {
			count[e.Action+"/"+e.Outcome]++
			if e.Outcome == keys.OutcomeSuccess && (e.Actor.KeyID != adminKey.ID || e.IPAddress != "127.0.0.1" || e.Target.Kind == "") {
				t.Errorf("event %+v: want the admin key as actor, the client address and a target", e)
			}
		}
		for _, want := range []string{"create/success", "roll/success", "revoke/success", "set_development_key/success", "read/denied"} {
			if count[want] == 0 {
				t.Errorf("no %s event in %v", want, count)
			}
		}
		for i := 1; i < len(trail.Events); i++ {
			if trail.Events[i].Time.After(trail.Events[i-1].Time) {
				t.Fatal("events are not newest first")
			}
		}
		page := decodeBody[struct {
			Events []keys.AuditEvent
			Next   *string
		}](t, do(t, "GET", api+"/audit?limit=2", admin, nil))
		if len(page.Events) != 2 || page.Next == nil {
			t.Fatalf("first page: %+v", page)
		}
		second := decodeBody[struct{ Events []keys.AuditEvent }](t, do(t, "GET", api+"/audit?limit=2&before="+*page.Next, admin, nil))
		if len(second.Events) != 2 || second.Events[0] == page.Events[1] {
			t.Errorf("second page repeats the first: %+v", second.Events)
		}
		for _, q := range []string{"?limit=0", "?limit=x", "?before=nope"} {
			if r := do(t, "GET", api+"/audit"+q, admin, nil); r.status != 400 {
				t.Errorf("audit%s: %d", q, r.status)
			}
		}
	})
}

// TestLifecycleAddresses: behind a trusted load balancer, a key's last use and the audit trail
// record the client address the access log names (X-Forwarded-For), not the balancer's.
func TestLifecycleAddresses(t *testing.T) {
	srv := redistest.Start(t)
	sc, store := redisStoreConfig(t, srv)
	up := newUpstream(t)
	g := startGateway(t, sc, up.URL, func(c *Config) {
		c.LastUsedInterval = 20 * time.Millisecond
		if err := c.TrustedProxies.UnmarshalText([]byte("127.0.0.1/32")); err != nil {
			t.Fatal(err)
		}
	})
	admin, adminKey := mkKey(t, store, 1, keys.RoleAdmin)
	xff := []string{"X-Forwarded-For", "198.51.100.7"}
	if r := do(t, "GET", g.studio+"/v1/api/1/raw-data", admin, nil, xff...); r.status != 200 {
		t.Fatal(r.status)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		k, err := store.GetAPIKey(t.Context(), 1, adminKey.ID)
		return err == nil && k.LastUsedIP == "198.51.100.7"
	}, "last used address is not the forwarded client's")
	r := do(t, "POST", g.studio+"/v1/api/1/apikeys", admin, strings.NewReader(`{"name":"x","role":"readonly"}`), append(xff, "Content-Type", "application/json")...)
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	events, _, err := store.ListAudit(t.Context(), 1, 10, "")
	if err != nil || len(events) != 1 || events[0].IPAddress != "198.51.100.7" {
		t.Errorf("audit events %+v (%v): want the forwarded client's address", events, err)
	}
}
