package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/policy"
)

// recordingTransport captures the outbound request the gateway builds.
type recordingTransport struct{ last *http.Request }

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.last = r
	return cannedTransport{}.RoundTrip(r)
}

func TestGatewayDecisionsAndRewrite(t *testing.T) {
	g, key := benchGateway(t)
	rt := &recordingTransport{}
	g.rp.Transport = rt
	tests := []struct {
		name, method, path, key string
		hdr                     map[string]string
		status                  int
		says                    string
	}{
		{"no key", "GET", "/v1/api/1/raw-data", "", nil, 401, "missing x-api-key"},
		{"unknown key", "GET", "/v1/api/1/raw-data", "ei_" + strings.Repeat("1", 64), nil, 401, "unknown or revoked"},
		{"other project", "GET", "/v1/api/2/raw-data", key, nil, 403, "not project 2"},
		{"no route", "GET", "/elsewhere", key, nil, 404, "no such endpoint"},
		{"dot segment", "GET", "/v1/api/1/%2e%2e/2", key, nil, 400, "dot segments"},
		{"forwarded", "GET", "/v1/api/1/raw-data?x=1", key, map[string]string{"X-Keygate-Role": "admin", "Connection": "X-Keygate-Project"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.key != "" {
				r.Header.Set("x-api-key", tt.key)
			}
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			rt.last = nil
			g.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status != 200 {
				var body ErrorBodyForTest
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Success || !strings.Contains(body.Error, tt.says) {
					t.Errorf("body %s", w.Body)
				}
				if w.Header().Get("Content-Type") != "application/json" {
					t.Errorf("content type %q", w.Header().Get("Content-Type"))
				}
				if rt.last != nil {
					t.Error("a refused request was forwarded")
				}
				return
			}
			out := rt.last
			if out == nil {
				t.Fatal("not forwarded")
			}
			if out.URL.Path != "/v1/api/1/raw-data" || out.URL.RawQuery != "x=1" || out.URL.Host != "127.0.0.1:1" {
				t.Errorf("outbound URL %s", out.URL)
			}
			if got := out.Header.Values(HeaderRole); len(got) != 1 || got[0] != "admin" {
				t.Errorf("role header %v", got)
			}
			if out.Header.Get(HeaderProject) != "1" || out.Header.Get(HeaderKeyID) == "" {
				t.Errorf("identity headers %v", out.Header)
			}
			io.Copy(io.Discard, w.Body)
		})
	}
}

// ErrorBodyForTest mirrors apierr.ErrorBody for decoding.
type ErrorBodyForTest struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
}

// The identity-header cache must never hand one key's values to another: a changed role or project
// and two key ids sharing a slot each get their own values.
func TestIdentityHeadersCache(t *testing.T) {
	g := New(Options{Face: policy.FaceStudio, Upstream: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}})
	cases := []keys.Principal{
		{KeyID: 1, ProjectID: 7, Role: keys.RoleAdmin},
		{KeyID: 1, ProjectID: 7, Role: keys.RoleReadOnly},
		{KeyID: 1, ProjectID: 8, Role: keys.RoleReadOnly},
		{KeyID: 257, ProjectID: 9, Role: keys.RoleAdmin}, // same slot as key 1
		{KeyID: 1, ProjectID: 8, Role: keys.RoleReadOnly},
	}
	for _, p := range cases {
		for range 2 { // built, then from the cache
			got := g.identity(p).vals
			want := []string{strconv.FormatInt(p.ProjectID, 10), p.Role.String(), strconv.FormatInt(p.KeyID, 10)}
			if !slices.Equal(got, want) {
				t.Fatalf("principal %+v: identity headers %v, want %v", p, got, want)
			}
		}
	}
}
