package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/keygate/keygate/internal/apierr"
	"github.com/keygate/keygate/internal/redact"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/policy"
)

// The request-form checks that run before identify (docs/security.md): what keygate judges must
// be what every backend reads, so whatever a common backend could read differently is refused
// (or, for headers that only ever steer routing, dropped before forwarding).

// connectionClose is the Connection header value that makes net/http close the client connection
// after the answer (shared, never modified).
var connectionClose = []string{"close"}

// ambiguousFraming reports a request whose end a proxy in front of keygate may have placed
// elsewhere: any chunked request (net/http has already removed a Content-Length sent beside
// Transfer-Encoding, so "chunked" and "chunked plus Content-Length" look the same here) and any
// HTTP/1.0 request (net/http ignores Transfer-Encoding on HTTP/1.0 and reads the chunked body as
// the next request). RFC 9112 §6.1 requires closing the connection after such a request; keeping
// it would let bytes a front proxy sent as one request's body be read as the next request, or
// glue another client's request onto an attacker's body.
func ambiguousFraming(r *http.Request) bool {
	return len(r.TransferEncoding) > 0 || r.ProtoMajor == 1 && r.ProtoMinor == 0
}

func badRequest(msg string) *apierr.Error {
	return apierr.New(http.StatusBadRequest, apierr.OutcomeBadRequest, msg, nil)
}

// checkHeaders refuses the header shapes that a backend could read differently from keygate:
//   - a protocol upgrade (Upgrade, or "upgrade" in Connection): after a 101 the connection is a
//     tunnel whose later requests keygate never judges. Only the remote-management face upgrades.
//   - a header whose name, with '_' read as '-', is x-api-key or X-Keygate-* without being spelled
//     so: WSGI/CGI backends (and nginx with underscores_in_headers) merge X_Api_Key with
//     x-api-key, so keygate could judge one key while the backend reads another.
//   - more than one x-api-key value (a repeated header or a comma list): keygate would judge one,
//     the backend may read another or the joined list.
//   - more than one Content-Type header: keygate reads the first, some backends the last.
//   - a Content-Encoding on the ingestion face, which verifies the bytes as sent.
//
// It also reports whether the request carries a header rewrite must drop (X-Keygate-* in any
// spelling, or a routingHeader), so that rewrite walks the outbound headers only when there is
// one. It allocates nothing on requests it lets through.
func checkHeaders(h http.Header, face string) (scrub bool, err error) {
	for name, vals := range h {
		switch name {
		case "Upgrade":
			return false, badRequest("protocol upgrades are not served on the " + face + " API")
		case "Connection":
			for _, v := range vals {
				if hasToken(v, "upgrade") {
					return false, badRequest("protocol upgrades are not served on the " + face + " API")
				}
			}
		case "Content-Encoding":
			// The ingestion face verifies the exact bytes it forwards; a backend that decodes the
			// coding (body-parser inflates gzip, deflate and br by default) would store a sample
			// keygate never saw — a signed one replayed, or one past the per-device limit.
			if face == policy.FaceIngestion.String() && (len(vals) != 1 || !strings.EqualFold(strings.TrimSpace(vals[0]), "identity")) {
				return false, apierr.New(http.StatusUnsupportedMediaType, "bad_request", "samples are sent without a Content-Encoding: keygate verifies the bytes as sent", nil)
			}
		case "Content-Type":
			// Go and Node read the first, gunicorn (CONTENT_TYPE) the last: the ingestion face
			// would verify the body as one type while the backend parses it as another.
			if len(vals) > 1 {
				return false, badRequest("send exactly one Content-Type header")
			}
		case headerAPIKey:
			if len(vals) > 1 || len(vals) == 1 && strings.IndexByte(vals[0], ',') >= 0 {
				return false, badRequest("send exactly one x-api-key header with one key")
			}
		default:
			if strings.IndexByte(name, '_') >= 0 && (sameHeader(name, headerAPIKey) ||
				len(name) > len(identityPrefix) && sameHeader(name[:len(identityPrefix)], identityPrefix)) {
				return false, badRequest("header names that read as x-api-key or X-Keygate-* must be spelled with '-' (got " + name + ")")
			}
			scrub = scrub || dropped(name)
		}
	}
	return scrub, nil
}

// dropped reports the client headers rewrite removes before forwarding: keygate's own identity
// headers in any spelling (only keygate sets them) and the routing headers.
func dropped(name string) bool {
	return len(name) >= len(identityPrefix) && strings.EqualFold(name[:len(identityPrefix)], identityPrefix) || routingHeader(name)
}

// sameHeader compares header names case-insensitively with '_' read as '-'.
func sameHeader(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated header value v lists token (case-insensitively).
func hasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// checkQuery refuses an API key in the query string: a parameter named like the key header
// (x-api-key, x_api_key, apiKey, api_key, …) or a key-shaped value. Some backends read a key
// from the query, which would be a second key next to the judged one, and query strings land
// in upstream logs and browser histories. It also refuses a parameter named like the project path
// parameter (projectParam). Queries without "key", "ei_", "project" or '%' cost one scan each.
func checkQuery(q string) error {
	if q == "" || !containsFold(q, "key") && !strings.Contains(q, "ei_") && !containsFold(q, "project") && strings.IndexByte(q, '%') < 0 {
		return nil // nothing here can name a key or a project, even escaped
	}
	for q != "" {
		// '&' and, for older parsers (Python before 3.9.2, some Java), ';' separate parameters.
		pair := q
		if i := strings.IndexAny(q, "&;"); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			q = ""
		}
		name, value, _ := strings.Cut(pair, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if v, err := url.QueryUnescape(value); err == nil {
			value = v
		}
		switch strings.ToLower(strings.ReplaceAll(strings.TrimSpace(name), "_", "-")) {
		case "x-api-key", "api-key", "apikey", "x-apikey", "api-key-id":
			return badRequest("send the API key in the x-api-key header, not in the URL")
		}
		if projectParam(name) {
			return badRequest("the project is named by the path only, not by a query parameter (got " + redact.Path(name) + ")")
		}
		if strings.HasPrefix(strings.TrimSpace(value), keys.KeyPrefix) && len(strings.TrimSpace(value)) >= keys.MinKeyLength {
			return badRequest("send the API key in the x-api-key header, not in the URL")
		}
	}
	return nil
}

// projectParam reports a query parameter named like the Studio API's project path parameter
// (projectId, project_id, project-id, PROJECTID, "projectId[]" …). Frameworks that merge input
// sources read it in place of the path's id: Laravel's $request->projectId returns the query's
// value before the route's, so ?projectId=2 on /v1/api/1/… would act on project 2 while keygate
// judged project 1.
func projectParam(name string) bool {
	name = strings.TrimSpace(name)
	if i := strings.IndexByte(name, '['); i > 0 {
		name = name[:i]
	}
	n := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '-' || c == '.' || c == ' ':
			continue
		case n >= len("projectid"):
			return false
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != "projectid"[n] {
			return false
		}
		n++
	}
	return n == len("projectid")
}

// containsFold reports whether s contains the lower-case ASCII word sub, in any case, without
// allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if sameHeader(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// routingHeader reports client-sent headers that only exist to make a backend act on another
// path, method or prefix than the request line says (X-Original-URL and X-Rewrite-URL in
// Symfony/IIS, X-HTTP-Method-Override and friends in method-override middleware, Forwarded and
// X-Forwarded-Prefix in Spring's ForwardedHeaderFilter and Werkzeug's ProxyFix). They are
// dropped before forwarding: the upstream then reads the request keygate judged. X-Forwarded-For,
// -Host and -Proto are set by keygate itself (ReverseProxy.SetXForwarded).
func routingHeader(name string) bool {
	switch name {
	case "X-Original-Url", "X-Original-Uri", "X-Rewrite-Url", "X-Http-Method-Override", "X-Http-Method",
		"X-Method-Override", "Forwarded", "X-Forwarded-Prefix", "X-Forwarded-Path", "X-Forwarded-Uri",
		"X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Original-Host":
		return true
	}
	return false
}

// routeError turns a policy.Match error into the refusal the client sees. The path is echoed
// with key-shaped strings redacted (a key pasted into a URL must not come back in an answer).
func (g *Gateway) routeError(err error, method, path string) *apierr.Error {
	switch err {
	case policy.ErrBadPath:
		return badRequest("path is not in canonical form: no dot segments, empty segments, trailing slash, encoded slashes, ';' or control characters; project ids in plain decimal")
	case policy.ErrBadMethod:
		return apierr.MethodNotAllowed("method "+method+" is not served on the "+g.face+" API", policy.Methods)
	}
	return apierr.New(http.StatusNotFound, apierr.OutcomeNotFound, "no such endpoint on the "+g.face+" API: "+method+" "+redact.Path(path), nil)
}
