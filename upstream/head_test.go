package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// headSpec describes one outgoing request; the differential test and FuzzRequestHead build
// requests from it.
type headSpec struct {
	method   string
	urlHost  string // URL.Host
	host     string // Request.Host (override)
	path     string // URL.Path
	rawPath  string // URL.RawPath
	query    string // URL.RawQuery
	opaque   string // URL.Opaque
	headers  string // "Name:value" fields separated by 0x1f; repeated names add values in order; "Name" alone: no values
	flags    uint16
	clen     int64 // ContentLength
	bodyText string
}

const (
	fClose      = 1 << iota // Request.Close
	fForceQuery             // URL.ForceQuery
	fNoBody                 // Body = http.NoBody
	fBody                   // Body = bodyText
	fTrailer                // Trailer set
	fTE                     // TransferEncoding = chunked
	fNilHeader              // Header nil
)

func (s headSpec) build() *http.Request {
	u := &url.URL{Scheme: "http", Host: s.urlHost, Path: s.path, RawPath: s.rawPath, RawQuery: s.query,
		Opaque: s.opaque, ForceQuery: s.flags&fForceQuery != 0}
	req := &http.Request{Method: s.method, URL: u, Host: s.host, Header: http.Header{}, Close: s.flags&fClose != 0,
		ContentLength: s.clen}
	if s.flags&fNilHeader != 0 {
		req.Header = nil
	}
	if s.headers != "" {
		for _, f := range strings.Split(s.headers, "\x1f") {
			k, v, ok := strings.Cut(f, ":")
			if req.Header == nil {
				req.Header = http.Header{}
			}
			if !ok { // a name without a colon: the field with no values
				if _, seen := req.Header[k]; !seen {
					req.Header[k] = []string{}
				}
				continue
			}
			req.Header[k] = append(req.Header[k], v)
		}
	}
	switch {
	case s.flags&fBody != 0:
		req.Body = io.NopCloser(strings.NewReader(s.bodyText))
	case s.flags&fNoBody != 0:
		req.Body = http.NoBody
	}
	if s.flags&fTrailer != 0 {
		req.Trailer = http.Header{"X-Sum": nil}
	}
	if s.flags&fTE != 0 {
		req.TransferEncoding = []string{"chunked"}
	}
	return req
}

// refHead is the head as this package wrote it before appendHead: validate, then Request.Write
// (whose errors the transport reports wrapped, as fail does).
func refHead(req *http.Request) ([]byte, error) {
	if err := validate(req); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	return buf.Bytes(), nil
}

// invalidFields counts the header fields validate would refuse: with two or more, which one an
// error names depends on map order, in Request.Write's path as in appendHead's.
func invalidFields(h http.Header) int {
	n := 0
	for k, vv := range h {
		bad := !validName(k)
		for _, v := range vv {
			bad = bad || !validValue(v)
		}
		if bad {
			n++
		}
	}
	return n
}

// compareHead serializes s with appendHead and with the reference and fails on any difference.
// It reports whether appendHead took the request.
func compareHead(t testing.TB, s headSpec) bool {
	t.Helper()
	want, werr := refHead(s.build())
	req := s.build()
	if !headFast(req, nil) {
		return false
	}
	got, fl, gerr := appendHead([]byte("stale"), req)
	if gerr == nil && hasBody(req) {
		// The transport's writer: the head, then the body as Request.Write sends it.
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		if err := writeHeadBody(bw, got[len("stale"):], req.Body, req.ContentLength); err != nil {
			gerr = fmt.Errorf("upstream: %w", err)
		}
		got = append([]byte("stale"), buf.Bytes()...)
	}
	if gerr == errDecline {
		return false // left to validate and Request.Write, the reference itself
	}
	if werr != nil || gerr != nil {
		if werr == nil || gerr == nil {
			t.Fatalf("%+v:\nRequest.Write err %v\n appendHead err %v (wrote %q)", s, werr, gerr, got)
		}
		if werr.Error() != gerr.Error() && invalidFields(req.Header) < 2 {
			t.Fatalf("%+v: errors differ:\nRequest.Write %v\n   appendHead %v", s, werr, gerr)
		}
		return true
	}
	if up, cl := fl&flagUpgrade != 0, fl&flagClose != 0; up != isUpgrade(req.Header) || cl != hasClose(req.Header) {
		t.Fatalf("%+v: flags upgrade %v close %v, want %v %v", s, up, cl, isUpgrade(req.Header), hasClose(req.Header))
	}
	if !bytes.HasPrefix(got, []byte("stale")) {
		t.Fatalf("appendHead did not append to dst: %q", got)
	}
	compareWire(t, want, got[len("stale"):])
	return true
}

// compareWire asserts that two serialized requests carry the same request line, the same header
// lines (as a multiset, the lines of one field name in the same order), the same bytes after the
// head, and parse to the same request.
func compareWire(t testing.TB, want, got []byte) {
	t.Helper()
	wh, wrest, ok1 := bytes.Cut(want, []byte("\r\n\r\n"))
	gh, grest, ok2 := bytes.Cut(got, []byte("\r\n\r\n"))
	if !ok1 || !ok2 || !bytes.Equal(wrest, grest) {
		t.Fatalf("heads or bodies differ:\nwant %q\n got %q", want, got)
	}
	wl, gl := headLines(wh), headLines(gh)
	if !slices.Equal(wl, gl) {
		t.Fatalf("header lines differ:\nwant %q\n got %q", wl, gl)
	}
	wr, werr := http.ReadRequest(bufio.NewReader(bytes.NewReader(want)))
	gr, gerr := http.ReadRequest(bufio.NewReader(bytes.NewReader(got)))
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("parse: want err %v, got err %v\nwant %q\n got %q", werr, gerr, want, got)
	}
	if werr != nil {
		return
	}
	wb, werr := io.ReadAll(wr.Body)
	gb, gerr := io.ReadAll(gr.Body)
	type view struct {
		Method, RequestURI, Proto, Host string
		Header                          http.Header
		ContentLength                   int64
		TransferEncoding                []string
		Close                           bool
		Body                            string
		BodyErr                         bool
	}
	wv := view{wr.Method, wr.RequestURI, wr.Proto, wr.Host, wr.Header, wr.ContentLength, wr.TransferEncoding, wr.Close, string(wb), werr != nil}
	gv := view{gr.Method, gr.RequestURI, gr.Proto, gr.Host, gr.Header, gr.ContentLength, gr.TransferEncoding, gr.Close, string(gb), gerr != nil}
	if !reflect.DeepEqual(wv, gv) {
		t.Fatalf("parsed requests differ:\nwant %+v\n got %+v", wv, gv)
	}
}

// headLines is the request line followed by the header lines, stably sorted by field name.
func headLines(head []byte) []string {
	lines := strings.Split(string(head), "\r\n")
	fields := lines[1:]
	slices.SortStableFunc(fields, func(a, b string) int {
		ka, _, _ := strings.Cut(a, ":")
		kb, _, _ := strings.Cut(b, ":")
		return strings.Compare(ka, kb)
	})
	return lines
}

func headCases() []struct {
	name string
	spec headSpec
	fast bool
} {
	h := "up.test:8080"
	many := make([]string, 0, 150)
	for i := range 150 {
		many = append(many, fmt.Sprintf("X-Field-%03d:value %d", i, i))
	}
	return []struct {
		name string
		spec headSpec
		fast bool
	}{
		{"plain GET", headSpec{method: "GET", urlHost: h, path: "/v1/api/1/raw-data"}, true},
		{"empty method is GET", headSpec{urlHost: h, path: "/x"}, true},
		{"lowercase method", headSpec{method: "get", urlHost: h, path: "/x"}, true},
		{"odd token method", headSpec{method: "M-SEARCH!#$%&'*+.^_`|~", urlHost: h, path: "/x"}, true},
		{"method with a space", headSpec{method: "GET X", urlHost: h, path: "/x"}, true},
		{"method with CR", headSpec{method: "GET\r", urlHost: h, path: "/x"}, true},
		{"DELETE HEAD OPTIONS TRACE have no length", headSpec{method: "DELETE", urlHost: h, path: "/x"}, true},
		{"HEAD", headSpec{method: "HEAD", urlHost: h, path: "/x"}, true},
		{"OPTIONS *", headSpec{method: "OPTIONS", urlHost: h, path: "*"}, true},
		{"POST without body sends Content-Length 0", headSpec{method: "POST", urlHost: h, path: "/p"}, true},
		{"PUT with NoBody", headSpec{method: "PUT", urlHost: h, path: "/p", flags: fNoBody}, true},
		{"PATCH", headSpec{method: "PATCH", urlHost: h, path: "/p"}, true},
		{"lowercase post has no length", headSpec{method: "post", urlHost: h, path: "/p"}, true},
		{"empty path", headSpec{urlHost: h}, true},
		{"escaped path", headSpec{urlHost: h, path: "/a b/ü/%/?#"}, true},
		{"RawPath kept", headSpec{urlHost: h, path: "/a/b c", rawPath: "/a%2Fb%20c"}, true},
		{"RawPath that does not match", headSpec{urlHost: h, path: "/a/b", rawPath: "/zzz"}, true},
		{"query", headSpec{urlHost: h, path: "/q", query: "a=1&b=%20&c"}, true},
		{"ForceQuery", headSpec{urlHost: h, path: "/q", flags: fForceQuery}, true},
		{"query with CTL", headSpec{urlHost: h, path: "/q", query: "a=\x01"}, true},
		{"query with DEL", headSpec{urlHost: h, path: "/q", query: "a=\x7f"}, true},
		{"query with space", headSpec{urlHost: h, path: "/q", query: "a= b"}, true},
		{"path with CTL", headSpec{urlHost: h, path: "/a\nb"}, true},
		{"IPv6 host", headSpec{urlHost: "[::1]:8080", path: "/"}, true},
		{"IPv6 host with zone", headSpec{urlHost: "[fe80::1%25eth0]:8080", path: "/"}, true},
		{"IPv6 host with raw zone", headSpec{urlHost: "[fe80::1%eth0]", path: "/"}, true},
		{"bracket without close", headSpec{urlHost: "[fe80::1%eth0", path: "/"}, true},
		{"Host override", headSpec{urlHost: h, host: "api.example.com", path: "/"}, true},
		{"Host override with zone", headSpec{urlHost: h, host: "[fe80::1%en0]:443", path: "/"}, true},
		{"invalid Host is sent empty", headSpec{urlHost: h, host: "bad host/with space", path: "/"}, true},
		{"invalid URL host is sent empty", headSpec{urlHost: "a b", path: "/"}, true},
		{"Host with CRLF is sent empty", headSpec{urlHost: h, host: "x\r\nInjected: 1", path: "/"}, true},
		{"no URL host", headSpec{host: "x", path: "/"}, true},
		{"non-ASCII host goes to Request.Write", headSpec{urlHost: "bücher.test", path: "/"}, false},
		{"non-ASCII host and an invalid field", headSpec{urlHost: "bücher.test", path: "/", headers: "X A:1"}, false},
		{"path of plain bytes", headSpec{urlHost: h, path: "/a-b_c.d~e/f:g@h!$&'()*+,;=", query: "q=1"}, true},
		{"path with a byte to escape after plain ones", headSpec{urlHost: h, path: "/abc/def/ghi\x7f"}, true},
		{"star path", headSpec{method: "OPTIONS", urlHost: h, path: "*", query: "x"}, true},
		{"non-ASCII Host override goes to Request.Write", headSpec{urlHost: h, host: "bücher.test", path: "/"}, false},
		{"UA absent", headSpec{urlHost: h, path: "/"}, true},
		{"UA empty is omitted", headSpec{urlHost: h, path: "/", headers: "User-Agent:"}, true},
		{"UA spaces only is omitted", headSpec{urlHost: h, path: "/", headers: "User-Agent: \t "}, true},
		{"UA present, trimmed", headSpec{urlHost: h, path: "/", headers: "User-Agent:  curl/8.0\t"}, true},
		{"UA first value only", headSpec{urlHost: h, path: "/", headers: "User-Agent:a\x1fUser-Agent:b"}, true},
		{"UA non-canonical key is an ordinary field", headSpec{urlHost: h, path: "/", headers: "user-agent:x"}, false},
		{"UA with CR is refused", headSpec{urlHost: h, path: "/", headers: "User-Agent:a\rb"}, true},
		{"nil header", headSpec{urlHost: h, path: "/", flags: fNilHeader}, true},
		{"multi-value header keeps order", headSpec{urlHost: h, path: "/", headers: "X-A:3\x1fX-A:1\x1fX-A:2\x1fX-B:z"}, true},
		{"values trimmed", headSpec{urlHost: h, path: "/", headers: "X-A: \t v a l \t \x1fX-B:\t\x1fX-C:"}, true},
		{"value with obs-text", headSpec{urlHost: h, path: "/", headers: "X-A:caf\xc3\xa9 \xff"}, true},
		{"value with tab inside", headSpec{urlHost: h, path: "/", headers: "X-A:a\tb"}, true},
		{"value with LF refused", headSpec{urlHost: h, path: "/", headers: "X-A:a\nInjected: 1"}, true},
		{"value with NUL refused", headSpec{urlHost: h, path: "/", headers: "X-A:a\x00"}, true},
		{"value with DEL refused", headSpec{urlHost: h, path: "/", headers: "X-A:a\x7f"}, true},
		{"name with space refused", headSpec{urlHost: h, path: "/", headers: "X A:1"}, true},
		{"empty name refused", headSpec{urlHost: h, path: "/", headers: ":1"}, true},
		{"name with non-ASCII refused", headSpec{urlHost: h, path: "/", headers: "X-\xc3\xa9:1"}, true},
		{"names differing in case only go to Request.Write (it orders them)", headSpec{urlHost: h, path: "/", headers: "ConneCtion:0\x1fConnection:8\x1fX-a:1\x1fX-A:2"}, false},
		{"non-canonical names kept as given", headSpec{urlHost: h, path: "/", headers: "x-lower:1\x1fX-UPPER:2"}, false},
		{"excluded fields are not sent", headSpec{urlHost: h, path: "/", headers: "Host:evil\x1fContent-Length:5\x1fTransfer-Encoding:chunked\x1fTrailer:X"}, true},
		{"excluded field with bad value refused", headSpec{urlHost: h, path: "/", headers: "Host:a\r\nb"}, true},
		{"lowercase framing names are ordinary fields", headSpec{urlHost: h, path: "/", headers: "content-length:5"}, false},
		{"empty value list", headSpec{urlHost: h, path: "/", headers: "X-A:1"}, true},
		{"many fields", headSpec{urlHost: h, path: "/", headers: strings.Join(many, "\x1f")}, true},
		{"Close", headSpec{urlHost: h, path: "/", flags: fClose}, true},
		{"Close with Connection: close already", headSpec{urlHost: h, path: "/", flags: fClose, headers: "Connection:keep-alive, CLOSE"}, true},
		{"Close with Connection: closed", headSpec{urlHost: h, path: "/", flags: fClose, headers: "Connection:closed"}, true},
		{"Close with Connection close in second value", headSpec{urlHost: h, path: "/", flags: fClose, headers: "Connection:x\x1fConnection:close"}, true},
		{"Connection close without Close", headSpec{urlHost: h, path: "/", headers: "Connection:close"}, true},
		{"upgrade", headSpec{urlHost: h, path: "/", headers: "Connection:Upgrade\x1fUpgrade:websocket"}, true},
		{"upgrade token in a second Connection value", headSpec{urlHost: h, path: "/", headers: "Connection:keep-alive\x1fConnection:upgrade, close\x1fUpgrade:"}, true},
		{"Upgrade without the Connection token", headSpec{urlHost: h, path: "/", headers: "Connection:keep-alive\x1fUpgrade:h2c"}, true},
		{"non-canonical connection and upgrade", headSpec{urlHost: h, path: "/", headers: "connection:upgrade, close\x1fupgrade:x"}, false},
		{"Upgrade alone", headSpec{urlHost: h, path: "/", headers: "Upgrade:x"}, true},
		{"Connection with no values", headSpec{urlHost: h, path: "/", headers: "Connection\x1fUpgrade:x"}, true},
		{"field with no values", headSpec{urlHost: h, path: "/", headers: "X-None\x1fX-A:1"}, true},
		{"invalid name with no values refused", headSpec{urlHost: h, path: "/", headers: "X None"}, true},
		{"User-Agent with no values is omitted", headSpec{urlHost: h, path: "/", headers: "User-Agent"}, true},
		{"keygate-like GET", headSpec{method: "GET", urlHost: "127.0.0.1:18101", path: "/v1/api/1/raw-data", headers: strings.Join([]string{
			"Accept:*/*", "X-Forwarded-For:127.0.0.1", "X-Forwarded-Host:127.0.0.1:18000", "X-Forwarded-Proto:http",
			"X-Keygate-Project:1", "X-Keygate-Key-Id:k_1", "X-Keygate-Role:admin", "X-Request-Id:abc",
			"Traceparent:00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "User-Agent:curl/8.0", "Accept-Encoding:gzip",
		}, "\x1f")}, true},
		// Left to Request.Write.
		{"ContentLength with nil body", headSpec{method: "POST", urlHost: h, path: "/", clen: 3}, false},
		{"NoBody with ContentLength", headSpec{method: "POST", urlHost: h, path: "/", clen: 3, flags: fNoBody}, false},
		{"body with length", headSpec{method: "POST", urlHost: h, path: "/", clen: 3, bodyText: "abc", flags: fBody}, true},
		{"GET with a body", headSpec{method: "GET", urlHost: h, path: "/", clen: 1, bodyText: "x", flags: fBody}, true},
		{"body shorter than its length", headSpec{method: "PUT", urlHost: h, path: "/", clen: 5, bodyText: "abc", flags: fBody}, true},
		{"body longer than its length", headSpec{method: "PUT", urlHost: h, path: "/", clen: 2, bodyText: "abc", flags: fBody}, true},
		{"body with Expect and Close", headSpec{method: "POST", urlHost: h, path: "/", clen: 3, bodyText: "abc", flags: fBody | fClose, headers: "Expect:100-continue"}, true},
		{"body with an invalid field", headSpec{method: "POST", urlHost: h, path: "/", clen: 3, bodyText: "abc", flags: fBody, headers: "X-A:\r"}, true},
		{"non-canonical name with a short body goes to Request.Write", headSpec{urlHost: h, path: "0", headers: "a:", flags: fBody, clen: 53}, false},
		{"big body", headSpec{method: "POST", urlHost: h, path: "/", clen: 20000, bodyText: strings.Repeat("b", 20000), flags: fBody}, true},
		{"body of unknown length", headSpec{method: "POST", urlHost: h, path: "/", clen: -1, bodyText: "abc", flags: fBody}, false},
		{"trailer", headSpec{method: "POST", urlHost: h, path: "/", clen: -1, bodyText: "abc", flags: fBody | fTrailer}, false},
		{"trailer without body", headSpec{urlHost: h, path: "/", flags: fTrailer}, false},
		{"TransferEncoding without body", headSpec{urlHost: h, path: "/", flags: fTE}, false},
		{"opaque URL", headSpec{urlHost: h, opaque: "//other/x"}, false},
		{"CONNECT", headSpec{method: "CONNECT", urlHost: h}, false},
	}
}

// TestRequestHeadDifferential holds appendHead to Request.Write (after validate, as the transport
// did before): the same bytes up to the order of different field names, the same parse, and the
// same refusals, with nothing written on a refusal.
func TestRequestHeadDifferential(t *testing.T) {
	for _, tc := range headCases() {
		t.Run(tc.name, func(t *testing.T) {
			if fast := compareHead(t, tc.spec); fast != tc.fast {
				t.Fatalf("appendHead took it: %v, want %v", fast, tc.fast)
			}
		})
	}
}

// TestRequestHeadRefusedBeforeDial: a request appendHead refuses fails with validate's error and
// opens no connection.
func TestRequestHeadRefusedBeforeDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed := 0
	tr := New(Options{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed++
		var d net.Dialer
		return d.DialContext(ctx, network, ln.Addr().String())
	}})
	for _, tc := range []struct {
		spec headSpec
		want string
	}{
		{headSpec{urlHost: "up.test", path: "/", headers: "X-A:a\r\nInjected: 1"}, `upstream: invalid header field value for "X-A"`},
		{headSpec{urlHost: "up.test", path: "/", headers: "X A:1"}, `upstream: invalid header field name "X A"`},
		{headSpec{method: "G T", urlHost: "up.test", path: "/"}, `upstream: invalid method "G T"`},
		{headSpec{urlHost: "up.test", path: "/", query: "a\x01"}, "upstream: net/http: can't write control character in Request.URL"},
		// Declined by appendHead (non-ASCII host), refused by validate.
		{headSpec{urlHost: "bücher.test", path: "/", headers: "X A:1"}, `upstream: invalid header field name "X A"`},
	} {
		_, err := tr.RoundTrip(tc.spec.build())
		if err == nil || err.Error() != tc.want {
			t.Errorf("%+v: err %v, want %s", tc.spec, err, tc.want)
		}
		var ce interface{ Timeout() bool }
		if errors.As(err, &ce) {
			t.Errorf("%+v: a refusal is no timeout", tc.spec)
		}
	}
	if dialed != 0 {
		t.Fatalf("%d dials for refused requests", dialed)
	}
}

// FuzzRequestHead compares appendHead with Request.Write on arbitrary requests (seeded from
// TestRequestHeadDifferential's table).
func FuzzRequestHead(f *testing.F) {
	for _, tc := range headCases() {
		s := tc.spec
		f.Add(s.method, s.urlHost, s.host, s.path, s.rawPath, s.query, s.opaque, s.headers, s.flags, s.clen, s.bodyText)
	}
	f.Fuzz(func(t *testing.T, method, urlHost, host, path, rawPath, query, opaque, headers string, flags uint16, clen int64, bodyText string) {
		s := headSpec{method, urlHost, host, path, rawPath, query, opaque, headers, flags, clen, bodyText}
		if s.flags&fBody != 0 && s.clen > 1<<20 {
			return // Request.Write would wait for bytes the body does not have: not a head question
		}
		compareHead(t, s)
	})
}

// TestValidValueBytes holds the word-at-a-time check to httpguts' byte-at-a-time one, for every
// byte value at every position of words and tails.
func TestValidValueBytes(t *testing.T) {
	for n := 0; n <= 19; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				for _, fill := range []byte{'a', ' ', '\t', 0xff} {
					for _, pad := range pads {
						b := padded(bytes.Repeat([]byte{fill}, n), pad)
						b[pos] = byte(c)
						if got, want := validValueBytes(b), httpguts.ValidHeaderFieldValue(string(b)); got != want {
							t.Fatalf("%q: %v, want %v", b, got, want)
						}
					}
				}
			}
		}
	}
}

// TestNameCheck holds the name check to httpguts' and textproto's canonical form for every byte
// value at every position, over fills of letters, digits, '-' and others.
func TestNameCheck(t *testing.T) {
	for n := 0; n <= 19; n++ {
		for pos := -1; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				for _, fill := range []string{"a", "Z", "0", "9", "-", "!", "~", "\xff", "Ab-", "a-B", "X-y-Zz"} {
					for _, pad := range pads {
						b := padded(bytes.Repeat([]byte(fill), n)[:n], pad)
						if pos >= 0 {
							b[pos] = byte(c)
						}
						valid, canonical := nameCheck(string(b))
						want := httpguts.ValidHeaderFieldName(string(b))
						if valid != want || valid && canonical != (textproto.CanonicalMIMEHeaderKey(string(b)) == string(b)) {
							t.Fatalf("%q: valid %v canonical %v, want %v %v", b, valid, canonical, want, textproto.CanonicalMIMEHeaderKey(string(b)) == string(b))
						}
					}
				}
			}
		}
	}
}

// pads are what may follow a name or value in its buffer: bytes no header may hold, and bytes
// that would change a name's canonical form. The checks must not look at them.
var pads = []string{"\x00\n\x7f a\x80", "a", "A", "-", "\r"}

// padded copies b into a buffer with 8 bytes of capacity after it, filled with pad.
func padded(b []byte, pad string) []byte {
	buf := bytes.Repeat([]byte(pad), (len(b)+8)/len(pad)+1)[:len(b)+8]
	return append(buf[:0], b...)
}

// TestCaseVariantNamesInRequestWriteOrder: keys that differ only in case are one field; the
// transport sends their lines in Request.Write's (sorted) order every time, not in map order.
func TestCaseVariantNamesInRequestWriteOrder(t *testing.T) {
	u := startUpstream(t, serveEach(func(_ int, r *http.Request, _ string) string {
		return okResp(strings.Join(r.Header.Values("X-A"), ","))
	}))
	tr := New(Options{})
	defer tr.CloseIdleConnections()
	for range 20 {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", u.url().String()+"/v", nil)
		req.Header["x-a"] = []string{"lower"}
		req.Header["X-A"] = []string{"upper"}
		req.Header["X-a"] = []string{"mixed"}
		if _, got, err := roundTrip(t, tr, req); err != nil || got != "upper,mixed,lower" {
			t.Fatalf("got %q %v, want the sorted keys' order", got, err)
		}
	}
}
