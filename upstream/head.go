package upstream

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
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

// headBuf is a reusable buffer for one request head, and what appendHead saw of the fields.
type headBuf struct {
	b  []byte
	fl headFlags
}

// headFlags are facts about the request's header fields that the transport would otherwise look
// up again: isUpgrade and hasClose, noted while appendHead walks the fields.
type headFlags uint8

const (
	flagUpgrade headFlags = 1 << iota // "Upgrade" present and "Connection" has the upgrade token
	flagClose                         // "Connection" has the close token
)

// maxPooledHead is the largest head buffer kept for reuse: a rare huge head is not kept alive.
const maxPooledHead = 64 << 10

var headPool = sync.Pool{New: func() any { return &headBuf{b: make([]byte, 0, 1024)} }}

func putHead(h *headBuf) {
	if cap(h.b) <= maxPooledHead {
		h.b = h.b[:0]
		headPool.Put(h)
	}
}

// errDecline is appendHead leaving a request to Request.Write: a header name not in canonical
// form, or a non-ASCII host. The request is to be validated as any other going there.
var errDecline = errors.New("upstream: request head left to Request.Write")

// pathPlain marks the bytes URL.EscapedPath leaves as they are in a path (asked of net/url, one
// byte at a time: its escaping is decided byte by byte).
var pathPlain = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		p := "/" + string([]byte{byte(c)})
		t[c] = (&url.URL{Path: p}).EscapedPath() == p
	}
	return t
}()

// errURLCTL is Request.Write's refusal of a control character in the request-target.
var errURLCTL = errors.New("net/http: can't write control character in Request.URL")

// headFast reports whether appendHead may write req's head as Request.Write would: no body (nil
// or http.NoBody, ContentLength 0) or a body of a known length (ContentLength > 0, sent by
// writeHeadBody), no Transfer-Encoding or Trailer set, no opaque URL, not CONNECT, and no client
// trace that wants to see the header fields as they are written. (appendHead itself declines a
// non-ASCII host and names not in canonical form.)
func headFast(req *http.Request, trace *httptrace.ClientTrace) bool {
	if hasBody(req) != (req.ContentLength > 0) || req.ContentLength < 0 ||
		req.TransferEncoding != nil || req.Trailer != nil ||
		req.URL.Opaque != "" || req.Method == http.MethodConnect {
		return false
	}
	return trace == nil || trace.WroteHeaderField == nil && trace.WroteHeaders == nil && trace.WroteRequest == nil
}

// appendHead appends the head of req (which headFast accepted) to dst: the request line, Host,
// User-Agent, Connection: close, Content-Length: 0 where net/http sends it, every other header
// field, and the blank line. It refuses what validate and Request.Write refuse, with the same
// errors; dst is then not to be sent. The flags report what isUpgrade and hasClose would.
func appendHead(dst []byte, req *http.Request) ([]byte, headFlags, error) {
	if req.URL.Host == "" {
		return dst, 0, errors.New("upstream: no Host in request URL")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	} else if !validMethod(method) {
		return dst, 0, fmt.Errorf("upstream: invalid method %q", req.Method)
	}
	dst = append(dst, method...)
	dst = append(dst, ' ')
	// The request-target: URL.RequestURI for a non-opaque URL, appended in place. A path of
	// bytes EscapedPath keeps as they are (with no RawPath to prefer) is the escaped path itself,
	// and holds no control character: only the query needs that check then.
	start := len(dst)
	u := req.URL
	plain := u.RawPath == ""
	for i := 0; plain && i < len(u.Path); i++ {
		plain = pathPlain[u.Path[i]]
	}
	switch {
	case plain && u.Path != "":
		dst = append(dst, u.Path...)
		start = len(dst)
	case plain:
		dst = append(dst, '/')
		start = len(dst)
	default:
		if p := u.EscapedPath(); p != "" {
			dst = append(dst, p...)
		} else {
			dst = append(dst, '/')
		}
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
	} else {
		for i := 0; i < len(host); i++ {
			if host[i] >= 0x80 {
				// Request.Write converts such a host with IDNA first.
				return dst, 0, errDecline
			}
		}
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
	if req.ContentLength > 0 {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, req.ContentLength, 10)
		dst = append(dst, "\r\n"...)
	} else {
		switch method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			// net/http sends a zero length for these methods: many servers expect one.
			dst = append(dst, "Content-Length: 0\r\n"...)
		}
	}
	var conn []string
	upgrade, noncanon := false, false
	for k, vv := range h {
		skip := false
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			skip = true // written above, or framing that is net/http's to decide
		case "Connection":
			conn = vv
		case "Upgrade":
			upgrade = true
		}
		if skip || len(vv) == 0 {
			if !validName(k) {
				return dst, 0, fmt.Errorf("upstream: invalid header field name %q", k)
			}
			for _, v := range vv {
				if !validValue(v) {
					return dst, 0, fmt.Errorf("upstream: invalid header field value for %q", k)
				}
			}
			continue
		}
		// A name not in canonical form
		// could share its field with another key of the map (say "Accept" and "accept"), whose
		// lines Request.Write orders by sorting the keys: such a request is left to it.
		valid, canonical := nameCheck(k)
		if !valid {
			return dst, 0, fmt.Errorf("upstream: invalid header field name %q", k)
		}
		if !canonical {
			noncanon = true
		}
		for _, v := range vv {
			dst = append(dst, k...)
			dst = append(dst, ": "...)
			// Validated as copied: only spaces and tabs are trimmed off, and they are valid, so
			// the value is valid exactly when what is copied is. A valid value has no CR or LF,
			// so this is the textproto.TrimString of Request.Write.
			n := len(dst)
			dst = append(dst, trimSpTab(v)...)
			if !validValueBytes(dst[n:]) {
				return dst, 0, fmt.Errorf("upstream: invalid header field value for %q", k)
			}
			dst = append(dst, "\r\n"...)
		}
	}
	if ctl {
		return dst, 0, fmt.Errorf("upstream: %w", errURLCTL)
	}
	if noncanon {
		return dst, 0, errDecline
	}
	var fl headFlags
	if conn != nil {
		if upgrade && httpguts.HeaderValuesContainsToken(conn, "upgrade") {
			fl |= flagUpgrade
		}
		if httpguts.HeaderValuesContainsToken(conn, "close") {
			fl |= flagClose
		}
	}
	return append(dst, "\r\n"...), fl, nil
}

// writeHeadBody sends a request whose head appendHead wrote and whose body has the declared
// length n, as Request.Write sends it: the head flushed first (the upstream may answer on the
// head alone, and the body may be slow to come), exactly n bytes, then the body read to its end
// so that a longer body is an error as it is there (the last byte read: what the gateway counts
// as the upstream having taken the body), the body closed in every case, and the same error for
// a body of the wrong length.
func writeHeadBody(bw *bufio.Writer, head []byte, body io.ReadCloser, n int64) error {
	if _, err := bw.Write(head); err != nil {
		body.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		body.Close()
		return err
	}
	ncopy, err := io.Copy(bw, io.LimitReader(body, n))
	if err != nil {
		body.Close()
		return err
	}
	nextra, err := io.Copy(io.Discard, body)
	ncopy += nextra
	if err != nil {
		body.Close()
		return err
	}
	if err := body.Close(); err != nil {
		return err
	}
	if ncopy != n {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", n, ncopy)
	}
	return bw.Flush()
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

// nameCheck checks a header name as httpguts.ValidHeaderFieldName does, and whether it is in
// canonical form (textproto.CanonicalMIMEHeaderKey would leave it as it is: a letter is upper
// case first and after '-', lower case elsewhere), with one table step per byte (nameDFA).
func nameCheck(k string) (valid, canonical bool) {
	if k == "" {
		return false, false
	}
	s := uint(nameUpperNext)
	for i := 0; i < len(k); i++ {
		s = uint(nameDFA[(s<<8|uint(k[i]))&(8<<8-1)])
	}
	return s&nameInvalid == 0, s&nameNonCanonical == 0
}

// nameDFA's states: the next letter must be upper case; a letter in the wrong case was seen; a
// byte that is not a token character was seen (final).
const (
	nameUpperNext    = 1
	nameNonCanonical = 2
	nameInvalid      = 4
)

var nameDFA = func() (t [8 << 8]uint8) {
	for s := 0; s < 8; s++ {
		for c := 0; c < 256; c++ {
			next := uint8(nameInvalid)
			if s&nameInvalid == 0 && byteClass[c]&classToken != 0 {
				next = uint8(s & nameNonCanonical)
				if s&nameUpperNext != 0 && 'a' <= c && c <= 'z' || s&nameUpperNext == 0 && 'A' <= c && c <= 'Z' {
					next |= nameNonCanonical
				}
				if c == '-' {
					next |= nameUpperNext
				}
			}
			t[s<<8|c] = next
		}
	}
	return t
}()

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
