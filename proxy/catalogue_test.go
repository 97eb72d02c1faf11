package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/cache"
	"github.com/keygate/keygate/internal/accesslog"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/verify"
)

// The attack catalogue (issue #11): every row is one request shape that keygate must refuse before
// the upstream, sent as raw bytes to a real Gateway (real cache.Resolver over a real bolt store,
// the real management handler and ingestion verifier) in front of an upstream that records
// everything reaching it. A row passes only if the answer is the expected refusal in the JSON
// error shape AND the upstream received nothing. A few rows are positive controls (forward set):
// they must reach the upstream, exactly once, in the canonical form named.
//
// Rows live in several files (catalogue_*_test.go), one per class; each file has its own Test
// function that calls runCatalogue with its rows.

// catalogueCase is one row of the catalogue.
type catalogueCase struct {
	name string
	// face is the listener the request goes to; zero means the Studio face.
	face policy.Face
	// method and target form the request line; target is sent verbatim, placeholders replaced
	// (default method GET).
	method, target string
	// key names a fixture key (see catalogueKeys) sent as x-api-key; "" sends none.
	key string
	// header lines ("Name: value") are sent verbatim, in order; {admin1}-style placeholders are
	// replaced by the fixture's keys.
	header []string
	// body is sent with a Content-Length unless a header line already frames it.
	body string
	// raw, when set, is the whole request (placeholders replaced; "\n" is sent as "\r\n" unless
	// rawExact is set) and replaces method, target, key, header and body. The connection is read
	// until the server closes it, so the last request should say "Connection: close" (or be one
	// the server refuses by closing).
	raw      string
	rawExact bool
	// status is the expected status of the first answer.
	status int
	// says is a substring the JSON error text must contain ("" = any).
	says string
	// server marks a request Go's net/http refuses before keygate sees it (plain-text 400, not
	// the JSON shape); only the status and the silent upstream are asserted.
	server bool
	// forward, when set, makes the row a positive control: the request must reach the upstream
	// exactly once with this path (and status is the upstream's 200).
	forward string
	// check, when set, inspects the answer further (headers, body).
	check func(t *testing.T, res *http.Response, body []byte)
	// upstream, when set on a forward row, inspects what the upstream received.
	upstream func(t *testing.T, got recorded)
}

// catalogueKeys are the fixture's keys by name: "{role}{project}".
var catalogueKeys = []struct {
	name    string
	project int64
	role    keys.Role
}{
	{"admin1", 1, keys.RoleAdmin},
	{"deploy1", 1, keys.RoleIngestionDeployment},
	{"ingest1", 1, keys.RoleIngestion},
	{"read1", 1, keys.RoleReadOnly},
	{"admin2", 2, keys.RoleAdmin},
	{"read2", 2, keys.RoleReadOnly},
}

// catalogueHMAC is project 1's HMAC key (the test-vector key of docs/protocol.md §5.3).
const catalogueHMAC = "fed53116f20684c067774ebf9e7bcbdc"

// recorded is one request that reached the recording upstream.
type recorded struct {
	Method, Path, RawPath string
	Header, Trailer       http.Header
	Body                  []byte
}

// recorder is the upstream: it records every request and answers 200 {"success":true}; asked to
// upgrade, it switches protocols (so a gateway that relays upgrades would be caught).
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, recorded{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, Header: r.Header.Clone(), Trailer: r.Trailer.Clone(), Body: body})
	rec.mu.Unlock()
	if r.Header.Get("Upgrade") != "" {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", r.Header.Get("Upgrade"))
		w.WriteHeader(http.StatusSwitchingProtocols)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"success":true}`)
}

func (rec *recorder) take() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := rec.reqs
	rec.reqs = nil
	return r
}

// catalogueFixture is a running keygate (Studio and ingestion faces) in front of a recorder.
type catalogueFixture struct {
	store    *keys.BoltStore
	keys     map[string]string // fixture key name → whole key
	upstream *recorder
	// studio and ingestion are the faces' listeners (httptest servers running the Gateway).
	studio, ingestion *httptest.Server
	// log is the access log both faces write (JSON lines).
	log *syncBuffer
}

// syncBuffer is an io.Writer safe for the servers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newCatalogueFixture starts the fixture: both faces as `keygate serve` builds them (metrics, the
// access log, a rate limiter whose limits are far above what a test sends, the key API and the
// Keys page, the ingestion verifier in reject mode). tweak, when non-nil, may change each face's
// Options before its Gateway is built (e.g. MaxBody, a Verifier with other settings).
func newCatalogueFixture(t *testing.T, tweak func(policy.Face, *Options)) *catalogueFixture {
	t.Helper()
	ctx := context.Background()
	s, err := keys.OpenBolt(t.TempDir(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	fx := &catalogueFixture{store: s, keys: map[string]string{}, upstream: &recorder{}, log: &syncBuffer{}}
	for _, k := range catalogueKeys {
		whole, err := keys.GenerateAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: k.project, Name: k.name, Role: k.role, Key: whole}); err != nil {
			t.Fatal(err)
		}
		fx.keys[k.name] = whole
	}
	if _, err := s.CreateHMACKey(ctx, keys.NewHMACKey{ProjectID: 1, Name: "dev", Secret: catalogueHMAC, IsDevelopmentKey: true}); err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(fx.upstream)
	t.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)
	resolver := cache.NewResolver(s, cache.Options{})
	projects := cache.NewProjects(s, cache.Options{})
	guard := verify.NewMemoryReplayGuard(0, nil)
	transport := NewTransport(TransportOptions{DialTimeout: 2 * time.Second, ResponseHeaderTimeout: 10 * time.Second})
	metrics := NewMetrics(prometheus.NewRegistry())
	alog := accesslog.New(fx.log, false)
	high := keys.Limit{Rate: 1 << 20, Period: time.Second, Burst: 1 << 20}
	limiter := &RateLimits{
		Engine: limit.NewLocal(0, nil), Projects: projects, Headers: true, Metrics: metrics,
		Limits: policy.Limits{
			IngestionKey:     map[keys.Role]keys.Limit{keys.RoleAdmin: high, keys.RoleIngestionDeployment: high, keys.RoleIngestion: high, keys.RoleReadOnly: high},
			IngestionProject: high, IngestionDevice: high, StudioKey: high,
		},
	}
	// The audit lines of refused key-management calls are expected here: not on the test's stderr.
	quiet := slog.New(slog.DiscardHandler)
	start := func(face policy.Face) *httptest.Server {
		opt := Options{Face: face, Upstream: upURL, Resolver: resolver, Transport: transport, MaxBody: 32 << 20,
			Metrics: metrics, AccessLog: alog, Limiter: limiter, Usage: keys.NewUsageRecorder(nil, time.Hour, nil)}
		if face == policy.FaceStudio {
			opt.Local, opt.Page = admin.New(s, quiet), admin.NewPage()
		} else {
			opt.Verifier = NewIngest(IngestOptions{Projects: projects, Replay: guard, Fallback: guard, Metrics: metrics, Log: quiet})
		}
		if tweak != nil {
			tweak(face, &opt)
		}
		srv := httptest.NewServer(New(opt))
		t.Cleanup(srv.Close)
		return srv
	}
	fx.studio, fx.ingestion = start(policy.FaceStudio), start(policy.FaceIngestion)
	return fx
}

// expand replaces {name} placeholders with the fixture's keys.
func (fx *catalogueFixture) expand(s string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	for name, k := range fx.keys {
		s = strings.ReplaceAll(s, "{"+name+"}", k)
	}
	return s
}

// wire builds the bytes a row sends.
func (fx *catalogueFixture) wire(c catalogueCase) string {
	if c.raw != "" {
		raw := fx.expand(c.raw)
		if !c.rawExact {
			raw = strings.ReplaceAll(strings.ReplaceAll(raw, "\r\n", "\n"), "\n", "\r\n")
		}
		return raw
	}
	method := c.method
	if method == "" {
		method = "GET"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: keygate.test\r\nConnection: close\r\n", method, fx.expand(c.target))
	if c.key != "" {
		k, ok := fx.keys[c.key]
		if !ok {
			k = c.key // a literal key
		}
		fmt.Fprintf(&b, "x-api-key: %s\r\n", k)
	}
	body := fx.expand(c.body)
	framed := false
	for _, h := range c.header {
		lower := strings.ToLower(h)
		if strings.HasPrefix(lower, "content-length:") || strings.HasPrefix(lower, "transfer-encoding:") {
			framed = true
		}
		b.WriteString(fx.expand(h))
		b.WriteString("\r\n")
	}
	if !framed && (body != "" || method == "POST" || method == "PUT" || method == "PATCH") {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.String()
}

// exchange sends raw bytes to srv and reads every answer until the server closes. (It does not
// half-close: net/http reads a client's EOF as "gone" and cancels the request.)
func exchange(t *testing.T, srv *httptest.Server, raw string) ([]*http.Response, [][]byte) {
	t.Helper()
	return exchangeAddr(t, srv.Listener.Addr().String(), raw)
}

// exchangeAddr is exchange with any listener's address.
func exchangeAddr(t *testing.T, addr, raw string) ([]*http.Response, [][]byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	br := bufio.NewReader(conn)
	var ress []*http.Response
	var bodies [][]byte
	for {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		ress = append(ress, res)
		bodies = append(bodies, body)
		if res.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	return ress, bodies
}

// runCatalogue runs rows against a fresh fixture.
func runCatalogue(t *testing.T, cases []catalogueCase) {
	t.Helper()
	runCatalogueOn(t, newCatalogueFixture(t, nil), cases)
}

// runCatalogueOn runs rows against fx (for rows that need a tweaked fixture).
func runCatalogueOn(t *testing.T, fx *catalogueFixture, cases []catalogueCase) {
	t.Helper()
	seen := map[string]bool{}
	defer fx.checkLog(t)
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate row name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			srv := fx.studio
			if c.face == policy.FaceIngestion {
				srv = fx.ingestion
			}
			fx.upstream.take()
			ress, bodies := exchange(t, srv, fx.wire(c))
			got := fx.upstream.take()
			if len(ress) == 0 {
				t.Fatalf("no answer (want %d)", c.status)
			}
			res, body := ress[0], bodies[0]
			if c.forward != "" {
				if res.StatusCode != c.status {
					t.Fatalf("status %d, want %d: %s", res.StatusCode, c.status, body)
				}
				if len(got) != 1 || got[0].Path != c.forward {
					t.Fatalf("upstream received %v, want exactly one request for %s; answer %v %s; later %v", paths(got), c.forward, res.Header, body, paths(fx.upstream.take()))
				}
				if c.check != nil {
					c.check(t, res, body)
				}
				if c.upstream != nil {
					c.upstream(t, got[0])
				}
				return
			}
			if len(got) != 0 {
				t.Errorf("the upstream received %d request(s): %v", len(got), paths(got))
			}
			for i, r := range ress {
				if r.StatusCode == http.StatusSwitchingProtocols {
					t.Errorf("answer %d switched protocols", i+1)
				}
			}
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, c.status, body)
			}
			if !c.server {
				var eb struct {
					Success *bool   `json:"success"`
					Error   *string `json:"error"`
				}
				if ct := res.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
				if err := json.Unmarshal(body, &eb); err != nil || eb.Success == nil || *eb.Success || eb.Error == nil || *eb.Error == "" {
					t.Errorf("not the JSON error shape: %s", body)
				} else if !strings.Contains(*eb.Error, c.says) {
					t.Errorf("error %q does not say %q", *eb.Error, c.says)
				}
				for name, k := range fx.keys {
					if strings.Contains(string(body), k) {
						t.Errorf("the answer echoes key %s", name)
					}
				}
			}
			if c.check != nil {
				c.check(t, res, body)
			}
		})
	}
}

// checkLog asserts that no fixture key reached the access log (a key pasted into a path is
// redacted; keys in headers and queries are never logged).
func (fx *catalogueFixture) checkLog(t *testing.T) {
	t.Helper()
	log := fx.log.String()
	for name, k := range fx.keys {
		if strings.Contains(log, k[len("ei_"):]) {
			t.Errorf("key %s is in the access log", name)
		}
	}
}

func paths(rs []recorded) []string {
	var p []string
	for _, r := range rs {
		p = append(p, r.Method+" "+r.Path)
	}
	return p
}

// row helpers keep the tables short.

func studio(name, method, target, key string, status int, says string, header ...string) catalogueCase {
	return catalogueCase{name: name, method: method, target: target, key: key, header: header, status: status, says: says}
}

func ingestion(name, method, target, key string, status int, says string, header ...string) catalogueCase {
	c := studio(name, method, target, key, status, says, header...)
	c.face = policy.FaceIngestion
	return c
}

// TestCatalogueHolds is the classes that already held before issue #11: the role matrix on both
// faces, cross-project calls, key-management IDOR, %2F and dot-segment encodings, identity-header
// spoofing, CL/TE smuggling shapes. Positive controls show the fixture forwards what it should.
func TestCatalogueHolds(t *testing.T) {
	var cases []catalogueCase
	add := func(c ...catalogueCase) { cases = append(cases, c...) }

	// Positive controls.
	fwd := func(name, method, target, key, path string, header ...string) catalogueCase {
		c := studio(name, method, target, key, 200, "", header...)
		c.forward = path
		return c
	}
	add(
		fwd("control: read", "GET", "/v1/api/1/raw-data", "read1", "/v1/api/1/raw-data"),
		fwd("control: projects", "GET", "/v1/api/projects", "read1", "/v1/api/projects"),
		fwd("control: add data", "POST", "/v1/api/1/raw-data/3/rename", "ingest1", "/v1/api/1/raw-data/3/rename"),
		fwd("control: deploy", "POST", "/v1/api/1/jobs/build-ondevice-model", "deploy1", "/v1/api/1/jobs/build-ondevice-model"),
		fwd("control: admin", "POST", "/v1/api/1/jobs/train/keras/1", "admin1", "/v1/api/1/jobs/train/keras/1"),
		fwd("control: escaped letter", "GET", "/v1/api/1/raw-d%61ta", "read1", "/v1/api/1/raw-data"),
	)

	// Role matrix, Studio face: each class refused to the roles docs/protocol.md §2.2 denies it.
	type cls struct {
		name, method, target string
	}
	studioClasses := []struct {
		cls
		denied []string
	}{
		{cls{"add data", "POST", "/v1/api/1/raw-data/3/rename"}, []string{"read1"}},
		{cls{"add data devices", "PUT", "/v1/api/1/devices/abc/rename"}, []string{"read1"}},
		{cls{"add data upload", "POST", "/v1/api/1/upload/portal"}, []string{"read1"}},
		{cls{"add data labels", "DELETE", "/v1/api/1/labels/x"}, []string{"read1"}},
		{cls{"deploy", "POST", "/v1/api/1/jobs/build-ondevice-model"}, []string{"read1", "ingest1"}},
		{cls{"deploy jobs/deploy", "POST", "/v1/api/1/jobs/deploy"}, []string{"read1", "ingest1"}},
		{cls{"deploy deployment", "PUT", "/v1/api/1/deployment/x"}, []string{"read1", "ingest1"}},
		{cls{"admin train", "POST", "/v1/api/1/jobs/train/keras/1"}, []string{"read1", "ingest1", "deploy1"}},
		{cls{"admin settings", "POST", "/v1/api/1"}, []string{"read1", "ingest1", "deploy1"}},
		{cls{"admin delete project", "DELETE", "/v1/api/1"}, []string{"read1", "ingest1", "deploy1"}},
		{cls{"admin other v1", "GET", "/v1/user"}, []string{"read1", "ingest1", "deploy1"}},
		{cls{"admin list apikeys", "GET", "/v1/api/1/apikeys"}, []string{"read1", "ingest1", "deploy1"}},
		{cls{"admin create apikey", "POST", "/v1/api/1/apikeys"}, []string{"read1", "ingest1", "deploy1"}},
		{cls{"admin revoke apikey", "DELETE", "/v1/api/1/apikeys/1"}, []string{"read1", "ingest1", "deploy1"}},
		{cls{"admin ingestiononly key", "POST", "/v1/api/1/apikeys/ingestiononly"}, []string{"read1", "ingest1", "deploy1"}},
		{cls{"admin hmackeys", "GET", "/v1/api/1/hmackeys"}, []string{"read1", "ingest1", "deploy1"}},
		{cls{"admin create hmackey", "POST", "/v1/api/1/hmackeys"}, []string{"read1", "ingest1", "deploy1"}},
		{cls{"admin devkeys", "GET", "/v1/api/1/devkeys"}, []string{"read1", "ingest1", "deploy1"}},
		{cls{"add data devkeys/hmac", "GET", "/v1/api/1/devkeys/hmac"}, []string{"read1"}},
	}
	for _, sc := range studioClasses {
		for _, k := range sc.denied {
			add(studio("role: "+k+" "+sc.name, sc.method, sc.target, k, 403, "role may not"))
		}
	}
	// Role matrix, ingestion face: read-only keys may not add data.
	for _, cat := range policy.IngestionCategories {
		add(ingestion("role: read1 ingestion "+cat, "POST", "/api/"+cat+"/data", "read1", 403, "role may not",
			"Content-Type: application/json"))
	}
	add(ingestion("role: read1 ingestion files", "POST", "/api/training/files", "read1", 403, "role may not",
		"Content-Type: multipart/form-data; boundary=x"))

	// Identity: no key, unknown key, key in the wrong place.
	add(
		studio("auth: no key", "GET", "/v1/api/1/raw-data", "", 401, "missing x-api-key"),
		studio("auth: unknown key", "GET", "/v1/api/1/raw-data", "ei_"+strings.Repeat("0", 64), 401, "unknown or revoked"),
		studio("auth: key in query", "GET", "/v1/api/1/raw-data?x-api-key={admin1}", "", 400, "not in the URL"),
		studio("auth: key as bearer", "GET", "/v1/api/1/raw-data", "", 401, "missing x-api-key", "Authorization: Bearer {admin1}"),
		ingestion("auth: ingestion no key", "POST", "/api/training/data", "", 401, "missing x-api-key"),
		ingestion("auth: ingestion unknown key", "POST", "/api/training/data", "ei_"+strings.Repeat("f", 64), 401, "unknown or revoked"),
	)

	// Cross-project: a project-1 key on project 2's paths, every class.
	for _, p := range []struct{ method, path string }{
		{"GET", "/v1/api/2"}, {"GET", "/v1/api/2/raw-data"}, {"POST", "/v1/api/2/raw-data/1/rename"},
		{"POST", "/v1/api/2/jobs/build-ondevice-model"}, {"POST", "/v1/api/2/jobs/train/keras/1"},
		{"GET", "/v1/api/2/apikeys"}, {"POST", "/v1/api/2/apikeys"}, {"DELETE", "/v1/api/2/apikeys/5"},
		{"GET", "/v1/api/2/hmackeys"}, {"GET", "/v1/api/2/devkeys"}, {"GET", "/v1/api/2/devkeys/hmac"},
		{"DELETE", "/v1/api/2/hmackeys/1"},
	} {
		add(studio("cross-project: admin1 "+p.method+" "+p.path, p.method, p.path, "admin1", 403, "not project 2"))
	}
	add(studio("cross-project: read2 on project 1", "GET", "/v1/api/1/raw-data", "read2", 403, "not project 1"))

	// Key-management IDOR: another project's key ids through one's own project.
	add(
		studio("idor: revoke project 2's key via project 1", "DELETE", "/v1/api/1/apikeys/5", "admin1", 404, "no such key"),
		studio("idor: revoke ingestiononly of project 2", "DELETE", "/v1/api/1/apikeys/ingestiononly/6", "admin1", 404, "no such key"),
		studio("idor: delete hmac key of project 2", "DELETE", "/v1/api/1/hmackeys/99", "admin1", 404, "no such key"),
		studio("idor: key id not a number", "DELETE", "/v1/api/1/apikeys/abc", "admin1", 400, "positive integer"),
		studio("idor: key id negative", "DELETE", "/v1/api/1/apikeys/-1", "admin1", 400, "positive integer"),
	)

	// Encoded slashes, backslashes, dot segments, control characters.
	for _, p := range []string{
		"/v1/api/1/%2e%2e/2/raw-data", "/v1/api/1/%2E%2E/2", "/v1/api/1/raw-data/../../2", "/v1/api/1/./raw-data",
		"/v1/api/1%2f..%2f2/raw-data", "/v1/api/1%2F..%2F2", "/v1/api/1/raw-data%2f..%2f..%2f2", "/v1/api/1%5c..%5c2",
		"/v1/api/1/.%2e/2", "/v1/api/1/%2e./2", "/v1/api/1/raw-data/%00", "/v1/api/1/raw-data/%0a",
		"/v1/api/1/raw-data/..", "/v1/api/1/raw-data/%2e",
	} {
		add(studio("encoding: "+p, "GET", p, "admin1", 400, "path"))
	}
	add(
		ingestion("encoding: ingestion dot segments", "POST", "/api/training/../testing/data", "ingest1", 400, "path"),
		ingestion("encoding: ingestion encoded slash", "POST", "/api/training%2fdata", "ingest1", 400, "path"),
	)
	// A backslash or a raw space in the request line is refused by net/http or by keygate.
	add(catalogueCase{name: "encoding: raw backslash", target: `/v1/api/1\..\2`, key: "admin1", status: 400, says: "path"})

	// Identity-header spoofing: client-sent X-Keygate-* headers never reach the upstream as sent.
	// (Here the request is also refused by its role, so nothing may reach the upstream at all.)
	for _, h := range []string{
		"X-Keygate-Role: admin", "x-keygate-role: admin", "X-KEYGATE-ROLE: admin", "X-Keygate-Project: 2",
		"x-keygate-key-id: 1", "X-Keygate-Development-Key: true", "X-Keygate-Signature: valid",
	} {
		add(studio("spoof: "+h, "POST", "/v1/api/1/jobs/train/keras/1", "read1", 403, "role may not", h))
	}
	// And on a forwarded request, the upstream sees keygate's values only.
	for _, h := range []string{"X-Keygate-Role: admin", "x-KEYGATE-project: 2", "X-Keygate-Signature: valid", "X-Keygate-Key-Id: 999"} {
		c := fwd("spoof forwarded: "+h, "GET", "/v1/api/1/raw-data", "read1", "/v1/api/1/raw-data", h)
		cases = append(cases, c)
	}

	// CL/TE smuggling: refused by net/http before keygate, and nothing reaches the upstream.
	smuggle := func(name, raw string) catalogueCase {
		return catalogueCase{name: "smuggling: " + name, raw: raw, status: 400, server: true}
	}
	add(
		// Both framings: net/http reads it as chunked (TE wins, RFC 9112 §6.3) and re-frames it for
		// the upstream, so keygate and the upstream see the same one request; the connection is
		// closed after the answer, so the bytes after the last chunk are never read as a request
		// (catalogue_framing_test.go).
		catalogueCase{name: "smuggling: CL and TE", raw: "POST /v1/api/1/raw-data/1/rename HTTP/1.1\nHost: k\nx-api-key: {read1}\nContent-Length: 4\nTransfer-Encoding: chunked\n\n0\n\nGET /v1/api/1/jobs/train/keras/1 HTTP/1.1\nHost: k\nConnection: close\n\n",
			status: 403, says: "role may not"},
		smuggle("two CL", "POST /v1/api/1/raw-data/1/rename HTTP/1.1\nHost: k\nx-api-key: {ingest1}\nContent-Length: 0\nContent-Length: 44\n\nPOST /v1/api/1/jobs/train HTTP/1.1\nHost: k\n\n"),
		smuggle("CL with sign", "POST /v1/api/1/raw-data/1/rename HTTP/1.1\nHost: k\nx-api-key: {ingest1}\nContent-Length: +4\n\nabcd"),
		smuggle("CL hex", "POST /v1/api/1/raw-data/1/rename HTTP/1.1\nHost: k\nx-api-key: {ingest1}\nContent-Length: 0x4\n\nabcd"),
		smuggle("CL list", "POST /v1/api/1/raw-data/1/rename HTTP/1.1\nHost: k\nx-api-key: {ingest1}\nContent-Length: 4, 5\n\nabcd"),
		smuggle("space before colon", "GET /v1/api/1/raw-data HTTP/1.1\nHost: k\nx-api-key : {read1}\n\n"),
		smuggle("no host", "GET /v1/api/1/raw-data HTTP/1.1\nx-api-key: {read1}\n\n"),
		smuggle("two hosts", "GET /v1/api/1/raw-data HTTP/1.1\nHost: a\nHost: b\nx-api-key: {read1}\n\n"),
		smuggle("NUL in header", "GET /v1/api/1/raw-data HTTP/1.1\nHost: k\nx-api-key: {read1}\nX-A: a\x00b\n\n"),
		smuggle("space in target", "GET /v1/api/1 /../2/raw-data HTTP/1.1\nHost: k\nx-api-key: {read1}\n\n"),
		smuggle("bad escape in target", "GET /v1/api/1/%zz HTTP/1.1\nHost: k\nx-api-key: {read1}\n\n"),
		smuggle("%u escape (Jetty, IIS)", "GET /v1/api/1/%u002e%u002e/2/raw-data HTTP/1.1\nHost: k\nx-api-key: {read1}\n\n"),
		smuggle("truncated escape in target", "GET /v1/api/1/raw-data% HTTP/1.1\nHost: k\nx-api-key: {read1}\n\n"),
		smuggle("HTTP/0.9 style", "GET /v1/api/1/raw-data\n\n"),
		smuggle("absolute-form other host", "GET http://evil/v1/api/1/raw-data HTTP/1.1\nHost: k\nx-api-key: {read1}\nX-A: \x01\n\n"),
	)
	// Transfer codings other than chunked: 501 from net/http, nothing upstream.
	for _, te := range []string{"gzip", "xchunked", "chunked, gzip", "identity"} {
		add(catalogueCase{name: "smuggling: TE " + te, raw: "POST /v1/api/1/raw-data/1/rename HTTP/1.1\nHost: k\nx-api-key: {ingest1}\nTransfer-Encoding: " + te + "\n\n0\n\n",
			status: 501, server: true})
	}
	add(
		// obs-fold: net/http folds the line into x-api-key's value, so the key is unknown.
		catalogueCase{name: "smuggling: obs-fold", raw: "GET /v1/api/1/raw-data HTTP/1.1\nHost: k\nx-api-key: {read1}\n X-Keygate-Role: admin\nConnection: close\n\n",
			status: 401, says: "unknown or revoked"},
		// A bad chunk size on the ingestion face: the body is read (and fails) before anything is sent.
		catalogueCase{name: "smuggling: bad chunk size", face: policy.FaceIngestion,
			raw: "POST /api/training/data HTTP/1.1\nHost: k\nx-api-key: {ingest1}\nTransfer-Encoding: chunked\nConnection: close\n\nzz\n\n", status: 400},
	)
	// A smuggled second request in a body is only ever body bytes: the pipelined request after a
	// refused one is judged on its own (and refused too).
	add(catalogueCase{name: "smuggling: pipelined after refusal",
		raw:    "POST /v1/api/1/jobs/train/keras/1 HTTP/1.1\nHost: k\nx-api-key: {read1}\nContent-Length: 0\n\nPOST /v1/api/1/jobs/train/keras/2 HTTP/1.1\nHost: k\nx-api-key: {read1}\nContent-Length: 0\nConnection: close\n\n",
		status: 403, says: "role may not"})

	// Ingestion face: only POST /api/{category}/files|data.
	for _, p := range []struct{ method, path string }{
		{"GET", "/api/training/data"}, {"POST", "/api/unknown/data"}, {"POST", "/api/training/other"},
		{"POST", "/api/training/data/extra"}, {"POST", "/v1/api/1/raw-data"}, {"POST", "/api"},
	} {
		add(ingestion("ingestion route: "+p.method+" "+p.path, p.method, p.path, "admin1", 404, "no such endpoint"))
	}

	runCatalogue(t, cases)
}
