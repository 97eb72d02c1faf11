package policy

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// Face is one of keygate's listeners (docs/protocol.md §1).
type Face uint8

// The three faces.
const (
	FaceStudio Face = iota + 1
	FaceIngestion
	FaceRemote
)

// String is the face's name in logs and metrics.
func (f Face) String() string {
	switch f {
	case FaceStudio:
		return "studio"
	case FaceIngestion:
		return "ingestion"
	case FaceRemote:
		return "remote"
	}
	return "unknown"
}

// Route is the decision-relevant meaning of one request.
type Route struct {
	Face  Face
	Class Class
	// ProjectID is the project the path names; 0 when the path names none (ingestion paths, and
	// Studio paths such as /v1/api/projects: then the key's project applies).
	ProjectID int64
	// Local names the key-management endpoint keygate answers itself ("" = forward upstream).
	Local Endpoint
	// Ingest is set for ingestion uploads whose bodies are verified: "files" or "data".
	Ingest string
	// Category is the ingestion category (training, testing, ...).
	Category string
	// Public routes need no API key: the Keys page's static files (it signs in with a key itself).
	Public bool
}

// Endpoint names a key-management endpoint keygate serves itself (docs/protocol.md §3).
type Endpoint string

// Key-management endpoints.
const (
	EndpointNone       Endpoint = ""
	EndpointAPIKeys    Endpoint = "apikeys"
	EndpointHMACKeys   Endpoint = "hmackeys"
	EndpointDevKeys    Endpoint = "devkeys"
	EndpointAPIKeyInfo Endpoint = "api-key-info"
	// EndpointPage is the Keys web page (/keys): static files, no key needed to load them.
	EndpointPage Endpoint = "page"
)

// ErrBadPath is a path that cannot be judged safely (encoded slashes, dot segments, NUL, backslash).
var ErrBadPath = errors.New("bad path")

// ErrNoRoute is a path the face does not serve.
var ErrNoRoute = errors.New("no route")

// CanonicalPath turns the request's escaped path into the one path that is both judged and
// forwarded. Empty segments collapse ("//" → "/"); dot segments, encoded slashes or backslashes,
// control characters and bad escapes are refused rather than interpreted, because an upstream that
// interprets them differently than keygate would see a path keygate never judged.
func CanonicalPath(escaped string) (string, error) {
	if escaped == "" || escaped[0] != '/' {
		return "", ErrBadPath
	}
	// Fast path: nothing escaped, nothing suspicious — the common case allocates nothing.
	clean := true
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' || c == '\\' || c < 0x20 || c == 0x7f || c == '.' && (i == 0 || escaped[i-1] == '/') ||
			c == '/' && i > 0 && escaped[i-1] == '/' {
			clean = false
			break
		}
	}
	if clean {
		return escaped, nil
	}
	if strings.Contains(strings.ToLower(escaped), "%2f") || strings.Contains(strings.ToLower(escaped), "%5c") {
		return "", ErrBadPath
	}
	dec, err := url.PathUnescape(escaped)
	if err != nil {
		return "", ErrBadPath
	}
	var b strings.Builder
	b.Grow(len(dec))
	for _, seg := range strings.Split(dec, "/") {
		switch seg {
		case "":
			continue
		case ".", "..":
			return "", ErrBadPath
		}
		for i := 0; i < len(seg); i++ {
			if seg[i] < 0x20 || seg[i] == 0x7f || seg[i] == '\\' {
				return "", ErrBadPath
			}
		}
		b.WriteByte('/')
		b.WriteString(seg)
	}
	if b.Len() == 0 {
		return "/", nil
	}
	if strings.HasSuffix(dec, "/") {
		b.WriteByte('/')
	}
	return b.String(), nil
}

// IngestionCategories are the categories clients send (docs/protocol.md §4).
var IngestionCategories = []string{"training", "testing", "anomaly", "validation", "split", "post-processing"}

// Match returns the route for a method and canonical path on a face, or ErrNoRoute.
func Match(face Face, method, path string) (Route, error) {
	switch face {
	case FaceStudio:
		return matchStudio(method, path)
	case FaceIngestion:
		return matchIngestion(method, path)
	}
	return Route{}, ErrNoRoute
}

// segments splits "/a/b/c" into at most n segments without allocating a slice.
func nextSeg(p string) (seg, rest string) {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

func matchIngestion(method, path string) (Route, error) {
	api, rest := nextSeg(path)
	cat, rest := nextSeg(rest)
	kind, rest := nextSeg(rest)
	if api != "api" || (rest != "" && rest != "/") || (kind != "files" && kind != "data") {
		return Route{}, ErrNoRoute
	}
	known := false
	for _, c := range IngestionCategories {
		if c == cat {
			known = true
			break
		}
	}
	if !known || method != "POST" {
		return Route{}, ErrNoRoute
	}
	return Route{Face: FaceIngestion, Class: ClassAddData, Ingest: kind, Category: cat}, nil
}

func isRead(method string) bool { return method == "GET" || method == "HEAD" }

// matchStudio applies the Studio table (documented in docs/policy.md):
//
//	/keys, /keys/app.js, /keys/style.css     GET: the Keys page (public static files)
//	/v1/api/projects                         GET: read (the key's own project)
//	/v1/api/projects/api-key-info            GET: keygate answers (any valid key)
//	/v1/api/{pid}/apikeys|hmackeys|devkeys… : keygate answers (admin)
//	/v1/api/{pid}/devkeys/hmac               GET: keygate answers (add data: clients sign with it)
//	/v1/api/{pid}/…                          GET/HEAD: read
//	/v1/api/{pid}/raw-data/…, devices/…,
//	  upload/…, labels/…                     writes: add data
//	/v1/api/{pid}/jobs/build-ondevice-model…,
//	  deployment/…, jobs/deploy…             writes: deploy
//	everything else under /v1               admin
func matchStudio(method, path string) (Route, error) {
	switch path {
	case "/keys", "/keys/", "/keys/app.js", "/keys/style.css":
		if isRead(method) {
			return Route{Face: FaceStudio, Class: ClassRead, Local: EndpointPage, Public: true}, nil
		}
		return Route{}, ErrNoRoute
	}
	v1, rest := nextSeg(path)
	if v1 != "v1" {
		return Route{}, ErrNoRoute
	}
	api, rest := nextSeg(rest)
	if api != "api" {
		// Other /v1 paths (e.g. /v1/user): project-less; unknown means admin.
		return Route{Face: FaceStudio, Class: ClassAdmin}, nil
	}
	first, rest := nextSeg(rest)
	pid, err := strconv.ParseInt(first, 10, 64)
	if err != nil || pid <= 0 || first[0] == '+' || first[0] == '0' {
		if first == "projects" {
			sub, tail := nextSeg(rest)
			switch {
			case sub == "" && isRead(method):
				return Route{Face: FaceStudio, Class: ClassRead}, nil
			case sub == "api-key-info" && tail == "" && method == "GET":
				return Route{Face: FaceStudio, Class: ClassRead, Local: EndpointAPIKeyInfo}, nil
			}
		}
		return Route{Face: FaceStudio, Class: ClassAdmin}, nil
	}
	r := Route{Face: FaceStudio, ProjectID: pid}
	seg, tail := nextSeg(rest)
	switch seg {
	case "apikeys":
		r.Class, r.Local = ClassAdmin, EndpointAPIKeys
		return r, nil
	case "hmackeys":
		r.Class, r.Local = ClassAdmin, EndpointHMACKeys
		return r, nil
	case "devkeys":
		r.Class, r.Local = ClassAdmin, EndpointDevKeys
		// The development HMAC key is what ingestion clients sign samples with: the uploader fetches
		// it with its ingestion key, so any role that may add data may read it.
		if sub, more := nextSeg(tail); sub == "hmac" && more == "" && isRead(method) {
			r.Class = ClassAddData
		}
		return r, nil
	}
	if isRead(method) {
		r.Class = ClassRead
		return r, nil
	}
	switch seg {
	case "raw-data", "devices", "upload", "labels":
		r.Class = ClassAddData
	case "deployment":
		r.Class = ClassDeploy
	case "jobs":
		job, _ := nextSeg(tail)
		if job == "build-ondevice-model" || job == "deploy" || strings.HasPrefix(job, "build-ondevice-model") {
			r.Class = ClassDeploy
		} else {
			r.Class = ClassAdmin
		}
	default:
		r.Class = ClassAdmin
	}
	return r, nil
}
