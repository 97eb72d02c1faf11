package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate/policy"
)

// TestCataloguePaths is issue #11's request-line classes: path spellings that common routers read
// as another project or route (case variants, ';' parameters, non-canonical project ids, empty
// and dot segments, near spellings of key-management routes), and methods read two ways. Every
// one is refused before identify, with nothing upstream, whatever the key's role.
func TestCataloguePaths(t *testing.T) {
	var cases []catalogueCase
	add := func(c ...catalogueCase) { cases = append(cases, c...) }
	const notCanonical = "not in canonical form"

	// Case variants of the fixed prefixes (Express routes case-insensitively by default).
	for _, p := range []string{
		"/v1/API/2/raw-data", "/v1/Api/2/raw-data", "/v1/aPi/1/apikeys", "/V1/api/1/raw-data", "/V1/API/2",
		"/v1/ap%49/2/raw-data", "/v1/api%20/2/raw-data", "/v1/%20api/2/raw-data", "/v1/api.json/2",
		"/v1/api/PROJECTS", "/v1/api/Projects", "/v1/api/projects.json", "/v1/api/projects/API-KEY-INFO", "/KEYS",
	} {
		add(studio("prefix: admin1 "+p, "GET", p, "admin1", 404, "no such endpoint"))
	}
	add(
		ingestion("prefix: ingestion /API", "POST", "/API/training/data", "ingest1", 404, "no such endpoint"),
		ingestion("prefix: ingestion Training", "POST", "/api/Training/data", "ingest1", 404, "no such endpoint"),
		ingestion("prefix: ingestion DATA", "POST", "/api/training/DATA", "ingest1", 404, "no such endpoint"),
		ingestion("prefix: ingestion Files", "POST", "/api/training/Files", "ingest1", 404, "no such endpoint"),
	)

	// ';' path parameters anywhere (Servlet containers strip them; "..;" is ".." to Tomcat).
	for _, p := range []string{
		"/v1/api;/2/raw-data", "/v1;/api/2", "/v1/api/1/raw-data/..;/settings", "/v1/api/1;x/raw-data", "/v1/api/2;x/raw-data",
		"/v1/api/1/apikeys;x", "/v1/api/1/raw-data;jsessionid=1", "/v1/api/1/%3b/apikeys", "/v1/api/1/raw-data/%2e%2e;/apikeys",
		"/v1/api/1/raw-data/..%3b/..%3b/2",
	} {
		add(studio("semicolon: read1 "+p, "GET", p, "read1", 400, notCanonical))
	}
	add(ingestion("semicolon: ingestion", "POST", "/api/training;x/data", "ingest1", 400, notCanonical))

	// Project ids a lenient parser reads as 2 (Number(), parseInt, Long.parseLong).
	for _, id := range []string{
		"02", "+2", "-2", "2.0", "2e0", "0x2", "0b10", "%202", "2%20", "%2B2", "2abc", ".2e1", "0", "000",
		"99999999999999999999", "%d9%a2", "%ef%bc%92", "2%09", "2%0a", "%c2%a02", "%232", "-%232", "%ef%bc%8b2", "%e4%ba%8c", "2_0",
	} {
		add(studio("project id: admin1 "+id, "GET", "/v1/api/"+id+"/raw-data", "admin1", 400, ""))
	}
	add(studio("project id: apikeys via 02", "POST", "/v1/api/02/apikeys", "admin1", 400, notCanonical))

	// Empty and dot segments, trailing slashes.
	for _, p := range []string{
		"//v1/api/1/raw-data", "/v1//api/1/raw-data", "/v1/api//1/raw-data", "/v1/api/1//apikeys", "/v1/api/1/raw-data/",
		"/v1/api/1/apikeys/", "/v1/api/1/.", "/v1/api/1/raw-data/.%2e/apikeys", "/v1/api/projects/",
		"/v1/api/1/%c0%ae%c0%ae/2", "/v1/api/1/%ef%bc%8e%ef%bc%8e/2", "/v1/api/1/%2561pikeys", "/v1/api/1/.../2", "/v1/api/1/%2e%2e%2e/apikeys",
	} {
		add(studio("segments: read1 "+p, "GET", p, "read1", 400, notCanonical))
	}
	add(ingestion("segments: ingestion trailing slash", "POST", "/api/training/data/", "ingest1", 400, notCanonical))
	add(ingestion("segments: ingestion empty", "POST", "/api//training/data", "ingest1", 400, notCanonical))

	// Near spellings of key-management routes: never "read", never another admin route.
	for _, seg := range []string{
		"APIKEYS", "ApiKeys", "apikeys.json", "apikeys.", "apikeys~", "apikeys!", "apikeys%20", "%20apikeys", "apikeys.xml",
		"api%e2%84%aaeys", "HMACKEYS", "hmackeys.", "HmacKeys", "hmac%e2%84%aaey%c5%bf", "DEVKEYS", "DevKeys", "devkeys.json",
		"devkeys/HMAC", "devkeys/hmac.json", "apikeys/INGESTIONONLY", "%ef%bd%81%ef%bd%90%ef%bd%89keys", "%d0%b0pikeys",
		"apikeys%cc%81", "apikeys%23x", "apikeys%3fx", "apikeys%c2%a0", "apikeys%e3%80%80",
	} {
		add(studio("key-management variant: read1 "+seg, "GET", "/v1/api/1/"+seg, "read1", 404, "no such endpoint"))
	}
	// A router that takes any word for :projectId reads these as key management too.
	for _, p := range []string{"/v1/api/organizations/apikeys", "/v1/api/projects/apikeys/5", "/v1/api/x/hmackeys", "/v1/api/projects/DevKeys", "/v1/api/user/devkeys/hmac"} {
		add(studio("key-management under a word: admin1 "+p, "GET", p, "admin1", 404, "no such endpoint"))
	}
	for _, seg := range []string{"APIKEYS", "apikeys.json", "HmacKeys", "devkeys.json"} {
		add(studio("key-management variant: admin1 "+seg, "GET", "/v1/api/1/"+seg, "admin1", 404, "no such endpoint"))
		add(studio("key-management variant: admin1 POST "+seg, "POST", "/v1/api/1/"+seg, "admin1", 404, "no such endpoint"))
	}
	for _, seg := range []string{"apikeys%00", "devkeys%00", "hmackeys%0d%0a", "apikeys%7f", "api%e2%80%8bkeys", "%ef%bb%bfapikeys", "apikeys%c2%ad", "apikeys%c2%85"} {
		add(studio("key-management variant: control "+seg, "GET", "/v1/api/1/"+seg, "read1", 400, notCanonical))
	}
	// Near spellings of the routes whose class is lower than admin.
	for _, p := range []struct{ method, path, key string }{
		{"POST", "/v1/api/1/RAW-DATA/1/rename", "ingest1"}, {"POST", "/v1/api/1/raw-data.json", "ingest1"},
		{"POST", "/v1/api/1/Jobs/build-ondevice-model", "deploy1"}, {"POST", "/v1/api/1/jobs/DEPLOY", "deploy1"},
		{"POST", "/v1/api/1/Deployment/x", "deploy1"}, {"GET", "/v1/api/1/devkeys/Hmac", "ingest1"},
	} {
		add(studio("route variant: "+p.key+" "+p.method+" "+p.path, p.method, p.path, p.key, 404, "no such endpoint"))
	}

	// Methods read two ways (Django and Rack dispatch "get" as GET; TRACE echoes).
	// Every 405 lists the methods served (RFC 9110 §15.5.6), on both faces.
	allow := func(t *testing.T, res *http.Response, _ []byte) {
		if got := res.Header.Values("Allow"); len(got) != 1 || got[0] != policy.Methods {
			t.Errorf("Allow %q, want %q", got, policy.Methods)
		}
	}
	for _, m := range []string{"get", "Get", "TRACE", "PROPFIND", "FOO", "DELETE_", "MOVE"} {
		c := studio("method: "+m, m, "/v1/api/1/raw-data", "read1", 405, "not served")
		c.check = allow
		add(c)
	}
	for _, m := range []string{"TRACE", "post"} {
		c := ingestion("method on ingestion: "+m, m, "/api/training/data", "ingest1", 405, "not served")
		c.check = allow
		add(c)
	}
	add(catalogueCase{name: "method: CONNECT", raw: "CONNECT 127.0.0.1:80 HTTP/1.1\nHost: 127.0.0.1:80\nx-api-key: {admin1}\nConnection: close\n\n", status: 400})
	// net/http answers "OPTIONS *" itself (an empty 200); it never reaches keygate or the upstream.
	add(catalogueCase{name: "method: OPTIONS *", raw: "OPTIONS * HTTP/1.1\nHost: k\nx-api-key: {admin1}\nConnection: close\n\n", status: 200, server: true})

	// Unknown paths, per route class (docs/security.md): outside /v1 and on the ingestion face 404;
	// unknown writes under a project are admin; unknown reads are read.
	add(
		studio("unknown: outside /v1", "GET", "/v2/api/1", "admin1", 404, "no such endpoint"),
		studio("unknown: root", "GET", "/", "admin1", 404, "no such endpoint"),
		studio("unknown: write under project is admin", "POST", "/v1/api/1/something-new", "deploy1", 403, "role may not"),
		studio("unknown: project-less is admin", "GET", "/v1/api/organizations/1", "read1", 403, "role may not"),
		ingestion("unknown: ingestion", "POST", "/api/training/other", "admin1", 404, "no such endpoint"),
	)
	fwd := func(name, method, target, key, path string, header ...string) catalogueCase {
		c := studio(name, method, target, key, 200, "", header...)
		c.forward = path
		return c
	}
	add(
		fwd("canonical: escapes decoded once", "GET", "/v1/api/%31/raw-d%61ta", "read1", "/v1/api/1/raw-data"),
		fwd("canonical: unknown read under project", "GET", "/v1/api/1/something-new", "read1", "/v1/api/1/something-new"),
		fwd("canonical: word followed by word characters is another word", "GET", "/v1/api/1/apikeysx", "read1", "/v1/api/1/apikeysx"),
	)

	// Keys never come back in a 404 (and are redacted in the access log: internal/accesslog).
	noKey := func(t *testing.T, res *http.Response, body []byte) {
		if !strings.Contains(string(body), "ei_[redacted]") {
			t.Errorf("the path is not echoed redacted: %s", body)
		}
	}
	for _, c := range []catalogueCase{
		studio("echo: key in a 404 path", "GET", "/{admin1}", "admin1", 404, "no such endpoint"),
		studio("echo: key in a 404 path, no key", "GET", "/x/{read1}/y", "", 404, "no such endpoint"),
		studio("echo: key in a management 404", "DELETE", "/v1/api/1/apikeys/{read1}/x", "admin1", 404, "no such key-management endpoint"),
		studio("echo: key in a management 405", "PATCH", "/v1/api/1/apikeys/{read1}", "admin1", 405, "is not served on"),
		ingestion("echo: key in an ingestion 404", "POST", "/api/{ingest1}/data", "ingest1", 404, "no such endpoint"),
	} {
		c.check = noKey
		add(c)
	}
	runCatalogue(t, cases)
}

// TestCatalogueQueryKeys: a second key in the query string (some backends read one there).
func TestCatalogueQueryKeys(t *testing.T) {
	var cases []catalogueCase
	for _, q := range []string{
		"x-api-key={admin1}", "X-API-KEY={admin1}", "x_api_key={admin1}", "apiKey={admin1}", "api_key={admin1}", "APIKEY=x",
		"x%5Fapi%5Fkey={admin1}", "apik%65y=x", "q=%65i_0123456789abcdef0123456789abcdef", "a=1&apikey={admin1}", "q={admin1}", "a=1;b={admin1}", "filter=%20{admin1}",
	} {
		cases = append(cases, studio("query key: "+q, "GET", "/v1/api/1/raw-data?"+q, "read1", 400, "not in the URL"))
	}
	cases = append(cases, ingestion("query key: ingestion", "POST", "/api/training/data?apiKey={admin1}", "ingest1", 400, "not in the URL"))
	// A project id in the query: frameworks that merge input sources (Laravel's $request->projectId)
	// read it in place of the path's.
	for _, q := range []string{
		"projectId=2", "projectid=2", "PROJECTID=2", "project_id=2", "project-id=2", "a=1&projectId=2", "a=1;projectId=2",
		"projectId[]=2", "project%49d=2", "%70rojectId=2", "project.id=2", " projectId=2",
	} {
		cases = append(cases, studio("query project: "+q, "GET", "/v1/api/1/raw-data?"+strings.ReplaceAll(q, " ", "%20"), "read1", 400, "path only"))
	}
	cases = append(cases, ingestion("query project: ingestion", "POST", "/api/training/data?projectId=2", "ingest1", 400, "path only"))
	for _, q := range []string{"key=label", "monkey=1", "q=ei_short", "sort=key", "project=1", "projects=2", "projectIds=2", "q=projectId", "myprojectid=2"} {
		c := studio("query key: allowed "+q, "GET", "/v1/api/1/raw-data?"+q, "read1", 200, "")
		c.forward = "/v1/api/1/raw-data"
		cases = append(cases, c)
	}
	runCatalogue(t, cases)
}

// TestCatalogueUpgrades: no protocol upgrade on the Studio and ingestion faces, whatever the value
// (a relayed 101 would make the connection a tunnel that keygate never judges again).
func TestCatalogueUpgrades(t *testing.T) {
	var cases []catalogueCase
	add := func(c ...catalogueCase) { cases = append(cases, c...) }
	const says = "protocol upgrades are not served"
	for _, h := range [][]string{
		{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"},
		{"Upgrade: h2c", "Connection: Upgrade, HTTP2-Settings", "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA"},
		{"upgrade: WebSocket", "connection: keep-alive, upgrade"},
		{"Upgrade: foo/1"},
		{"UPGRADE: websocket"},
		{"Connection: UPGRADE"},
		{"Upgrade: "},
		{"Upgrade: TLS/1.2", "Connection: Upgrade"},
	} {
		add(studio("upgrade: read1 "+strings.Join(h, "; "), "GET", "/v1/api/1", "read1", 400, says, h...))
		add(studio("upgrade: admin1 "+strings.Join(h, "; "), "GET", "/v1/api/1/raw-data", "admin1", 400, says, h...))
	}
	add(
		studio("upgrade: no key", "GET", "/v1/api/1", "", 400, says, "Upgrade: websocket", "Connection: Upgrade"),
		studio("upgrade: keys page", "GET", "/keys", "", 400, says, "Upgrade: websocket", "Connection: Upgrade"),
		studio("upgrade: key management", "GET", "/v1/api/1/apikeys", "admin1", 400, says, "Upgrade: websocket", "Connection: Upgrade"),
		ingestion("upgrade: ingestion websocket", "POST", "/api/training/data", "ingest1", 400, says, "Upgrade: websocket", "Connection: Upgrade"),
		ingestion("upgrade: ingestion h2c", "POST", "/api/training/data", "admin1", 400, says, "Upgrade: h2c", "Connection: Upgrade, HTTP2-Settings", "HTTP2-Settings: AAMAAABk"),
	)
	// The HTTP/2 prior-knowledge preface on a cleartext listener: keygate sees method PRI and
	// path "*", which is no path.
	add(catalogueCase{name: "upgrade: h2 preface", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", rawExact: true, status: 400})
	runCatalogue(t, cases)
}

// TestCatalogueHeaders: header spellings that a backend could merge with the identity headers or
// the key, and more than one key.
func TestCatalogueHeaders(t *testing.T) {
	var cases []catalogueCase
	add := func(c ...catalogueCase) { cases = append(cases, c...) }
	for _, h := range []string{
		"X_Keygate_Role: admin", "x_keygate_role: admin", "X-Keygate_Role: admin", "X_KEYGATE_PROJECT: 2", "x_keygate_key_id: 1",
		"X_Keygate-Development-Key: true", "X_Keygate_Signature: valid", "x_keygate_signature_files: valid",
		"x_api_key: {admin1}", "X_API_KEY: {admin1}", "x_Api-key: {admin1}", "X-Api_Key: {admin2}",
	} {
		add(studio("header variant: read1 "+h, "GET", "/v1/api/1/raw-data", "read1", 400, "spelled with '-'", h))
	}
	add(
		studio("header variant: only x_api_key", "GET", "/v1/api/1/raw-data", "", 400, "spelled with '-'", "x_api_key: {admin1}"),
		ingestion("header variant: ingestion X_Keygate_Signature", "POST", "/api/training/data", "ingest1", 400, "spelled with '-'", "X_Keygate_Signature: valid"),
		ingestion("header variant: ingestion x_api_key", "POST", "/api/training/data", "ingest1", 400, "spelled with '-'", "x_api_key: {admin1}"),
	)
	for _, hs := range [][]string{
		{"x-api-key: {admin1}"}, {"X-API-KEY: {admin1}"}, {"x-api-key: {read1}"}, {"x-api-key: "},
	} {
		add(studio("two keys: read1 + "+hs[0], "GET", "/v1/api/1/raw-data", "read1", 400, "exactly one x-api-key", hs...))
	}
	for _, v := range []string{"{read1}, {admin1}", "{read1},{admin1}", "{admin1},", ",{admin1}", "{read1} , x"} {
		add(studio("key list: "+v, "GET", "/v1/api/1/raw-data", "", 400, "exactly one x-api-key", "x-api-key: "+v))
	}
	add(ingestion("two keys: ingestion", "POST", "/api/training/data", "ingest1", 400, "exactly one x-api-key", "x-api-key: {admin1}"))

	// Routing-override headers are dropped, so the upstream reads the request keygate judged.
	fwd := func(name, header string) catalogueCase {
		c := studio("routing header dropped: "+name, "GET", "/v1/api/1/raw-data", "read1", 200, "", header)
		c.forward = "/v1/api/1/raw-data"
		hname, _, _ := strings.Cut(header, ":")
		c.upstream = func(t *testing.T, got recorded) {
			if v := got.Header.Values(hname); len(v) != 0 {
				t.Errorf("%s reached the upstream: %v", hname, v)
			}
			if got.Method != "GET" {
				t.Errorf("method %s", got.Method)
			}
		}
		return c
	}
	add(
		fwd("X-HTTP-Method-Override", "X-HTTP-Method-Override: DELETE"),
		fwd("X-HTTP-Method", "X-HTTP-Method: POST"),
		fwd("X-Method-Override", "X-Method-Override: PUT"),
		fwd("X-Original-URL", "X-Original-URL: /v1/api/1/apikeys"),
		fwd("X-Rewrite-URL", "X-Rewrite-URL: /v1/api/2/raw-data"),
		fwd("Forwarded", "Forwarded: for=1.2.3.4;host=evil;proto=https"),
		fwd("X-Forwarded-Prefix", "X-Forwarded-Prefix: /v1/api/2"),
		fwd("X-Forwarded-Port", "X-Forwarded-Port: 1"),
	)
	// An exactly spelled identity header is dropped and replaced (TestCatalogueHolds); the key is
	// forwarded once.
	c := studio("one key forwarded once", "GET", "/v1/api/1/raw-data", "read1", 200, "")
	c.forward = "/v1/api/1/raw-data"
	c.upstream = func(t *testing.T, got recorded) {
		if v := got.Header.Values("X-Api-Key"); len(v) != 1 {
			t.Errorf("x-api-key values upstream: %d", len(v))
		}
		if got.Header.Get("X-Keygate-Role") != "readonly" {
			t.Errorf("role %q", got.Header.Get("X-Keygate-Role"))
		}
	}
	add(c)
	runCatalogue(t, cases)
}

// TestCatalogueNosniff: every answer keygate produces or relays says X-Content-Type-Options:
// nosniff — refusals, key-management 200s, the Keys page, forwarded answers.
func TestCatalogueNosniff(t *testing.T) {
	nosniffCheck := func(t *testing.T, res *http.Response, _ []byte) {
		if got := res.Header.Values("X-Content-Type-Options"); len(got) != 1 || got[0] != "nosniff" {
			t.Errorf("X-Content-Type-Options %v", got)
		}
	}
	var cases []catalogueCase
	for _, c := range []catalogueCase{
		studio("nosniff: refusal", "GET", "/v1/api/2/raw-data", "read1", 403, "not project 2"),
		studio("nosniff: 404", "GET", "/nowhere", "read1", 404, "no such endpoint"),
		studio("nosniff: 400", "GET", "/v1/api/02", "read1", 400, ""),
		{name: "nosniff: forwarded", target: "/v1/api/1/raw-data", key: "read1", status: 200, forward: "/v1/api/1/raw-data"},
	} {
		c.check = nosniffCheck
		cases = append(cases, c)
	}
	fx := newCatalogueFixture(t, nil)
	runCatalogueOn(t, fx, cases)
	// Answers keygate gives itself with 200: the key API and the page (nothing upstream).
	for _, target := range []string{"/v1/api/1/apikeys", "/v1/api/1/hmackeys", "/v1/api/1/devkeys", "/v1/api/projects/api-key-info", "/keys", "/keys/app.js"} {
		t.Run("nosniff: 200 "+target, func(t *testing.T) {
			fx.upstream.take()
			ress, _ := exchange(t, fx.studio, fx.wire(catalogueCase{target: target, key: "admin1"}))
			if len(ress) != 1 || ress[0].StatusCode != 200 {
				t.Fatalf("answers %v", ress)
			}
			nosniffCheck(t, ress[0], nil)
			if got := fx.upstream.take(); len(got) != 0 {
				t.Errorf("upstream received %v", paths(got))
			}
		})
	}
}

// TestCatalogueKeyOracle: a project admin who submits a key string that is in use (in another
// project, or in its own) gets one generic refusal, and learns nothing about which.
func TestCatalogueKeyOracle(t *testing.T) {
	var cases []catalogueCase
	for _, other := range []string{"admin2", "read2", "read1", "admin1"} {
		for _, path := range []string{"/v1/api/1/apikeys"} {
			c := studio("key oracle: "+other, "POST", path, "admin1", 400, "this apiKey cannot be used", "Content-Type: application/json")
			c.body = `{"name":"x","role":"readonly","isDevelopmentKey":false,"apiKey":"{` + other + `}"}`
			c.check = func(t *testing.T, res *http.Response, body []byte) {
				if strings.Contains(string(body), "exist") || strings.Contains(string(body), "project") {
					t.Errorf("the refusal says more than it should: %s", body)
				}
			}
			cases = append(cases, c)
		}
	}
	runCatalogue(t, cases)
}

// TestCatalogueTrailers: request trailers are where a second x-api-key or identity header could
// ride past the judgement (some servers merge trailers into headers); none reaches the upstream.
func TestCatalogueTrailers(t *testing.T) {
	var cases []catalogueCase
	for _, tr := range []string{"X-Keygate-Role: admin", "X_Keygate_Role: admin", "x-api-key: {admin1}", "X-Keygate-Project: 2", "X-Original-URL: /v1/api/1/apikeys"} {
		name, _, _ := strings.Cut(tr, ":")
		c := catalogueCase{name: "trailer: " + tr, status: 200, forward: "/v1/api/1/raw-data/1/rename",
			raw: "POST /v1/api/1/raw-data/1/rename HTTP/1.1\nHost: k\nx-api-key: {ingest1}\nTransfer-Encoding: chunked\nTrailer: " + name +
				"\nConnection: close\n\n2\nok\n0\n" + tr + "\n\n"}
		c.upstream = func(t *testing.T, got recorded) {
			if len(got.Trailer) != 0 {
				t.Errorf("trailers reached the upstream: %v", got.Trailer)
			}
			if v := got.Header.Values("X-Api-Key"); len(v) != 1 {
				t.Errorf("x-api-key upstream: %d values", len(v))
			}
			if got.Header.Get("X-Keygate-Role") != "ingestiononly" || string(got.Body) != "ok" {
				t.Errorf("upstream: role %q body %q", got.Header.Get("X-Keygate-Role"), got.Body)
			}
		}
		cases = append(cases, c)
	}
	runCatalogue(t, cases)
}

// TestCatalogueLogsRefusals: a refused request is logged with the path as received (so an operator
// sees the attempt), with any key in it redacted.
func TestCatalogueLogsRefusals(t *testing.T) {
	fx := newCatalogueFixture(t, nil)
	runCatalogueOn(t, fx, []catalogueCase{
		studio("logged: semicolon", "GET", "/v1/api/1;x/raw-data/{admin1}", "read1", 400, "not in canonical form"),
		studio("logged: upgrade", "GET", "/v1/api/1/{admin1}", "read1", 400, "protocol upgrades", "Upgrade: h2c"),
	})
	log := fx.log.String()
	for _, want := range []string{`"path":"/v1/api/1;x/raw-data/ei_[redacted]","status":400,"outcome":"bad_request"`, `"path":"/v1/api/1/ei_[redacted]","status":400`} {
		if !strings.Contains(log, want) {
			t.Errorf("access log lacks %s:\n%s", want, log)
		}
	}
}
