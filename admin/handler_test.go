package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/keys"
)

// env is a management handler over a real embedded store in the test's directory, with a principal
// of each role in project 1 and an admin of project 2.
type env struct {
	h     *Handler
	store *keys.BoltStore
	log   *syncBuf
	// by role in project 1, and an admin of project 2
	admin, deploy, ingest, readonly, other keys.Principal
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newSealer(t *testing.T) *keys.Sealer {
	t.Helper()
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	s, err := keys.NewSealer(master)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, err := keys.OpenBolt(t.TempDir(), newSealer(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{store: store, log: &syncBuf{}}
	e.h = New(store, slog.New(slog.NewTextHandler(e.log, nil)))
	principal := func(pid int64, role keys.Role) keys.Principal {
		t.Helper()
		k, err := keys.GenerateAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		ak, err := store.CreateAPIKey(context.Background(), keys.NewAPIKey{ProjectID: pid, Name: role.String() + " key", Role: role, Key: k})
		if err != nil {
			t.Fatal(err)
		}
		return keys.Principal{KeyID: ak.ID, ProjectID: pid, Role: role, Name: ak.Name}
	}
	e.admin = principal(1, keys.RoleAdmin)
	e.deploy = principal(1, keys.RoleIngestionDeployment)
	e.ingest = principal(1, keys.RoleIngestion)
	e.readonly = principal(1, keys.RoleReadOnly)
	e.other = principal(2, keys.RoleAdmin)
	return e
}

// answer is a decoded response.
type answer struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// call sends one request as p (nil: no principal, as if the gateway had not authenticated it).
func (e *env) call(t *testing.T, p *keys.Principal, method, path, body string) answer {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if p != nil {
		req = req.WithContext(keys.WithPrincipal(req.Context(), *p))
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
		t.Fatalf("%s %s: not a JSON object: %q", method, path, a.raw)
	}
	// The one error shape (docs/protocol.md §3.1): non-2xx means success:false and a reason.
	if a.status >= 300 {
		if a.body["success"] != false || a.body["error"] == "" || a.body["error"] == nil || len(a.body) != 2 {
			t.Errorf("%s %s: error answer %q is not {success:false, error}", method, path, a.raw)
		}
	} else if a.body["success"] != true {
		t.Errorf("%s %s: 2xx answer without success:true: %q", method, path, a.raw)
	}
	return a
}

// must is call for requests that have to succeed.
func (e *env) must(t *testing.T, p *keys.Principal, method, path, body string) answer {
	t.Helper()
	a := e.call(t, p, method, path, body)
	if a.status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, a.status, a.raw)
	}
	return a
}

func (a answer) errText() string { s, _ := a.body["error"].(string); return s }

// TestAccess: who may call what. The gateway checks the same before the handler runs; the handler
// checks again so it is safe on its own.
func TestAccess(t *testing.T) {
	e := newEnv(t)
	none := (*keys.Principal)(nil)
	tests := []struct {
		name       string
		p          *keys.Principal
		method     string
		path       string
		wantStatus int
		wantError  string // part of the error text
	}{
		{"admin lists keys", &e.admin, "GET", "/v1/api/1/apikeys", 200, ""},
		{"ingestion+deployment may not list keys", &e.deploy, "GET", "/v1/api/1/apikeys", 403, "Ingestion + deployment role may not"},
		{"ingestion may not list keys", &e.ingest, "GET", "/v1/api/1/apikeys", 403, "Ingestion role may not"},
		{"read-only may not list keys", &e.readonly, "GET", "/v1/api/1/apikeys", 403, "Read-only role may not"},
		{"read-only may not list HMAC keys", &e.readonly, "GET", "/v1/api/1/hmackeys", 403, "may not"},
		{"ingestion may not read all dev keys", &e.ingest, "GET", "/v1/api/1/devkeys", 403, "may not"},
		{"ingestion reads the dev HMAC key", &e.ingest, "GET", "/v1/api/1/devkeys/hmac", 200, ""},
		{"ingestion+deployment reads the dev HMAC key", &e.deploy, "GET", "/v1/api/1/devkeys/hmac", 200, ""},
		{"read-only may not read the dev HMAC key", &e.readonly, "GET", "/v1/api/1/devkeys/hmac", 403, "may not"},
		{"another project's admin", &e.other, "GET", "/v1/api/1/apikeys", 403, "belongs to project 2, not project 1"},
		{"another project's admin deletes", &e.other, "DELETE", "/v1/api/1/hmackeys/1", 403, "belongs to project 2"},
		{"no principal", none, "GET", "/v1/api/1/apikeys", 401, "x-api-key"},
		{"no principal, key info", none, "GET", "/v1/api/projects/api-key-info", 401, "x-api-key"},
		{"read-only asks who it is", &e.readonly, "GET", "/v1/api/projects/api-key-info", 200, ""},
		{"project id not a number", &e.admin, "GET", "/v1/api/abc/apikeys", 400, "positive integer"},
		{"project id zero", &e.admin, "GET", "/v1/api/0/apikeys", 400, "positive integer"},
		{"key id not a number", &e.admin, "DELETE", "/v1/api/1/apikeys/x", 400, "key id must be a positive integer"},
		{"HMAC id negative", &e.admin, "DELETE", "/v1/api/1/hmackeys/-3", 400, "key id must be a positive integer"},
		{"unknown endpoint", &e.admin, "GET", "/v1/api/1/secrets", 404, "no such key-management endpoint"},
		{"wrong method", &e.admin, "PUT", "/v1/api/1/apikeys", 405, "method PUT is not served on /v1/api/1/apikeys"},
		{"wrong method on a key", &e.admin, "PATCH", "/v1/api/1/apikeys/3", 405, "not served"},
		{"wrong method, no principal", none, "PATCH", "/v1/api/1/hmackeys", 405, "not served"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := e.call(t, tc.p, tc.method, tc.path, "")
			if a.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", a.status, tc.wantStatus, a.raw)
			}
			if !strings.Contains(a.errText(), tc.wantError) {
				t.Errorf("error %q, want it to contain %q", a.errText(), tc.wantError)
			}
			// A 405 lists what the path serves (RFC 9110 §15.5.6); nothing else carries Allow.
			want := map[string]string{"/v1/api/1/apikeys": "GET, HEAD, POST", "/v1/api/1/apikeys/3": "PUT, DELETE", "/v1/api/1/hmackeys": "GET, HEAD, POST"}[tc.path]
			if tc.wantStatus != 405 {
				want = ""
			}
			if got := a.header.Get("Allow"); got != want {
				t.Errorf("Allow %q, want %q", got, want)
			}
		})
	}
	// api-key-info describes the calling key.
	a := e.must(t, &e.readonly, "GET", "/v1/api/projects/api-key-info", "")
	if a.body["apiKeyId"] != float64(e.readonly.KeyID) || a.body["projectId"] != 1.0 || a.body["role"] != "readonly" {
		t.Errorf("api-key-info: %s", a.raw)
	}
}

var generatedKey = regexp.MustCompile(`^ei_[0-9a-f]{64}$`)

// TestCreateAPIKey: what POST apikeys accepts and refuses, and that the whole key is shown once.
func TestCreateAPIKey(t *testing.T) {
	e := newEnv(t)
	own := "ei_" + strings.Repeat("c0ffee", 6)
	tests := []struct {
		name       string
		path       string
		body       string
		wantStatus int
		wantError  string
		wantRole   string
		wantKey    string // "" = generated
	}{
		{"generated", "/v1/api/1/apikeys", `{"name":"ci","role":"readonly"}`, 200, "", "readonly", ""},
		{"caller's own key", "/v1/api/1/apikeys", `{"name":"own","role":"admin","apiKey":"` + own + `"}`, 200, "", "admin", own},
		{"ingestion-only endpoint", "/v1/api/1/apikeys/ingestiononly", `{"name":"uploader"}`, 200, "", "ingestiononly", ""},
		{"ingestion-only ignores a role", "/v1/api/1/apikeys/ingestiononly", `{"name":"sneaky","role":"admin"}`, 200, "", "ingestiononly", ""},
		{"no name", "/v1/api/1/apikeys", `{"role":"readonly"}`, 400, "name is required", "", ""},
		{"blank name", "/v1/api/1/apikeys", `{"name":"  ","role":"readonly"}`, 400, "name is required", "", ""},
		{"ingestion-only without name", "/v1/api/1/apikeys/ingestiononly", `{}`, 400, "name is required", "", ""},
		{"role label instead of wire name", "/v1/api/1/apikeys", `{"name":"x","role":"Admin"}`, 400, "unknown role", "", ""},
		{"no role", "/v1/api/1/apikeys", `{"name":"x"}`, 400, "unknown role", "", ""},
		{"own key without prefix", "/v1/api/1/apikeys", `{"name":"x","role":"admin","apiKey":"` + strings.Repeat("a", 40) + `"}`, 400, `must start with "ei_"`, "", ""},
		{"own key too short", "/v1/api/1/apikeys", `{"name":"x","role":"admin","apiKey":"ei_short"}`, 400, "at least 32 characters", "", ""},
		{"own key with a space", "/v1/api/1/apikeys", `{"name":"x","role":"admin","apiKey":"ei_` + strings.Repeat("a", 30) + ` b"}`, 400, "printable ASCII", "", ""},
		{"own key already in this project", "/v1/api/1/apikeys", `{"name":"x","role":"admin","apiKey":"` + own + `"}`, 400, msgKeyUnusable, "", ""},
		{"own key already in another project", "/v1/api/2/apikeys", `{"name":"x","role":"admin","apiKey":"` + own + `"}`, 400, msgKeyUnusable, "", ""},
		{"empty body", "/v1/api/1/apikeys", ``, 400, "must be a JSON object", "", ""},
		{"not JSON", "/v1/api/1/apikeys", `name=x`, 400, "not valid JSON", "", ""},
		{"wrong type", "/v1/api/1/apikeys", `{"name":"x","role":"admin","isDevelopmentKey":"yes"}`, 400, `"isDevelopmentKey" must be a bool`, "", ""},
		{"too large", "/v1/api/1/apikeys", `{"name":"` + strings.Repeat("x", maxJSONBody) + `"}`, 413, "larger than the limit of 65536 bytes", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &e.admin
			if strings.HasPrefix(tc.path, "/v1/api/2/") {
				p = &e.other
			}
			a := e.call(t, p, "POST", tc.path, tc.body)
			if a.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", a.status, tc.wantStatus, a.raw)
			}
			if tc.wantStatus != 200 {
				if !strings.Contains(a.errText(), tc.wantError) {
					t.Errorf("error %q, want it to contain %q", a.errText(), tc.wantError)
				}
				if strings.Contains(a.raw, own) {
					t.Error("the refusal echoes the caller's key")
				}
				return
			}
			key, _ := a.body["apiKey"].(string)
			switch {
			case tc.wantKey == "" && !generatedKey.MatchString(key):
				t.Errorf("generated key %q", key)
			case tc.wantKey != "" && key != tc.wantKey:
				t.Errorf("key %q, want the caller's", key)
			}
			id := int64(a.body["id"].(float64))
			ak, err := e.store.GetAPIKey(context.Background(), 1, id)
			if err != nil {
				t.Fatal(err)
			}
			if ak.Role.String() != tc.wantRole || ak.Hash != keys.HashKey(key) {
				t.Errorf("stored %s with another hash or role, want %s", ak.Role, tc.wantRole)
			}
			// A listing shows the key's prefix only (it is not the development key).
			list := e.must(t, &e.admin, "GET", "/v1/api/1/apikeys", "")
			if strings.Contains(list.raw, key) || !strings.Contains(list.raw, `"apiKey":"`+keys.DisplayPrefix(key)+`..."`) {
				t.Errorf("listing does not show exactly the prefix of %s...", keys.DisplayPrefix(key))
			}
		})
	}
	if strings.Contains(e.log.String(), own) {
		t.Error("a key reached the log")
	}
}

// TestDevelopmentKeys: the flag moves to the newest development key; the development API key is
// the one listed whole; devkeys and devkeys/hmac return what is set, and nothing when none is.
func TestDevelopmentKeys(t *testing.T) {
	e := newEnv(t)
	a := e.must(t, &e.admin, "GET", "/v1/api/1/devkeys", "")
	if _, ok := a.body["apiKey"]; ok {
		t.Errorf("a new project has a development API key: %s", a.raw)
	}
	if _, ok := a.body["hmacKey"]; ok {
		t.Errorf("a new project has a development HMAC key: %s", a.raw)
	}
	first := e.must(t, &e.admin, "POST", "/v1/api/1/apikeys", `{"name":"dev one","role":"ingestiononly","isDevelopmentKey":true}`).body["apiKey"].(string)
	second := e.must(t, &e.admin, "POST", "/v1/api/1/apikeys", `{"name":"dev two","role":"ingestiononly","isDevelopmentKey":true}`).body["apiKey"].(string)
	hmacKey, _ := keys.GenerateHMACKey()
	e.must(t, &e.admin, "POST", "/v1/api/1/hmackeys", `{"name":"fleet","hmacKey":"`+hmacKey+`","isDevelopmentKey":true}`)

	var list ListAPIKeysResponse
	if err := json.Unmarshal([]byte(e.must(t, &e.admin, "GET", "/v1/api/1/apikeys", "").raw), &list); err != nil {
		t.Fatal(err)
	}
	var devs []APIKeyView
	for _, k := range list.APIKeys {
		if k.IsDevelopmentKey {
			devs = append(devs, k)
		}
		if k.Name == "dev one" && k.APIKey != keys.DisplayPrefix(first)+"..." {
			t.Errorf("the former development key is listed as %q, want its prefix", k.APIKey)
		}
	}
	if len(devs) != 1 || devs[0].Name != "dev two" || devs[0].APIKey != second {
		t.Fatalf("development keys %+v, want only dev two, listed whole", devs)
	}
	a = e.must(t, &e.admin, "GET", "/v1/api/1/devkeys", "")
	if a.body["apiKey"] != second || a.body["hmacKey"] != hmacKey {
		t.Errorf("devkeys: %s", a.raw)
	}
	a = e.must(t, &e.ingest, "GET", "/v1/api/1/devkeys/hmac", "")
	if _, ok := a.body["apiKey"]; ok || a.body["hmacKey"] != hmacKey {
		t.Errorf("devkeys/hmac must carry the HMAC key only: %s", a.raw)
	}
	// Project 2 sees none of project 1's.
	a = e.must(t, &e.other, "GET", "/v1/api/2/devkeys", "")
	if len(a.body) != 1 {
		t.Errorf("project 2's devkeys: %s", a.raw)
	}
}

// TestRevoke: DELETE apikeys revokes any role; the ingestion-only DELETE only ingestion keys; a key of
// another project or an unknown id is "not found", never revoked.
func TestRevoke(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	create := func(p *keys.Principal, pid, role string) int64 {
		t.Helper()
		return int64(e.must(t, p, "POST", "/v1/api/"+pid+"/apikeys", `{"name":"k","role":"`+role+`"}`).body["id"].(float64))
	}
	adminKey := create(&e.admin, "1", "admin")
	ingestKey := create(&e.admin, "1", "ingestiononly")
	otherKey := create(&e.other, "2", "readonly")
	id := itoa
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantError  string
		gone       int64 // revoked by this step (project 1)
	}{
		{"ingestion-only DELETE of an admin key", "/v1/api/1/apikeys/ingestiononly/" + id(adminKey), 400, "has the Admin (full access) role, not Ingestion", 0},
		{"ingestion-only DELETE of an ingestion key", "/v1/api/1/apikeys/ingestiononly/" + id(ingestKey), 200, "", ingestKey},
		{"again", "/v1/api/1/apikeys/ingestiononly/" + id(ingestKey), 404, "no such key in this project", 0},
		{"another project's key through this project", "/v1/api/1/apikeys/" + id(otherKey), 404, "no such key in this project", 0},
		{"unknown id", "/v1/api/1/apikeys/999999", 404, "no such key in this project", 0},
		{"DELETE of the admin key", "/v1/api/1/apikeys/" + id(adminKey), 200, "", adminKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := e.call(t, &e.admin, "DELETE", tc.path, "")
			if a.status != tc.wantStatus || !strings.Contains(a.errText(), tc.wantError) {
				t.Fatalf("%d %q, want %d %q", a.status, a.errText(), tc.wantStatus, tc.wantError)
			}
			if tc.gone != 0 {
				if _, err := e.store.GetAPIKey(ctx, 1, tc.gone); err == nil {
					t.Error("the key is still stored")
				}
			}
		})
	}
	if _, err := e.store.GetAPIKey(ctx, 2, otherKey); err != nil {
		t.Errorf("project 2's key was touched: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestHMACKeys: add, list (whole secret: it is needed to sign), refuse bad input, delete.
func TestHMACKeys(t *testing.T) {
	e := newEnv(t)
	secret, _ := keys.GenerateHMACKey()
	for _, tc := range []struct {
		name      string
		body      string
		wantError string
	}{
		{"no name", `{"hmacKey":"` + secret + `"}`, "name is required"},
		{"no key", `{"name":"x"}`, "hmac key is required"},
		{"too long", `{"name":"x","hmacKey":"` + strings.Repeat("a", 1025) + `"}`, "longer than 1024 bytes"},
		{"not JSON", `[`, "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.call(t, &e.admin, "POST", "/v1/api/1/hmackeys", tc.body)
			if a.status != 400 || !strings.Contains(a.errText(), tc.wantError) {
				t.Errorf("%d %q, want 400 %q", a.status, a.errText(), tc.wantError)
			}
		})
	}
	a := e.must(t, &e.admin, "POST", "/v1/api/1/hmackeys", `{"name":"fleet","hmacKey":"`+secret+`"}`)
	if _, ok := a.body["apiKey"]; ok {
		t.Errorf("POST hmackeys answers an apiKey: %s", a.raw)
	}
	hid := itoa(int64(a.body["id"].(float64)))
	var list ListHMACKeysResponse
	if err := json.Unmarshal([]byte(e.must(t, &e.admin, "GET", "/v1/api/1/hmackeys", "").raw), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.HMACKeys) != 1 || list.HMACKeys[0].HMACKey != secret || list.HMACKeys[0].Name != "fleet" || list.HMACKeys[0].Created.IsZero() {
		t.Fatalf("hmackeys: %+v", list.HMACKeys)
	}
	if a := e.call(t, &e.other, "DELETE", "/v1/api/2/hmackeys/"+hid, ""); a.status != 404 {
		t.Errorf("project 2 deleting project 1's HMAC key: %d %s", a.status, a.raw)
	}
	e.must(t, &e.admin, "DELETE", "/v1/api/1/hmackeys/"+hid, "")
	if a := e.call(t, &e.admin, "DELETE", "/v1/api/1/hmackeys/"+hid, ""); a.status != 404 {
		t.Errorf("deleting twice: %d", a.status)
	}
	if a := e.must(t, &e.admin, "GET", "/v1/api/1/hmackeys", ""); !strings.Contains(a.raw, `"hmacKeys":[]`) {
		t.Errorf("after delete: %s (an empty list must be [], not null)", a.raw)
	}
	if strings.Contains(e.log.String(), secret) {
		t.Error("an HMAC key reached the log")
	}
}

// TestStoreFailures: a store that cannot answer is 503 with Retry-After; secrets sealed with another
// master key are 503 with their own reason; neither leaks the cause to the client.
func TestStoreFailures(t *testing.T) {
	dir := t.TempDir()
	store, err := keys.OpenBolt(dir, newSealer(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := keys.GenerateHMACKey()
	if _, err := store.CreateHMACKey(context.Background(), keys.NewHMACKey{ProjectID: 1, Name: "fleet", Secret: secret}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	// The same file opened with another master key: the HMAC secret cannot be opened.
	other, err := keys.OpenBolt(dir, newSealer(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	admin := keys.Principal{KeyID: 1, ProjectID: 1, Role: keys.RoleAdmin}
	e := &env{h: New(other, slog.New(slog.NewTextHandler(&syncBuf{}, nil))), store: other}
	a := e.call(t, &admin, "GET", "/v1/api/1/hmackeys", "")
	if a.status != 503 || !strings.Contains(a.errText(), "master key") || a.header.Get("Retry-After") != "" {
		t.Errorf("sealed: %d %q Retry-After %q", a.status, a.errText(), a.header.Get("Retry-After"))
	}

	closed, err := keys.OpenBolt(t.TempDir(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	e = &env{h: New(closed, slog.New(slog.NewTextHandler(&syncBuf{}, nil))), store: closed}
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/api/1/apikeys", ""},
		{"POST", "/v1/api/1/apikeys", `{"name":"x","role":"admin"}`},
		{"GET", "/v1/api/1/devkeys", ""},
		{"DELETE", "/v1/api/1/hmackeys/1", ""},
	} {
		a := e.call(t, &admin, r.method, r.path, r.body)
		if a.status != 503 || a.header.Get("Retry-After") != "2" || !strings.Contains(a.errText(), "try again") {
			t.Errorf("%s %s with the store closed: %d %q Retry-After %q", r.method, r.path, a.status, a.errText(), a.header.Get("Retry-After"))
		}
		if strings.Contains(a.raw, "database") || strings.Contains(a.raw, "bolt") {
			t.Errorf("the cause leaked to the client: %s", a.raw)
		}
	}
}
