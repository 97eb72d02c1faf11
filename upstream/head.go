package upstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// The request head of a bodiless request is serialized here instead of by (*http.Request).Write:
// that one formats with fmt, sorts the header keys, runs every value through a strings.Replacer
// and writes piecewise into a bufio.Writer (~15k instructions for a proxied GET, with the separate
// validation pass). appendHead writes the same header lines, validating each name and value in the
// same pass, into a pooled buffer that goes out in one write. Header fields of different names
// keep no particular order (RFC 9110 §5.3: the order of different field names is not
// significant); the values of one field keep theirs. Anything it cannot prove equivalent is left
// to Request.Write (see headFast); TestRequestHeadDifferential and FuzzRequestHead hold it to
// Request.Write's output.

// headBuf is a reusable buffer for one request head.
type headBuf struct{ b []byte }

// maxPooledHead is the largest head buffer kept for reuse: a rare huge head is not kept alive.
const maxPooledHead = 64 << 10

var headPool = sync.Pool{New: func() any { return &headBuf{b: make([]byte, 0, 1024)} }}

func putHead(h *headBuf) {
	if cap(h.b) <= maxPooledHead {
		h.b = h.b[:0]
		headPool.Put(h)
	}
}

// errURLCTL is Request.Write's refusal of a control character in the request-target.
var errURLCTL = errors.New("net/http: can't write control character in Request.URL")

// headFast reports whether appendHead writes req's head exactly as Request.Write would: no body
// (nil or http.NoBody, ContentLength 0), no Transfer-Encoding or Trailer set, no opaque URL, not
// CONNECT, an ASCII host (Request.Write converts others with IDNA), and no client trace that
// wants to see the header fields as they are written.
func headFast(req *http.Request, trace *httptrace.ClientTrace) bool {
	if (req.Body != nil && req.Body != http.NoBody) || req.ContentLength != 0 ||
		req.TransferEncoding != nil || req.Trailer != nil ||
		req.URL.Opaque != "" || req.Method == http.MethodConnect {
		return false
	}
	if trace != nil && (trace.WroteHeaderField != nil || trace.WroteHeaders != nil || trace.WroteRequest != nil) {
		return false
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return false
		}
	}
	return true
}

// appendHead appends the head of req (which headFast accepted) to dst: the request line, Host,
// User-Agent, Connection: close, Content-Length: 0 where net/http sends it, every other header
// field, and the blank line. It refuses what validate and Request.Write refuse, with the same
// errors; dst is then not to be sent.
func appendHead(dst []byte, req *http.Request) ([]byte, error) {
	if req.URL.Host == "" {
		return dst, errors.New("upstream: no Host in request URL")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	} else if !validMethod(method) {
		return dst, fmt.Errorf("upstream: invalid method %q", req.Method)
	}
	dst = append(dst, method...)
	dst = append(dst, ' ')
	// The request-target: URL.RequestURI for a non-opaque URL, appended in place.
	start := len(dst)
	u := req.URL
	if p := u.EscapedPath(); p != "" {
		dst = append(dst, p...)
	} else {
		dst = append(dst, '/')
	}
	if u.ForceQuery || u.RawQuery != "" {
		dst = append(dst, '?')
		dst = append(dst, u.RawQuery...)
	}
	ctl := false // reported after the header fields, where Request.Write finds it
	for _, b := range dst[start:] {
		if b < ' ' || b == 0x7f {
			ctl = true
			break
		}
	}
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	host := req.Host
	if host == "" {
		host = u.Host
	}
	if httpguts.ValidHostHeader(host) {
		dst = appendNoZone(dst, host)
	}
	dst = append(dst, "\r\n"...)

	h := req.Header
	if v, ok := h["User-Agent"]; !ok {
		dst = append(dst, "User-Agent: Go-http-client/1.1\r\n"...)
	} else if len(v) > 0 {
		// Validated with the other fields below, so there is no CR or LF to replace. Emptiness
		// is judged before trimming, as Request.Write does: "  " is sent as an empty field.
		if v[0] != "" {
			dst = append(dst, "User-Agent: "...)
			dst = append(dst, trim(v[0])...)
			dst = append(dst, "\r\n"...)
		}
	}
	if req.Close {
		var conn string
		if v := h["Connection"]; len(v) > 0 {
			conn = v[0]
		}
		if !hasToken(conn, "close") {
			dst = append(dst, "Connection: close\r\n"...)
		}
	}
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		// net/http sends a zero length for these methods: many servers expect one.
		dst = append(dst, "Content-Length: 0\r\n"...)
	}
	for k, vv := range h {
		if !validName(k) {
			return dst, fmt.Errorf("upstream: invalid header field name %q", k)
		}
		skip := false
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			skip = true // written above, or framing that is net/http's to decide
		}
		for _, v := range vv {
			if skip {
				if !validValue(v) {
					return dst, fmt.Errorf("upstream: invalid header field value for %q", k)
				}
				continue
			}
			dst = append(dst, k...)
			dst = append(dst, ": "...)
			// Validated as copied: only spaces and tabs are trimmed off, and they are valid, so
			// the value is valid exactly when what is copied is. A valid value has no CR or LF,
			// so this is the textproto.TrimString of Request.Write.
			n := len(dst)
			dst = append(dst, trimSpTab(v)...)
			if !validValueBytes(dst[n:]) {
				return dst, fmt.Errorf("upstream: invalid header field value for %q", k)
			}
			dst = append(dst, "\r\n"...)
		}
	}
	if ctl {
		return dst, fmt.Errorf("upstream: %w", errURLCTL)
	}
	return append(dst, "\r\n"...), nil
}

// appendNoZone appends host without an IPv6 zone identifier (RFC 6874: an intermediary removes it
// from an outgoing URI), as Request.Write's removeZone.
func appendNoZone(dst []byte, host string) []byte {
	if len(host) == 0 || host[0] != '[' {
		return append(dst, host...)
	}
	i := lastIndexByte(host, ']')
	if i < 0 {
		return append(dst, host...)
	}
	j := lastIndexByte(host[:i], '%')
	if j < 0 {
		return append(dst, host...)
	}
	dst = append(dst, host[:j]...)
	return append(dst, host[i:]...)
}

func lastIndexByte(s string, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// trimSpTab trims surrounding spaces and tabs.
func trimSpTab(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// trim is textproto.TrimString: surrounding ASCII space, tab, CR and LF removed.
func trim(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// hasToken is net/http's: whether the comma- or space-separated v holds token, ignoring case.
func hasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	if v == token {
		return true
	}
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if b := v[sp]; b != token[0] && b|0x20 != token[0] {
			continue
		}
		if sp > 0 && !isTokenBoundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !isTokenBoundary(v[end]) {
			continue
		}
		if equalFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }

// equalFold is ASCII case-insensitive equality.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
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

// byteClass marks, per byte, a token character (httpguts.IsTokenRune) and a byte a header value
// may not hold (a control character other than tab: httpguts.ValidHeaderFieldValue).
var byteClass = func() (t [256]uint8) {
	for i := range t {
		if httpguts.IsTokenRune(rune(i)) && i < 0x80 {
			t[i] |= classToken
		}
		if (i < ' ' && i != '\t') || i == 0x7f {
			t[i] |= classBadValue
		}
	}
	return t
}()

const (
	classToken    = 1
	classBadValue = 2
)

// validName is httpguts.ValidHeaderFieldName.
func validName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if byteClass[k[i]]&classToken == 0 {
			return false
		}
	}
	return true
}

// validValueBytes is httpguts.ValidHeaderFieldValue eight bytes at a time: a word with no byte
// below 0x20 and none equal to 0x7f is valid; a word with one (a tab, most likely) is checked
// byte by byte. Both word tests are exact (a borrow starts only at a byte that matches).
func validValueBytes(b []byte) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		y := x ^ (lo * 0x7f)
		if ((x-lo*0x20)&^x|(y-lo)&^y)&hi != 0 {
			for _, c := range b[:8] {
				if byteClass[c]&classBadValue != 0 {
					return false
				}
			}
		}
		b = b[8:]
	}
	for _, c := range b {
		if byteClass[c]&classBadValue != 0 {
			return false
		}
	}
	return true
}

// validValue is httpguts.ValidHeaderFieldValue.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if byteClass[v[i]]&classBadValue != 0 {
			return false
		}
	}
	return true
}
