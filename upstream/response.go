package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// readResponse reads one response from br, as http.ReadResponse does. The common answer of a
// backend (HTTP/1.1, a 2xx–5xx status with a body, framed by one Content-Length, its header block
// already in the buffer) is parsed here in one pass with a handful of allocations; everything else
// (1xx, 204, 304, HEAD, chunked or read-until-close bodies, repeated or odd framing headers,
// obs-folds, bare LFs, headers longer than the buffer) goes to http.ReadResponse unread. What the
// fast path accepts it answers exactly as http.ReadResponse would (FuzzReadResponse checks it
// field by field): it is an accelerator, never a second parser with its own opinions.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	if resp := fastResponse(br, req); resp != nil {
		return resp, nil
	}
	return http.ReadResponse(br, req)
}

// fastResponse parses a simple response from the bytes br already holds, or returns nil having
// consumed nothing.
func fastResponse(br *bufio.Reader, req *http.Request) *http.Response {
	if req == nil || req.Method == http.MethodHead {
		return nil
	}
	if _, err := br.Peek(1); err != nil {
		return nil // http.ReadResponse reads again and reports the error its own way
	}
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 {
		return nil
	}
	head := buf[:end+2] // every line with its CRLF
	// Status line: "HTTP/1.1 NNN[ reason]".
	nl := bytes.IndexByte(head, '\n')
	if nl < 1 || head[nl-1] != '\r' {
		return nil
	}
	line := head[:nl-1]
	if len(line) < 12 || string(line[:9]) != "HTTP/1.1 " {
		return nil
	}
	c0, c1, c2 := line[9], line[10], line[11]
	if c0 < '2' || c0 > '5' || c1 < '0' || c1 > '9' || c2 < '0' || c2 > '9' {
		return nil
	}
	code := int(c0-'0')*100 + int(c1-'0')*10 + int(c2-'0')
	if code == http.StatusNoContent || code == http.StatusNotModified {
		return nil
	}
	if len(line) > 12 && line[12] != ' ' {
		return nil
	}
	for _, c := range line[12:] {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return nil
		}
	}

	// Count the header lines and check their shape before allocating anything.
	lines := head[nl+1:]
	n := 0
	for rest := lines; len(rest) > 0; n++ {
		i := bytes.IndexByte(rest, '\n')
		if i < 1 || rest[i-1] != '\r' {
			return nil
		}
		if !simpleHeaderLine(rest[:i-1]) {
			return nil
		}
		rest = rest[i+1:]
	}

	// One string holds the status and every header line; names and values are its substrings.
	// The response, its body and (for up to len(f.strs) fields) the header values' slices share
	// one allocation.
	s := string(head)
	f := &fastResp{}
	hdr := make(http.Header, n)
	strs := f.strs[:]
	if n > len(strs) {
		strs = make([]string, n)
	}
	contentLength := int64(-1)
	rest := s[nl+1:]
	for rest != "" {
		i := strings.Index(rest, "\r\n")
		kv := rest[:i]
		rest = rest[i+2:]
		colon := strings.IndexByte(kv, ':')
		key := kv[:colon]
		if _, canonical := nameCheck(key); !canonical {
			key = textproto.CanonicalMIMEHeaderKey(key) // (nameCheck: a table step a byte)
		}
		value := trimSpTab(kv[colon+1:])
		switch key {
		case "Content-Length":
			if contentLength >= 0 {
				return nil // repeated: http.ReadResponse decides (dedupes equal values)
			}
			v, ok := parseLength(value)
			if !ok {
				return nil
			}
			contentLength = v
		case "Transfer-Encoding", "Trailer", "Pragma":
			return nil
		}
		if vv := hdr[key]; vv == nil {
			strs[0] = value
			hdr[key], strs = strs[:1:1], strs[1:]
		} else {
			hdr[key] = append(vv, value)
		}
	}
	if contentLength < 0 {
		return nil
	}
	closes := false
	if conn, ok := hdr["Connection"]; ok && httpguts.HeaderValuesContainsToken(conn, "close") {
		closes = true
		delete(hdr, "Connection") // as http.ReadResponse does for a close
	}
	if _, err := br.Discard(len(head) + 2); err != nil {
		return nil // cannot happen: the bytes are buffered
	}
	f.resp = http.Response{
		Status: s[9 : nl-1], StatusCode: code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: hdr, ContentLength: contentLength, Close: closes, Request: req,
	}
	if contentLength == 0 {
		f.resp.Body = http.NoBody
	} else {
		f.body = lengthBody{r: br, n: contentLength, wrap: &f.wrap}
		f.resp.Body = &f.body
	}
	return &f.resp
}

// fastResp is what fastResponse allocates once: the response, its body reader, the transport's
// wrapper of that body (see conn.roundTrip) and the backing array of the header values (most
// answers have at most eight fields).
type fastResp struct {
	resp http.Response
	body lengthBody
	wrap body
	strs [8]string
}

var crlfcrlf = []byte("\r\n\r\n")

// simpleHeaderLine reports a header line the fast path parses exactly as textproto does: a name of
// token characters, a colon, and a value of field-content bytes (no CR, LF, NUL or other control
// but HTAB). A line starting with whitespace (an obs-fold) or a name with a space is not simple.
// The checks are the request writer's (head.go).
func simpleHeaderLine(l []byte) bool {
	colon := bytes.IndexByte(l, ':')
	return colon >= 1 && validName(string(l[:colon])) && validValueBytes(l[colon+1:])
}

// parseLength parses a Content-Length value as net/http does (strconv.ParseUint, base 10, 63 bits).
func parseLength(v string) (int64, bool) {
	n, err := strconv.ParseUint(v, 10, 63)
	return int64(n), err == nil
}

// lengthBody is a Content-Length body: exactly n bytes from r, io.ErrUnexpectedEOF if the
// connection ends first, and io.EOF returned with the last bytes (as net/http's body does, so the
// connection goes back to the pool on the read that completes the body).
type lengthBody struct {
	r *bufio.Reader
	n int64
	// wrap is room for the transport's body wrapper, allocated with this body.
	wrap *body
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	k, err := b.r.Read(p)
	b.n -= int64(k)
	switch {
	case b.n == 0:
		return k, io.EOF
	case err == io.EOF:
		return k, io.ErrUnexpectedEOF
	}
	return k, err
}

func (b *lengthBody) Close() error { return nil }
