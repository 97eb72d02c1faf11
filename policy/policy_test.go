package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/keys"
)

func TestRoleMatrix(t *testing.T) {
	// docs/protocol.md §2.2, row by row: read, add data, remote management, deploy, everything else.
	want := map[keys.Role][5]bool{
		keys.RoleAdmin:               {true, true, true, true, true},
		keys.RoleIngestionDeployment: {true, true, true, true, false},
		keys.RoleIngestion:           {true, true, true, false, false},
		keys.RoleReadOnly:            {true, false, false, false, false},
		keys.RoleInvalid:             {false, false, false, false, false},
	}
	for role, row := range want {
		for i, c := range Classes {
			if got := RoleAllows(role, c); got != row[i] {
				t.Errorf("%s / %s: %v, want %v", role, c, got, row[i])
			}
		}
	}
	if RoleAllows(keys.RoleAdmin, Class(0)) || RoleAllows(keys.RoleAdmin, Class(99)) {
		t.Error("an unknown class is allowed")
	}
}

func TestAllow(t *testing.T) {
	p := keys.Principal{KeyID: 5, ProjectID: 1, Role: keys.RoleReadOnly}
	tests := []struct {
		name  string
		p     keys.Principal
		r     Route
		allow bool
		why   string
	}{
		{"read own project", p, Route{Class: ClassRead, ProjectID: 1}, true, ""},
		{"read other project", p, Route{Class: ClassRead, ProjectID: 2}, false, "belongs to project 1, not project 2"},
		{"read, project from key", p, Route{Class: ClassRead}, true, ""},
		{"write as read-only", p, Route{Class: ClassAddData, ProjectID: 1}, false, `"add data" permission`},
		{"admin other project", keys.Principal{ProjectID: 1, Role: keys.RoleAdmin}, Route{Class: ClassRead, ProjectID: 2}, false, "not project 2"},
		{"deploy as ingestion", keys.Principal{ProjectID: 1, Role: keys.RoleIngestion}, Route{Class: ClassDeploy, ProjectID: 1}, false, `"deploy" permission`},
		{"deploy as ingestion+deployment", keys.Principal{ProjectID: 1, Role: keys.RoleIngestionDeployment}, Route{Class: ClassDeploy, ProjectID: 1}, true, ""},
		{"zero principal", keys.Principal{}, Route{Class: ClassRead}, false, "permission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Allow(tt.p, tt.r)
			if (err == nil) != tt.allow {
				t.Fatalf("Allow = %v, want allow=%v", err, tt.allow)
			}
			var d *Denied
			if err != nil && (!errors.As(err, &d) || !strings.Contains(d.Reason, tt.why)) {
				t.Errorf("reason %q does not say %q", err, tt.why)
			}
		})
	}
}

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{"/v1/api/1/raw-data", "/v1/api/1/raw-data", false},
		{"/v1/api/1/raw-data/", "/v1/api/1/raw-data/", false},
		{"//v1//api/1", "", true},
		{"/v1//api/1", "", true},
		{"/v1/api/1//", "", true},
		{"/v1/api/1;x/raw-data", "", true},
		{"/v1/api;/1", "", true},
		{"/v1/api/1/raw-data/..;/apikeys", "", true},
		{"/v1/api/1/raw-data/%3b", "", true},
		{"/v1/api/1/%2561pikeys", "", true},
		{"/v1/api/1/%c0%ae%c0%ae/2", "", true},
		{"/v1/api/1/%ef%bc%8e%ef%bc%8e/2", "", true},
		{"/v1/api/1/raw-data%e2%88%95..", "", true},
		{"/v1/api/1/%c2%85", "", true},
		{"/v1/api/1/%7f", "", true},
		{"/v1/api/1/raw-data/\u00e9t\u00e9", "/v1/api/1/raw-data/\u00e9t\u00e9", false},
		{"/v1/api/1/raw-data/%C3%A9t%C3%A9", "/v1/api/1/raw-data/\u00e9t\u00e9", false},
		{"/v1/api/1/raw-data/a.b", "/v1/api/1/raw-data/a.b", false},
		{"/v1/api/1/.../2", "", true},
		{"/v1/api/1/raw-data/x.", "/v1/api/1/raw-data/x.", false},
		{"/v1/api/1/api%e2%80%8bkeys", "", true},
		{"/v1/api/1/%ef%bb%bfapikeys", "", true},
		{"/v1/api/1/apikeys%c2%ad", "", true},
		{"/", "/", false},
		{"/v1/api/1/raw-data/a%20b", "/v1/api/1/raw-data/a b", false},
		{"/v1/api/%31/raw-data", "/v1/api/1/raw-data", false},
		{"/.well-known/x", "/.well-known/x", false},
		{"/v1/api/1/../2/apikeys", "", true},
		{"/v1/api/1/%2e%2e/2/apikeys", "", true},
		{"/v1/api/1/%2E%2e/2", "", true},
		{"/v1/api/1/./apikeys", "", true},
		{"/v1/api/2%2fapikeys", "", true},
		{"/v1/api/2%2Fapikeys", "", true},
		{"/v1/api/1\\..\\2", "", true},
		{"/v1/api/1/%5c..", "", true},
		{"/v1/api/1/%00", "", true},
		{"/v1/api/1/%zz", "", true},
		{"v1/api", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := CanonicalPath(tt.in)
		if tt.bad {
			if !errors.Is(err, ErrBadPath) {
				t.Errorf("CanonicalPath(%q) = %q, %v; want ErrBadPath", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CanonicalPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		face    Face
		method  string
		path    string
		class   Class
		project int64
		local   Endpoint
		noRoute bool
	}{
		{FaceStudio, "GET", "/v1/api/projects", ClassRead, 0, "", false},
		{FaceStudio, "GET", "/v1/api/projects/api-key-info", ClassRead, 0, EndpointAPIKeyInfo, false},
		{FaceStudio, "POST", "/v1/api/projects/api-key-info", ClassAdmin, 0, "", false},
		{FaceStudio, "POST", "/v1/api/projects/create", ClassAdmin, 0, "", false},
		{FaceStudio, "GET", "/v1/api/1", ClassRead, 1, "", false},
		{FaceStudio, "GET", "/v1/api/1/raw-data", ClassRead, 1, "", false},
		{FaceStudio, "HEAD", "/v1/api/1/raw-data", ClassRead, 1, "", false},
		{FaceStudio, "POST", "/v1/api/1/raw-data/5/rename", ClassAddData, 1, "", false},
		{FaceStudio, "DELETE", "/v1/api/1/raw-data/5", ClassAddData, 1, "", false},
		{FaceStudio, "POST", "/v1/api/1/devices/abc/rename", ClassAddData, 1, "", false},
		{FaceStudio, "POST", "/v1/api/1/jobs/build-ondevice-model", ClassDeploy, 1, "", false},
		{FaceStudio, "POST", "/v1/api/1/deployment/foo", ClassDeploy, 1, "", false},
		{FaceStudio, "POST", "/v1/api/1/jobs/train/keras/3", ClassAdmin, 1, "", false},
		{FaceStudio, "POST", "/v1/api/1", ClassAdmin, 1, "", false},
		{FaceStudio, "PUT", "/v1/api/1/settings", ClassAdmin, 1, "", false},
		{FaceStudio, "POST", "/v1/api/1/something-new", ClassAdmin, 1, "", false},
		{FaceStudio, "GET", "/v1/api/1/apikeys", ClassAdmin, 1, EndpointAPIKeys, false},
		{FaceStudio, "POST", "/v1/api/1/apikeys/ingestiononly", ClassAdmin, 1, EndpointAPIKeys, false},
		{FaceStudio, "DELETE", "/v1/api/12/hmackeys/3", ClassAdmin, 12, EndpointHMACKeys, false},
		{FaceStudio, "GET", "/v1/api/1/devkeys/hmac", ClassAddData, 1, EndpointDevKeys, false},
		{FaceStudio, "GET", "/v1/api/1/devkeys", ClassAdmin, 1, EndpointDevKeys, false},
		{FaceStudio, "GET", "/v1/api", ClassAdmin, 0, "", false},
		{FaceStudio, "GET", "/v1/api/organizations/3", ClassAdmin, 0, "", false},
		{FaceStudio, "GET", "/v1/api/1/apikeysx", ClassRead, 1, "", false},
		{FaceStudio, "POST", "/v1/api/1/jobs-new", ClassAdmin, 1, "", false},
		{FaceStudio, "POST", "/v1/api/1/raw-data-export", ClassAdmin, 1, "", false},
		{FaceStudio, "GET", "/keys/", ClassRead, 0, EndpointPage, false},
		{FaceStudio, "POST", "/v1/api/1/jobs/build-ondevice-model-2", ClassDeploy, 1, "", false},
		{FaceStudio, "GET", "/v1/api/1/keygate/settings", ClassAdmin, 1, EndpointSettings, false},
		{FaceStudio, "POST", "/v1/api/1/keygate/settings", ClassAdmin, 1, EndpointSettings, false},
		{FaceStudio, "GET", "/v1/api/1/KEYGATE/settings", 0, 0, "", true},
		{FaceStudio, "GET", "/v1/api/1/audit", ClassAdmin, 1, EndpointAudit, false},
		{FaceStudio, "POST", "/v1/api/1/apikeys/5/roll", ClassAdmin, 1, EndpointAPIKeys, false},
		{FaceStudio, "PUT", "/v1/api/1/hmackeys/5", ClassAdmin, 1, EndpointHMACKeys, false},
		{FaceStudio, "GET", "/keys/favicon.svg", ClassRead, 0, EndpointPage, false},
		{FaceStudio, "GET", "/v1/user", ClassAdmin, 0, "", false},
		{FaceStudio, "GET", "/api/training/files", 0, 0, "", true},
		{FaceStudio, "GET", "/", 0, 0, "", true},
		{FaceStudio, "GET", "/keys", ClassRead, 0, EndpointPage, false},
		{FaceStudio, "GET", "/keys/app.js", ClassRead, 0, EndpointPage, false},
		{FaceStudio, "POST", "/keys", 0, 0, "", true},
		{FaceStudio, "GET", "/keys/other.js", 0, 0, "", true},
		{FaceIngestion, "POST", "/api/training/files", ClassAddData, 0, "", false},
		{FaceIngestion, "POST", "/api/testing/data", ClassAddData, 0, "", false},
		{FaceIngestion, "POST", "/api/post-processing/data", ClassAddData, 0, "", false},
		{FaceIngestion, "GET", "/api/training/files", 0, 0, "", true},
		{FaceIngestion, "POST", "/api/secret/files", 0, 0, "", true},
		{FaceIngestion, "POST", "/api/training/files/extra", 0, 0, "", true},
		{FaceIngestion, "POST", "/v1/api/1/raw-data", 0, 0, "", true},
	}
	for _, tt := range tests {
		r, err := Match(tt.face, tt.method, tt.path)
		if tt.noRoute {
			if !errors.Is(err, ErrNoRoute) {
				t.Errorf("%s %s %s: %+v, want ErrNoRoute", tt.face, tt.method, tt.path, r)
			}
			continue
		}
		if err != nil || r.Class != tt.class || r.ProjectID != tt.project || r.Local != tt.local {
			t.Errorf("%s %s %s = %+v, %v; want class %s project %d local %q", tt.face, tt.method, tt.path, r, err, tt.class, tt.project, tt.local)
		}
	}
}

// TestMatchRefuses is every spelling that a lenient backend router could read as another project
// or route: refused with the right error, never classified.
func TestMatchRefuses(t *testing.T) {
	tests := []struct {
		face         Face
		method, path string
		want         error
	}{
		{FaceStudio, "get", "/v1/api/1/raw-data", ErrBadMethod},
		{FaceStudio, "TRACE", "/v1/api/1/raw-data", ErrBadMethod},
		{FaceStudio, "PROPFIND", "/v1/api/1", ErrBadMethod},
		{FaceStudio, "GET", "/v1/api/1/raw-data/", ErrBadPath},
		{FaceStudio, "GET", "/v1/api/1/apikeys/", ErrBadPath},
		{FaceIngestion, "POST", "/api/training/data/", ErrBadPath},
		{FaceStudio, "GET", "/V1/api/2/raw-data", ErrNoRoute},
		{FaceStudio, "GET", "/v1/API/2/raw-data", ErrNoRoute},
		{FaceStudio, "GET", "/v1/Api/2", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api.json/2", ErrNoRoute},
		{FaceStudio, "GET", "/v1/ api/2", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/PROJECTS", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/projects.json", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/projects/API-KEY-INFO", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/1/APIKEYS", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/1/ApiKeys", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/1/apikeys.json", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/1/apikeys.", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/1/hmackeys.", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/1/HmacKeys", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/1/DEVKEYS", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/1/devkeys~", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/1/ devkeys", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/1/devkeys ", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/1/api\u212Aeys", ErrNoRoute},       // Kelvin sign
		{FaceStudio, "GET", "/v1/api/1/hmac\u212Aey\u017F", ErrNoRoute}, // Kelvin sign, long s
		{FaceStudio, "GET", "/v1/api/1/devkeys/HMAC", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/1/\uff41\uff50\uff49\uff4b\uff45\uff59\uff53", ErrNoRoute}, // fullwidth
		{FaceStudio, "GET", "/v1/api/1/apikeys\u0301", ErrNoRoute},                              // combining mark
		{FaceStudio, "GET", "/v1/\u0430pi/2", ErrNoRoute},                                       // Cyrillic a
		{FaceStudio, "POST", "/v1/api/1/apikeys/IngestionOnly", ErrNoRoute},
		{FaceStudio, "POST", "/v1/api/1/RAW-DATA/1", ErrNoRoute},
		{FaceStudio, "POST", "/v1/api/1/jobs/DEPLOY", ErrNoRoute},
		{FaceStudio, "POST", "/v1/api/1/Jobs/deploy", ErrNoRoute},
		{FaceStudio, "GET", "/v1/api/02/raw-data", ErrBadPath},
		{FaceStudio, "GET", "/v1/api/+2/raw-data", ErrBadPath},
		{FaceStudio, "GET", "/v1/api/-2/raw-data", ErrBadPath},
		{FaceStudio, "GET", "/v1/api/2.0/raw-data", ErrBadPath},
		{FaceStudio, "GET", "/v1/api/2e0/raw-data", ErrBadPath},
		{FaceStudio, "GET", "/v1/api/0x2/raw-data", ErrBadPath},
		{FaceStudio, "GET", "/v1/api/ 2/raw-data", ErrBadPath},
		{FaceStudio, "GET", "/v1/api/2 /raw-data", ErrBadPath},
		{FaceStudio, "GET", "/v1/api/2abc/raw-data", ErrBadPath},
		{FaceStudio, "GET", "/v1/api/.2/raw-data", ErrBadPath},
		{FaceStudio, "GET", "/v1/api/0/raw-data", ErrBadPath},
		{FaceStudio, "GET", "/v1/api/9999999999999999999/raw-data", ErrBadPath},
		{FaceStudio, "GET", "/v1/api/\u0662/raw-data", ErrBadPath},  // Arabic-Indic two
		{FaceStudio, "GET", "/v1/api/\uff12/raw-data", ErrBadPath},  // fullwidth two
		{FaceStudio, "GET", "/v1/api/x\u00b2/raw-data", ErrBadPath}, // superscript two
		{FaceStudio, "GET", "/v1/api/#2/raw-data", ErrBadPath},      // Spring's Long.decode
		{FaceStudio, "GET", "/v1/api/\uff0b2/raw-data", ErrBadPath}, // fullwidth plus
		{FaceStudio, "GET", "/v1/api/\u00a02/raw-data", ErrBadPath}, // NBSP
		{FaceStudio, "GET", "/v1/api/\u4e8c/raw-data", ErrBadPath},  // CJK two
		{FaceStudio, "GET", "/v1/api/organizations/raw-data", nil},
		{FaceIngestion, "POST", "/api/Training/data", ErrNoRoute},
		{FaceIngestion, "POST", "/API/training/data", ErrNoRoute},
		{FaceIngestion, "POST", "/api/training/DATA", ErrNoRoute},
	}
	for _, tt := range tests {
		r, err := Match(tt.face, tt.method, tt.path)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s %s %q = %+v, %v; want %v", tt.face, tt.method, tt.path, r, err, tt.want)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	p := keys.Principal{KeyID: 1, ProjectID: 1, Role: keys.RoleIngestion}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		path, err := CanonicalPath("/v1/api/1/raw-data/5/rename")
		if err != nil {
			b.Fatal(err)
		}
		r, err := Match(FaceStudio, "POST", path)
		if err != nil {
			b.Fatal(err)
		}
		if err := Allow(p, r); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMethodsIsWhatMatchAccepts: the Allow list of a 405 names exactly the methods Match lets
// through (it must not drift from Match's switch).
func TestMethodsIsWhatMatchAccepts(t *testing.T) {
	listed := strings.Split(Methods, ", ")
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "get"} {
		_, err := Match(FaceStudio, m, "/v1/api/1/raw-data")
		if accepted, inList := err != ErrBadMethod, slices.Contains(listed, m); accepted != inList {
			t.Errorf("%s: Match accepts it %v, Methods lists it %v", m, accepted, inList)
		}
	}
}
