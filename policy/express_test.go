package policy

import (
	"net/url"
	"path/filepath"
	"testing"

	"github.com/keygate/keygate/internal/testutil"
)

// The differential test for the canonical form: every path keygate forwards, Express 4 (the most
// common Node router: case-insensitive, trailing slash ignored, params read with Number() or
// parseInt) must read as the same project and as a route of no higher class, and never as a
// key-management route (those keygate answers itself). Paths keygate refuses are not sent. node
// and express are installed by `make deps` (npm ci in testdata/express); without them the test
// fails rather than skips.

type expressCase struct {
	Method string `json:"method"`
	Path   string `json:"path"`
}

type expressReading struct {
	Status    int      `json:"status"`
	Route     string   `json:"route"`
	ProjectID *string  `json:"projectId"`
	Num       *float64 `json:"num"`
	Int       *float64 `json:"int"`
	Error     string   `json:"error"`
}

func expressRoute(t *testing.T, cases []expressCase) []expressReading {
	t.Helper()
	var res []expressReading
	testutil.RunNode(t, filepath.Join("testdata", "express"), "express", "route.js", cases, &res)
	if len(res) != len(cases) {
		t.Fatalf("express output: %d readings for %d cases", len(res), len(cases))
	}
	return res
}

// expressClass is the least class an Express route needs for a method (keygate may judge higher).
func expressClass(route, method string) Class {
	if isRead(method) {
		return ClassRead
	}
	switch route {
	case "raw-data", "devices", "upload", "labels":
		return ClassAddData
	case "deploy":
		return ClassDeploy
	case "", "projects":
		return ClassRead
	}
	return ClassAdmin
}

func TestExpressReadsAsJudged(t *testing.T) {
	prefixes := []string{"/v1/api", "/V1/api", "/v1/API", "/v1/Api", "/v1/api.json", "/v1//api", "/v1/api;x", "/v1/%61pi", "/v1/api%20", "/v1/%20api", "/v1/%41PI"}
	ids := []string{"1", "2", "01", "+1", "-1", "1.0", "1e0", "0x1", "%31", "1%20", "%201", "1;x", "1abc", "1.", "%d9%a2", "%ef%bc%92",
		"projects", "PROJECTS", "projects.json", "Projects%20", "organizations", "0", "", "%2b1", "1%00", "%231", "1_0", "%ef%bc%8b1"}
	segs := []string{"", "apikeys", "APIKEYS", "ApiKeys", "apikeys.json", "apikeys.", "apikeys~", "apikeys%20", "apikeys;x", "%61pikeys",
		"%41PIKEYS", "hmackeys", "HMACKEYS", "hmackeys.xml", "devkeys", "DevKeys", "devkeys/hmac", "devkeys/HMAC", "DEVKEYS/hmac", "raw-data",
		"RAW-DATA", "raw-data.json", "raw-datax", "jobs/deploy", "jobs/DEPLOY", "JOBS/deploy", "jobs/build-ondevice-model", "jobs/Build-OnDevice-Model",
		"deployment", "Deployment", "devices", "DEVICES", "upload", "labels", "Labels", "something", "api-key-info", "API-KEY-INFO",
		"apikeys/ingestiononly", "apikeys/INGESTIONONLY", "apikeys/5", "x/../apikeys", "raw-data/..;/apikeys", "raw-data/%2e%2e/apikeys",
		"api%e2%84%aaeys", "%ef%bd%81pikeys"}
	tails := []string{"", "/", "/5", "//"}
	type judged struct {
		method, path string
		route        Route
	}
	var sent []judged
	var cases []expressCase
	total := 0
	for _, pre := range prefixes {
		for _, id := range ids {
			for _, seg := range segs {
				for _, tail := range tails {
					for _, method := range []string{"GET", "POST"} {
						raw := pre + "/" + id
						if seg != "" {
							raw += "/" + seg
						}
						raw += tail
						total++
						canon, err := CanonicalPath(raw)
						if err != nil {
							continue
						}
						r, err := Match(FaceStudio, method, canon)
						if err != nil || r.Local != EndpointNone {
							continue // refused, or answered by keygate: nothing is forwarded
						}
						// What the gateway sends: the canonical path, escaped by Go.
						fwd := (&url.URL{Path: canon}).EscapedPath()
						sent = append(sent, judged{method, fwd, r})
						cases = append(cases, expressCase{method, fwd})
					}
				}
			}
		}
	}
	if len(cases) < 200 {
		t.Fatalf("only %d of %d spellings forwarded: the generator is broken", len(cases), total)
	}
	readings := expressRoute(t, cases)
	for i, rd := range readings {
		j := sent[i]
		switch rd.Route {
		case "apikeys", "hmackeys", "devkeys", "devkeys-hmac", "api-key-info":
			t.Errorf("%s %s: forwarded as %s class %s, but Express reads the key-management route %q", j.method, j.path, j.route.Class, j.route.Local, rd.Route)
			continue
		}
		for _, n := range []*float64{rd.Num, rd.Int} {
			if n != nil && int64(*n) != j.route.ProjectID {
				t.Errorf("%s %s: judged as project %d, Express reads project %v (route %q, :projectId %q)", j.method, j.path, j.route.ProjectID, *n, rd.Route, *rd.ProjectID)
			}
		}
		if need := expressClass(rd.Route, j.method); j.route.Class < need {
			t.Errorf("%s %s: judged %s, Express reads route %q which needs %s", j.method, j.path, j.route.Class, rd.Route, need)
		}
	}
	t.Logf("%d spellings, %d forwarded and read alike by Express", total, len(cases))
}
