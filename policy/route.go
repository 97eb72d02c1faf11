package policy

import (
	"errors"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
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
	// EndpointSettings is keygate's own project settings (/v1/api/{projectId}/keygate/settings).
	EndpointSettings Endpoint = "settings"
	EndpointAudit    Endpoint = "audit"
	// EndpointPage is the Keys web page (/keys): static files, no key needed to load them.
	EndpointPage Endpoint = "page"
)

// ErrBadPath is a path that is not in the canonical form (docs/security.md): encoded slashes,
// empty or dot segments, ';', '%' after decoding, control characters, backslashes, invalid UTF-8,
// a non-canonical project id. Such paths are refused (400), never interpreted.
var ErrBadPath = errors.New("bad path")

// ErrNoRoute is a path the face does not serve, including spellings of a route word that are not
// the word exactly (APIKEYS, apikeys.json): refused (404), never "some other route".
var ErrNoRoute = errors.New("no route")

// ErrBadMethod is a method outside GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS (405).
var ErrBadMethod = errors.New("method not allowed")

// Methods is the standard set Match accepts on every path, as a 405's Allow header lists it
// (which method a route serves is the backend's to answer, once the request is forwarded).
const Methods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// CanonicalPath turns the request's escaped path into the one path that is both judged and
// forwarded (docs/security.md, "The canonical request form"). Percent-escapes are decoded once,
// and Go re-escapes on the way out only what must be escaped, so the upstream decodes exactly the
// path keygate judged. Everything that backends are known to read in more than one way is refused
// rather than interpreted: empty segments ("//": Express keeps them, Tomcat and Spring collapse
// them), dot segments, ';' anywhere (Servlet path parameters, "..;"), encoded slashes or
// backslashes, a '%' that survives decoding (double-decoding backends), control characters,
// invalid UTF-8 (overlong dots). A trailing slash is kept here; Match decides about it.
func CanonicalPath(escaped string) (string, error) {
	if escaped == "" || escaped[0] != '/' {
		return "", ErrBadPath
	}
	// Fast path: plain ASCII, nothing escaped, no empty or dot segment — the common case
	// allocates nothing and is returned as it is.
	clean := true
	for i := 1; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' || c == '\\' || c == ';' || c <= 0x20 || c >= 0x7f || c == '.' && escaped[i-1] == '/' ||
			c == '/' && escaped[i-1] == '/' {
			clean = false
			break
		}
	}
	if clean {
		return escaped, nil
	}
	lower := strings.ToLower(escaped)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return "", ErrBadPath
	}
	dec, err := url.PathUnescape(escaped)
	if err != nil || !utf8.ValidString(dec) {
		return "", ErrBadPath
	}
	segs := dec[1:]
	for segs != "" {
		seg, rest, more := strings.Cut(segs, "/")
		segs = rest
		if seg == "" && more {
			return "", ErrBadPath // "//"
		}
		if strings.Trim(seg, ".") == "" {
			return "", ErrBadPath // ".", "..", and "..." (which old Windows servers read as "..")
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f || r == '\\' || r == ';' || r == '%' || r >= 0x80 && (r < 0xa0 || lookalike(r) || unicode.Is(unicode.Cf, r)) {
				return "", ErrBadPath
			}
		}
	}
	return dec, nil
}

// lookalike reports characters that Unicode normalisation (NFKC, "best fit" code pages) turns
// into '.', '/' or '\\': a backend that normalises would see another path. (Format characters
// such as the byte-order mark and zero-width spaces, which some sanitisers strip, are refused
// separately.)
func lookalike(r rune) bool {
	switch r {
	case 0x2024, 0x2025, 0xfe52, 0xff0e, 0x2215, 0x2044, 0xff0f, 0xfe68, 0xff3c, 0x2216:
		return true
	}
	return false
}

// IngestionCategories are the categories clients send (docs/protocol.md §4).
var IngestionCategories = []string{"training", "testing", "anomaly", "validation", "split", "post-processing"}

// Match returns the route for a method and canonical path on a face: ErrBadMethod for methods
// outside the standard set, ErrBadPath for a trailing slash or a non-canonical project id,
// ErrNoRoute for paths the face does not serve (including near-spellings of its route words).
func Match(face Face, method, path string) (Route, error) {
	switch method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
	default:
		// Lower-case "get" is GET to Django and Rack, a write here: refuse what is read two ways.
		return Route{}, ErrBadMethod
	}
	// A trailing slash is an empty last segment: Express (strict off) and Spring ignore it,
	// other routers do not. Only the Keys page, answered by keygate itself, accepts one.
	if len(path) > 1 && path[len(path)-1] == '/' && path != "/keys/" {
		return Route{}, ErrBadPath
	}
	switch face {
	case FaceStudio:
		return matchStudio(method, path)
	case FaceIngestion:
		return matchIngestion(method, path)
	}
	return Route{}, ErrNoRoute
}

// nextSeg splits "/a/b/c" into "a" and "/b/c" without allocating.
func nextSeg(p string) (seg, rest string) {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

// Route words: the segments keygate classifies on, by position. A segment at that position that
// is one of them exactly is classified; one that a lenient router could read as one of them
// (nearWord) is refused.
var (
	wordsAPI      = []string{"api"}
	wordsProjects = []string{"projects"}
	wordsProjTail = []string{"api-key-info"}
	wordsProject  = []string{"apikeys", "hmackeys", "devkeys", "keygate", "audit", "raw-data", "devices", "upload", "labels", "deployment", "jobs"}
	wordsKeysTail = []string{"ingestiononly", "hmac"}
	wordsKeys     = []string{"apikeys", "hmackeys", "devkeys"}
	wordsJobs     = []string{"build-ondevice-model", "deploy"}
)

// nearWord reports whether seg is not exactly any of words but some backend router could read it
// as one: a case variant (Express and many others route case-insensitively), anything non-ASCII
// (Java's equalsIgnoreCase folds the Kelvin sign to "k"; NFKC folds fullwidth letters), leading
// spaces, or the word followed by a suffix (".json": Spring's suffix patterns; "~", "!", ...).
// The word followed by more word characters ("apikeysx", "jobs-new") is another word.
func nearWord(seg string, words []string) bool {
	for _, w := range words {
		if seg == w {
			return false
		}
	}
	for i := 0; i < len(seg); i++ {
		if seg[i] >= utf8.RuneSelf {
			// Route words are ASCII; a non-ASCII segment where one belongs is a fold or a
			// normalisation (NFKC turns "ａｐｉｋｅｙｓ" into "apikeys") away from one.
			return true
		}
	}
	core := strings.TrimLeftFunc(seg, unicode.IsSpace)
	for i, r := range core {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_' {
			core = core[:i]
			break
		}
	}
	for _, w := range words {
		if strings.EqualFold(core, w) {
			return true
		}
	}
	return false
}

// keyWord reports the key-management route words keygate answers itself.
func keyWord(seg string) bool { return seg == "apikeys" || seg == "hmackeys" || seg == "devkeys" }

// projectID parses a project id in canonical decimal: ASCII digits, no sign, no leading zero,
// at most 18 digits (so it fits an int64).
func projectID(s string) (int64, bool) {
	if s == "" || len(s) > 18 || s[0] == '0' {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// numberish reports a segment that is not a canonical project id but that a lenient number
// parser could read as one: JavaScript's Number() and parseInt ("02", "+2", " 2", "2.0", "2e0",
// "0x2", "2abc"), Spring's NumberUtils (Long.decode: "#2", "-#2"), Java's Long.parseLong and
// Python's int() (non-ASCII digits such as "٢" or "２"; any non-ASCII is refused here, since a
// normalising backend may turn "＋2" into "+2").
func numberish(s string) bool {
	if s == "" {
		return false
	}
	switch c := s[0]; {
	case c >= '0' && c <= '9', c == '+', c == '-', c == '.', c == '#', c == ' ':
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

func matchIngestion(method, path string) (Route, error) {
	api, rest := nextSeg(path)
	cat, rest := nextSeg(rest)
	kind, rest := nextSeg(rest)
	if api != "api" || rest != "" || (kind != "files" && kind != "data") {
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
//	/keys, /keys/, /keys/app.js, /keys/style.css  GET: the Keys page (public static files)
//	/v1/api/projects                         GET: read (the key's own project)
//	/v1/api/projects/api-key-info            GET: keygate answers (any valid key)
//	/v1/api/{pid}/apikeys|hmackeys|devkeys… : keygate answers (admin)
//	/v1/api/{pid}/audit                      : keygate answers (admin)
//	/v1/api/{pid}/devkeys/hmac               GET: keygate answers (add data: clients sign with it)
//	/v1/api/{pid}/…                          GET/HEAD: read
//	/v1/api/{pid}/raw-data/…, devices/…,
//	  upload/…, labels/…                     writes: add data
//	/v1/api/{pid}/jobs/build-ondevice-model…,
//	  deployment/…, jobs/deploy…             writes: deploy
//	everything else under /v1               admin
//
// {pid} is canonical decimal; a segment a lenient parser reads as a number is ErrBadPath. A near
// spelling of a route word at a position keygate classifies on is ErrNoRoute (docs/security.md).
func matchStudio(method, path string) (Route, error) {
	switch path {
	case "/keys", "/keys/", "/keys/app.js", "/keys/style.css", "/keys/favicon.svg":
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
		if nearWord(api, wordsAPI) {
			return Route{}, ErrNoRoute
		}
		// Other /v1 paths (e.g. /v1/user): project-less; unknown means admin.
		return Route{Face: FaceStudio, Class: ClassAdmin}, nil
	}
	first, rest := nextSeg(rest)
	pid, ok := projectID(first)
	if !ok {
		if numberish(first) {
			return Route{}, ErrBadPath
		}
		// /v1/api/{word}/apikeys… is the key-management route to a router that takes any word
		// for :projectId (Express reads projectId "organizations"): never forwarded.
		if sub, _ := nextSeg(rest); sub != "" && (keyWord(sub) || nearWord(sub, wordsKeys)) {
			return Route{}, ErrNoRoute
		}
		switch {
		case first == "projects":
			sub, tail := nextSeg(rest)
			switch {
			case sub == "" && isRead(method):
				return Route{Face: FaceStudio, Class: ClassRead}, nil
			case sub == "api-key-info" && tail == "" && method == "GET":
				return Route{Face: FaceStudio, Class: ClassRead, Local: EndpointAPIKeyInfo}, nil
			case nearWord(sub, wordsProjTail):
				return Route{}, ErrNoRoute
			}
		case nearWord(first, wordsProjects):
			return Route{}, ErrNoRoute
		}
		// Project-less admin paths (/v1/api/organizations/…): the key's own project applies.
		return Route{Face: FaceStudio, Class: ClassAdmin}, nil
	}
	r := Route{Face: FaceStudio, ProjectID: pid}
	seg, tail := nextSeg(rest)
	sub, more := nextSeg(tail)
	switch seg {
	case "apikeys":
		if nearWord(sub, wordsKeysTail) {
			return Route{}, ErrNoRoute
		}
		r.Class, r.Local = ClassAdmin, EndpointAPIKeys
		return r, nil
	case "hmackeys":
		r.Class, r.Local = ClassAdmin, EndpointHMACKeys
		return r, nil
	case "keygate":
		// keygate's own extensions answer locally (unknown ones 404 there), never upstream.
		r.Class, r.Local = ClassAdmin, EndpointSettings
		return r, nil
	case "audit":
		r.Class, r.Local = ClassAdmin, EndpointAudit
		return r, nil
	case "devkeys":
		if nearWord(sub, wordsKeysTail) {
			return Route{}, ErrNoRoute
		}
		r.Class, r.Local = ClassAdmin, EndpointDevKeys
		// The development HMAC key is what ingestion clients sign samples with: the uploader fetches
		// it with its ingestion key, so any role that may add data may read it.
		if sub == "hmac" && more == "" && isRead(method) {
			r.Class = ClassAddData
		}
		return r, nil
	case "jobs":
		if nearWord(sub, wordsJobs) {
			return Route{}, ErrNoRoute
		}
	case "", "raw-data", "devices", "upload", "labels", "deployment":
	default:
		if nearWord(seg, wordsProject) {
			return Route{}, ErrNoRoute
		}
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
		if sub == "deploy" || strings.HasPrefix(sub, "build-ondevice-model") {
			r.Class = ClassDeploy
		} else {
			r.Class = ClassAdmin
		}
	default:
		r.Class = ClassAdmin
	}
	return r, nil
}
