package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate/policy"
)

// readsAsJudged reports whether a WSGI environ holds exactly the key and the identity keygate
// judged for read1 (project 1, readonly) and no other X-Keygate-* value.
func readsAsJudged(env map[string]string, key string) bool {
	if env["HTTP_X_API_KEY"] != key || env["HTTP_X_KEYGATE_ROLE"] != "readonly" || env["HTTP_X_KEYGATE_PROJECT"] != "1" {
		return false
	}
	for k := range env {
		switch {
		case k == "HTTP_X_KEYGATE_ROLE", k == "HTTP_X_KEYGATE_PROJECT", k == "HTTP_X_KEYGATE_KEY_ID":
		case strings.HasPrefix(k, "HTTP_X_KEYGATE_"):
			return false
		}
	}
	return true
}

// startWSGI runs testdata/wsgi_echo.py (python3's wsgiref) and returns its base URL.
func startWSGI(t *testing.T) *url.URL {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not installed: run `make deps` (the WSGI differential test needs it)")
	}
	script, _ := filepath.Abs(filepath.Join("testdata", "wsgi_echo.py"))
	cmd := exec.Command(py, script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", script, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	port, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("wsgi_echo.py printed no port: %v", err)
	}
	return &url.URL{Scheme: "http", Host: "127.0.0.1:" + strings.TrimSpace(port)}
}

// TestWSGIReadsHeadersAsJudged is the differential test for issue #11's header class: a WSGI
// backend (python3's wsgiref, which merges names as CGI, gunicorn and Werkzeug do) behind the real
// gateway. For every header spelling keygate forwards, the backend must read exactly one key, the
// one keygate judged, and exactly keygate's identity values; every spelling that it would read
// otherwise must be refused, and must not reach it at all.
func TestWSGIReadsHeadersAsJudged(t *testing.T) {
	wsgi := startWSGI(t)
	fx := newCatalogueFixture(t, func(_ policy.Face, o *Options) { o.Upstream = wsgi })
	read1 := fx.keys["read1"]
	tests := []struct {
		name    string
		headers []string // sent after the request line; {read1}-style placeholders
		refused bool
	}{
		{"plain", []string{"x-api-key: {read1}"}, false},
		{"upper case", []string{"X-API-KEY: {read1}"}, false},
		{"identity headers dropped", []string{"x-api-key: {read1}", "X-Keygate-Role: admin", "x-keygate-project: 2", "X-KEYGATE-KEY-ID: 1"}, false},
		{"identity header named in Connection", []string{"x-api-key: {read1}", "Connection: X-Keygate-Role", "X-Keygate-Role: admin"}, false},
		{"identity and routing headers dropped", []string{"x-api-key: {read1}", "X-Keygate-Development-Key: true", "X-Original-URL: /v1/api/2", "Forwarded: host=evil"}, false},
		{"underscore role", []string{"x-api-key: {read1}", "X_Keygate_Role: admin"}, true},
		{"underscore project", []string{"x-api-key: {read1}", "x_keygate_project: 2"}, true},
		{"mixed role", []string{"x-api-key: {read1}", "X-Keygate_Role: admin"}, true},
		{"underscore key", []string{"x-api-key: {read1}", "x_api_key: {admin1}"}, true},
		{"underscore key only", []string{"X_API_KEY: {admin1}"}, true},
		{"two keys", []string{"x-api-key: {read1}", "x-api-key: {admin1}"}, true},
		{"two key casings", []string{"x-api-key: {read1}", "X-Api-Key: {admin1}"}, true},
		{"key list", []string{"x-api-key: {read1},{admin1}"}, true},
		{"underscore signature", []string{"x-api-key: {read1}", "X_Keygate_Signature: valid"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "GET /v1/api/1/raw-data HTTP/1.1\r\nHost: k\r\nConnection: close\r\n"
			for _, h := range tt.headers {
				raw += fx.expand(h) + "\r\n"
			}
			ress, bodies := exchange(t, fx.studio, raw+"\r\n")
			if len(ress) != 1 {
				t.Fatalf("%d answers", len(ress))
			}
			if tt.refused {
				if ress[0].StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d, want 400: %s", ress[0].StatusCode, bodies[0])
				}
				// Why it must be refused: sent straight to the backend with the identity headers
				// keygate would add, WSGI reads another key or another identity.
				direct := raw + "X-Keygate-Role: readonly\r\nX-Keygate-Project: 1\r\n\r\n"
				dress, dbodies := exchangeAddr(t, wsgi.Host, direct)
				var env map[string]string
				if len(dress) != 1 || json.Unmarshal(dbodies[0], &env) != nil {
					t.Fatalf("direct to WSGI: %v", dbodies)
				}
				if readsAsJudged(env, read1) {
					t.Errorf("WSGI reads this spelling as keygate would judge it (%v): the refusal is not needed", env)
				}
				return
			}
			if ress[0].StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", ress[0].StatusCode, bodies[0])
			}
			var env map[string]string
			if err := json.Unmarshal(bodies[0], &env); err != nil {
				t.Fatalf("not the WSGI echo: %s", bodies[0])
			}
			want := map[string]string{"HTTP_X_API_KEY": read1, "HTTP_X_KEYGATE_ROLE": "readonly", "HTTP_X_KEYGATE_PROJECT": "1", "PATH_INFO": "/v1/api/1/raw-data"}
			for k, v := range want {
				if env[k] != v {
					t.Errorf("WSGI reads %s = %q, want %q", k, env[k], v)
				}
			}
			for k := range env {
				if strings.HasPrefix(k, "HTTP_X_KEYGATE_") && k != "HTTP_X_KEYGATE_ROLE" && k != "HTTP_X_KEYGATE_PROJECT" && k != "HTTP_X_KEYGATE_KEY_ID" {
					t.Errorf("WSGI reads %s = %q, which keygate did not set", k, env[k])
				}
				if k == "HTTP_X_ORIGINAL_URL" || k == "HTTP_FORWARDED" {
					t.Errorf("WSGI reads routing header %s", k)
				}
			}
		})
	}
	// Exactly the forwarded requests reached the backend.
	res, err := http.Get(wsgi.String() + "/__count")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var count struct{ Count int }
	// Every case reached it once: the forwarded ones through keygate, the refused ones directly.
	if json.Unmarshal(b, &count) != nil || count.Count != len(tests) {
		t.Errorf("the WSGI backend saw %s, want %d requests", b, len(tests))
	}
}
