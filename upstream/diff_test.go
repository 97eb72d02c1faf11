package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil"
)

// The differential suite: each case sends the same requests through http.Transport ("std") and
// through this package's Transport ("fast") to a scripted raw-TCP upstream, and asserts that what
// the client sees — and what the upstream sees: connections opened and closed — is identical, or
// that fast refuses where std does something less safe (noted per case).

// upstreamScript is a raw-TCP upstream: script runs once per accepted connection, with the
// connection's index; it returns when it is done with the connection, which is then closed.
type upstreamScript struct {
	ln       net.Listener
	accepted atomic.Int32
	// closedByPeer counts connections on which the proxy side closed first (the script saw EOF).
	closedByPeer atomic.Int32
	wg           sync.WaitGroup
	stop         chan struct{} // closed when the test ends
	strayIn      atomic.Bool   // a script's milestone: its stray bytes are delivered, or its request is in
	mu           sync.Mutex
	conns        []net.Conn
}

type script func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript)

func startUpstream(t *testing.T, fn script) *upstreamScript {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstreamScript{ln: ln, stop: make(chan struct{})}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			i := int(u.accepted.Add(1)) - 1
			u.mu.Lock()
			u.conns = append(u.conns, c)
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				fn(i, c, bufio.NewReader(c), u)
			}()
		}
	}()
	t.Cleanup(func() {
		close(u.stop)
		ln.Close()
		u.mu.Lock()
		for _, c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *upstreamScript) url() *url.URL { return &url.URL{Scheme: "http", Host: u.ln.Addr().String()} }

// readReq reads one request and its body; ok is false when the peer closed or sent garbage.
func readReq(br *bufio.Reader) (*http.Request, string, bool) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, "", false
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, "", false
	}
	return r, string(b), true
}

// waitClose blocks until the proxy side closes the connection, and counts it.
func (u *upstreamScript) waitClose(br *bufio.Reader) {
	if _, err := io.Copy(io.Discard, br); err == nil {
		u.closedByPeer.Add(1)
	}
}

// serveEach answers every request on a connection with resp (a format with %d for the connection
// index and %s for the request path), until the peer closes.
func serveEach(resp func(i int, r *http.Request, body string) string) script {
	return func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
		for {
			r, body, ok := readReq(br)
			if !ok {
				u.closedByPeer.Add(1)
				return
			}
			if _, err := io.WriteString(c, resp(i, r, body)); err != nil {
				return
			}
		}
	}
}

func okResp(body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

const headerTimeout = time.Second

// newStd is http.Transport tuned as keygate's std transport.
func newStd() *http.Transport {
	return &http.Transport{
		MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second, ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second, DisableCompression: true, MaxResponseHeaderBytes: DefaultMaxResponseHeaderBytes,
	}
}

func newFast() *Transport {
	return New(Options{ResponseHeaderTimeout: headerTimeout, MaxIdlePerHost: 64, Fallback: newStd()})
}

type transportKind struct {
	name string
	make func() http.RoundTripper
}

var kinds = []transportKind{
	{"std", func() http.RoundTripper { return newStd() }},
	{"fast", func() http.RoundTripper { return newFast() }},
}

// bufPool is the ReverseProxy BufferPool keygate uses.
type bufPool struct{ p sync.Pool }

func (b *bufPool) Get() []byte  { return b.p.Get().(*[32 << 10]byte)[:] }
func (b *bufPool) Put(p []byte) { b.p.Put((*[32 << 10]byte)(p)) }

// startProxy is a ReverseProxy set up as keygate's Gateway sets it up (Rewrite, BufferPool, an
// ErrorHandler mapping timeouts to 504 and body caps to 413), over tr.
func startProxy(t *testing.T, up *url.URL, tr http.RoundTripper) *httptest.Server {
	t.Helper()
	rp := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(up); pr.SetXForwarded() },
		Transport:  tr,
		BufferPool: &bufPool{p: sync.Pool{New: func() any { return new([32 << 10]byte) }}},
		ErrorLog:   nopLogger(),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var ne interface{ Timeout() bool }
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				w.WriteHeader(http.StatusRequestEntityTooLarge)
			case errors.Is(err, context.Canceled):
			case errors.As(err, &ne) && ne.Timeout():
				w.WriteHeader(http.StatusGatewayTimeout)
			default:
				w.WriteHeader(http.StatusBadGateway)
			}
		},
	}
	srv := httptest.NewUnstartedServer(rp)
	srv.Config.ErrorLog = nopLogger()
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		if c, ok := tr.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	})
	return srv
}

// result is what the client saw of one request.
type result struct {
	Status  int
	Header  string // the headers the case looks at
	Body    string
	BodyErr bool
	Trailer string
	Info    string // 1xx responses relayed, "103:<link>;"
	Err     bool
}

func (r result) String() string {
	return fmt.Sprintf("{status %d hdr %q body %q bodyErr %v trailer %q 1xx %q err %v}", r.Status, r.Header, r.Body, r.BodyErr, r.Trailer, r.Info, r.Err)
}

// client sends requests to the proxy: its own http.Transport, one connection at a time.
type client struct {
	base string
	hc   *http.Client
}

func (c *client) do(t *testing.T, method, path string, body io.Reader, hdr http.Header) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var res result
	var mu sync.Mutex
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		res.Info += strconv.Itoa(code) + ":" + h.Get("Link") + ";"
		mu.Unlock()
		return nil
	}})
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		res.Err = true
		return res
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	res.Status, res.Body, res.BodyErr = resp.StatusCode, string(b), err != nil
	for _, k := range []string{"X-A", "Etag", "Content-Length", "Link"} {
		if v := resp.Header.Values(k); len(v) > 0 {
			res.Header += k + "=" + strings.Join(v, ",") + ";"
		}
	}
	for k, v := range resp.Trailer {
		res.Trailer += k + "=" + strings.Join(v, ",") + ";"
	}
	return res
}

func newClient(base string) *client {
	return &client{base: base, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}}
}

// observed is one run of a case: the client's results and the upstream's view.
type observed struct {
	kind     string
	results  []result
	accepted int32
	closed   int32
}

type diffCase struct {
	name     string
	upstream script
	// steps drives the client; it may poll u (the upstream) between requests.
	steps func(t *testing.T, c *client, u *upstreamScript) []result
	// closed, when set, waits until the upstream has seen this many connections closed by the proxy
	// before the observation is taken.
	closed int32
	// check asserts case-specific facts on each transport's observation (both must satisfy it).
	check func(t *testing.T, o observed)
	// fastMay is a safer refusal fast may give where std differs; nil: identical results required.
	fastMay func(std, fast observed) bool
}

func get(path string) func(t *testing.T, c *client, u *upstreamScript) []result {
	return func(t *testing.T, c *client, u *upstreamScript) []result {
		return []result{c.do(t, "GET", path, nil, nil)}
	}
}

func seq(steps ...func(t *testing.T, c *client, u *upstreamScript) []result) func(t *testing.T, c *client, u *upstreamScript) []result {
	return func(t *testing.T, c *client, u *upstreamScript) []result {
		var out []result
		for _, s := range steps {
			out = append(out, s(t, c, u)...)
		}
		return out
	}
}

func req(method, path string, body func() io.Reader, hdr http.Header) func(t *testing.T, c *client, u *upstreamScript) []result {
	return func(t *testing.T, c *client, u *upstreamScript) []result {
		var b io.Reader
		if body != nil {
			b = body()
		}
		return []result{c.do(t, method, path, b, hdr)}
	}
}

func wantAccepted(n int32) func(t *testing.T, o observed) {
	return func(t *testing.T, o observed) {
		t.Helper()
		if o.accepted != n {
			t.Errorf("upstream accepted %d connections, want %d", o.accepted, n)
		}
	}
}

func wantBodies(bodies ...string) func(t *testing.T, o observed) {
	return func(t *testing.T, o observed) {
		t.Helper()
		for i, b := range bodies {
			if i >= len(o.results) || o.results[i].Body != b {
				t.Errorf("request %d: results %v, want body %q", i, o.results, b)
			}
		}
	}
}

func both(checks ...func(t *testing.T, o observed)) func(t *testing.T, o observed) {
	return func(t *testing.T, o observed) {
		t.Helper()
		for _, c := range checks {
			c(t, o)
		}
	}
}

func diffCases() []diffCase {
	const poison = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison"
	return []diffCase{
		{
			// Bodiless requests' heads are written by appendHead, others' by Request.Write: the
			// upstream must receive the same request either way.
			name: "request heads reach the upstream alike",
			upstream: serveEach(func(_ int, r *http.Request, body string) string {
				var lines []string
				for k, vv := range r.Header {
					if k != "X-Forwarded-Host" { // the proxy's port: differs per run
						lines = append(lines, k+"="+strings.Join(vv, "|"))
					}
				}
				slices.Sort(lines)
				return okResp(fmt.Sprintf("%s %s host=%v cl=%d te=%v close=%v body=%q %s", r.Method, r.RequestURI, strings.HasPrefix(r.Host, "127.0.0.1:"),
					r.ContentLength, r.TransferEncoding, r.Close, body, strings.Join(lines, ";")))
			}),
			steps: seq(
				req("GET", "/a%20b/c?x=1&y=%2F", nil, http.Header{"X-Multi": {"1", " 2 ", "\t3"}, "X-Empty": {""}, "User-Agent": {""}}),
				req("POST", "/p", nil, http.Header{"Accept": {"*/*"}}),
				req("PUT", "/p", nil, nil),
				req("DELETE", "/d", nil, http.Header{"Connection": {"close"}}),
				req("OPTIONS", "/o", nil, http.Header{"User-Agent": {"  spaced  "}}),
				req("POST", "/b", func() io.Reader { return strings.NewReader("body") }, http.Header{"X-A": {"a"}}),
				get("/last"),
			),
			check: both(func(t *testing.T, o observed) {
				for i, r := range o.results {
					if r.Status != 200 {
						t.Errorf("request %d: %v", i, r)
					}
				}
			}),
		},
		{
			name:     "content-length responses reuse one connection",
			upstream: serveEach(func(i int, r *http.Request, _ string) string { return okResp("hello " + r.URL.Path) }),
			steps:    seq(get("/a"), get("/b"), get("/c")),
			check:    both(wantAccepted(1), wantBodies("hello /a", "hello /b", "hello /c")),
		},
		{
			name: "chunked response with trailers",
			upstream: serveEach(func(int, *http.Request, string) string {
				return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n"
			}),
			steps: seq(get("/a"), get("/b")),
			check: both(wantAccepted(1), wantBodies("hello world", "hello world"), func(t *testing.T, o observed) {
				if o.results[0].Trailer != "X-Sum=42;" {
					t.Errorf("trailer %q, want X-Sum=42", o.results[0].Trailer)
				}
			}),
		},
		{
			name: "read-until-close response: one connection per response",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, _, ok := readReq(br); ok {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it "+strconv.Itoa(i))
				}
			},
			steps: seq(get("/a"), get("/b")),
			check: both(wantAccepted(2), wantBodies("all of it 0", "all of it 1")),
		},
		{
			name: "HTTP/1.0 response without keep-alive closes",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, _, ok := readReq(br); ok {
					io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
					u.waitClose(br)
				}
			},
			steps:  seq(get("/a"), get("/b")),
			closed: 2,
			check:  both(wantAccepted(2), wantBodies("ok", "ok")),
		},
		{
			name: "Connection: close from the upstream",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, _, ok := readReq(br); ok {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye")
					u.waitClose(br)
				}
			},
			steps:  seq(get("/a"), get("/b")),
			closed: 2,
			check:  both(wantAccepted(2), wantBodies("bye", "bye")),
		},
		{
			name: "HEAD, 204 and 304 carry no body and keep the connection",
			upstream: serveEach(func(_ int, r *http.Request, _ string) string {
				switch {
				case r.Method == "HEAD":
					return "HTTP/1.1 200 OK\r\nX-A: head\r\nContent-Length: 10\r\n\r\n"
				case r.URL.Path == "/204":
					return "HTTP/1.1 204 No Content\r\nX-A: 204\r\n\r\n"
				case r.URL.Path == "/304":
					return "HTTP/1.1 304 Not Modified\r\nEtag: \"v1\"\r\n\r\n"
				}
				return okResp("after")
			}),
			steps: seq(req("HEAD", "/h", nil, nil), get("/204"), get("/304"), get("/x")),
			check: both(wantAccepted(1), wantBodies("", "", "", "after")),
		},
		{
			name: "103 Early Hints are passed on before the answer",
			upstream: serveEach(func(int, *http.Request, string) string {
				return "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + okResp("ok")
			}),
			steps: seq(get("/a"), get("/b")),
			check: both(wantAccepted(1), wantBodies("ok", "ok"), func(t *testing.T, o observed) {
				if o.results[0].Info != "103:</a.css>; rel=preload;" {
					t.Errorf("1xx relayed %q, want the 103 with its Link", o.results[0].Info)
				}
			}),
		},
		{
			name: "too many 1xx: std relays them all, fast refuses",
			upstream: serveEach(func(int, *http.Request, string) string {
				return strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", 20) + okResp("ok")
			}),
			steps: get("/a"),
			fastMay: func(std, fast observed) bool {
				return std.results[0].Status == 200 && fast.results[0].Status == http.StatusBadGateway
			},
		},
		{
			name: "Expect: 100-continue: the body goes after the upstream's 100",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if r.Header.Get("Expect") == "100-continue" {
						io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
					}
					b, _ := io.ReadAll(r.Body)
					io.WriteString(c, okResp("got "+string(b)))
				}
			},
			steps: seq(req("POST", "/p", func() io.Reader { return strings.NewReader("payload") }, http.Header{"Expect": {"100-continue"}}), get("/after")),
			check: both(wantAccepted(1), wantBodies("got payload", "got "), func(t *testing.T, o observed) {
				if o.kind == "fast" && o.results[0].Info != "100:;" {
					t.Errorf("1xx relayed %q, want exactly one 100", o.results[0].Info)
				}
			}),
		},
		{
			name: "Expect: 100-continue refused with a closing 417: no body is sent",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nContent-Length: 4\r\n\r\nnope")
				u.waitClose(br)
			},
			steps:  req("POST", "/p", func() io.Reader { return strings.NewReader("payload") }, http.Header{"Expect": {"100-continue"}}),
			closed: 1,
			check:  both(wantAccepted(1), wantBodies("nope")),
		},
		{
			name: "final answer without 100 on a kept connection: the body is sent anyway",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno")
					io.Copy(io.Discard, r.Body)
				}
			},
			steps: seq(req("POST", "/p", func() io.Reader { return strings.NewReader("payload") }, http.Header{"Expect": {"100-continue"}}), get("/after")),
			check: both(wantAccepted(1), wantBodies("no", "no")),
		},
		{
			name: "chunked request body with trailers is forwarded",
			upstream: serveEach(func(_ int, r *http.Request, body string) string {
				return okResp(fmt.Sprintf("%s te=%v trailer=%s", body, r.TransferEncoding, r.Trailer.Get("X-Req-Sum")))
			}),
			steps: func(t *testing.T, c *client, u *upstreamScript) []result {
				pr, pw := io.Pipe()
				go func() { io.WriteString(pw, "part one, "); io.WriteString(pw, "part two"); pw.Close() }()
				req, _ := http.NewRequest("POST", c.base+"/chunked", pr)
				req.Trailer = http.Header{"X-Req-Sum": {"7"}}
				resp, err := c.hc.Do(req)
				if err != nil {
					return []result{{Err: true}}
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return []result{{Status: resp.StatusCode, Body: string(b)}}
			},
			check: both(wantAccepted(1), wantBodies("part one, part two te=[chunked] trailer=")), // ReverseProxy does not forward request trailers
		},
		{
			name: "response header timeout: 504 and the connection is closed",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, _, ok := readReq(br); ok {
					u.waitClose(br)
				}
			},
			steps:  get("/slow"),
			closed: 1,
			check: both(wantAccepted(1), func(t *testing.T, o observed) {
				if o.results[0].Status != http.StatusGatewayTimeout {
					t.Errorf("results %v, want 504", o.results)
				}
			}),
		},
		{
			name: "client goes away: the upstream connection is closed",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, _, ok := readReq(br); ok {
					u.strayIn.Store(true) // the request is in
					u.waitClose(br)
				}
			},
			steps: func(t *testing.T, c *client, u *upstreamScript) []result {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() {
					req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/hang", nil)
					resp, err := c.hc.Do(req)
					if err == nil {
						resp.Body.Close()
					}
					done <- err
				}()
				// Cancel once the request is in (std keeps a connection whose dial outlived its
				// request, so an earlier cancel would test that instead).
				testutil.Eventually(t, 5*time.Second, u.strayIn.Load, "request never reached the upstream")
				cancel()
				return []result{{Err: <-done != nil}}
			},
			closed: 1,
			check:  wantAccepted(1),
		},
		{
			name: "response headers over the size limit: 502",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, _, ok := readReq(br); ok {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 1<<20+1<<10)+"\r\nContent-Length: 2\r\n\r\nok")
				}
			},
			steps: get("/big"),
			check: func(t *testing.T, o observed) {
				if o.results[0].Status != http.StatusBadGateway {
					t.Errorf("results %v, want 502", o.results)
				}
			},
		},
		{
			name: "bogus chunk size: the body fails and the connection is not reused",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				for n := 0; ; n++ {
					if _, _, ok := readReq(br); !ok {
						return
					}
					if i == 0 && n == 0 {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
						continue
					}
					io.WriteString(c, okResp(fmt.Sprintf("conn %d", i)))
				}
			},
			steps: seq(get("/bad"), get("/next")),
			check: both(wantAccepted(2), func(t *testing.T, o observed) {
				if !o.results[0].BodyErr && !o.results[0].Err || o.results[1].Body != "conn 1" {
					t.Errorf("results %v: want the first body to fail and the next request on a new connection", o.results)
				}
			}),
		},
		{
			name: "conflicting Content-Length: 502, then a fresh connection",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				for n := 0; ; n++ {
					if _, _, ok := readReq(br); !ok {
						return
					}
					if i == 0 && n == 0 {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
						continue
					}
					io.WriteString(c, okResp(fmt.Sprintf("conn %d", i)))
				}
			},
			steps: seq(get("/bad"), get("/next")),
			check: both(wantAccepted(2), func(t *testing.T, o observed) {
				if o.results[0].Status != http.StatusBadGateway || o.results[1].Body != "conn 1" {
					t.Errorf("results %v: want 502, then the next request on a new connection", o.results)
				}
			}),
		},
		{
			name: "duplicate equal Content-Length is accepted",
			upstream: serveEach(func(int, *http.Request, string) string {
				return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"
			}),
			steps: seq(get("/a"), get("/b")),
			check: both(wantAccepted(1), wantBodies("ok", "ok")),
		},
		{
			name: "body shorter than its Content-Length",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, _, ok := readReq(br); ok {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
				}
			},
			steps: get("/short"),
			check: func(t *testing.T, o observed) {
				if !o.results[0].BodyErr && !o.results[0].Err {
					t.Errorf("results %v: want the body to fail", o.results)
				}
			},
		},
		{
			name: "extra bytes after the body (same write) never answer the next request",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				for n := 0; ; n++ {
					if _, _, ok := readReq(br); !ok {
						return
					}
					if i == 0 {
						io.WriteString(c, okResp("first")+poison)
						continue
					}
					io.WriteString(c, okResp("fresh"))
				}
			},
			steps: seq(get("/a"), get("/b"), get("/c")),
			check: both(wantBodies("first", "fresh", "fresh")),
		},
		{
			name: "extra bytes after the body (separate write) never answer the next request",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				for n := 0; ; n++ {
					if _, _, ok := readReq(br); !ok {
						return
					}
					if i == 0 {
						io.WriteString(c, okResp("first"))
						io.WriteString(c, poison)
						testutil.Within(5*time.Second, func() bool { return sentAndAcked(c) })
						u.strayIn.Store(true)
						continue
					}
					io.WriteString(c, okResp("fresh"))
				}
			},
			steps: func(t *testing.T, c *client, u *upstreamScript) []result {
				out := []result{c.do(t, "GET", "/a", nil, nil)}
				// Once the stray bytes are in the proxy's receive buffer, they must never become the
				// next request's answer. (Bytes that arrive after the next request went out cannot
				// be told from its answer, by either transport.)
				testutil.Eventually(t, 5*time.Second, u.strayIn.Load, "stray bytes not delivered")
				return append(out, c.do(t, "GET", "/b", nil, nil))
			},
			check: func(t *testing.T, o observed) {
				if o.kind == "std" {
					return // std can take them as the answer when they arrive just after the next request went out
				}
				for _, r := range o.results {
					if strings.Contains(r.Body, "poison") {
						t.Errorf("results %v: stray bytes answered a request", o.results)
					}
				}
			},
			fastMay: func(std, fast observed) bool { return true }, // timing decides which connection answers
		},
		{
			name: "HEAD answered with a body: the body never answers the next request",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				for {
					r, _, ok := readReq(br)
					if !ok {
						return
					}
					if r.Method == "HEAD" {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison")
						continue
					}
					io.WriteString(c, okResp(fmt.Sprintf("fresh %d", i)))
				}
			},
			steps: seq(req("HEAD", "/h", nil, nil), get("/b")),
			check: both(wantAccepted(2), wantBodies("", "fresh 1")),
		},
		{
			name: "reused connection closed before answering: GET is retried on a fresh one",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, _, ok := readReq(br); !ok {
					return
				}
				io.WriteString(c, okResp(fmt.Sprintf("conn %d", i)))
				if i == 0 {
					readReq(br) // the second request, then close without an answer
					return
				}
				serveEach(func(i int, _ *http.Request, _ string) string { return okResp(fmt.Sprintf("conn %d", i)) })(i, c, br, u)
			},
			steps: seq(get("/a"), get("/b")),
			check: both(wantAccepted(2), wantBodies("conn 0", "conn 1")),
		},
		{
			name: "reused connection closed before answering: POST with a body is not retried",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, _, ok := readReq(br); !ok {
					return
				}
				io.WriteString(c, okResp(fmt.Sprintf("conn %d", i)))
				if i == 0 {
					readReq(br)
					return
				}
				serveEach(func(i int, _ *http.Request, _ string) string { return okResp(fmt.Sprintf("conn %d", i)) })(i, c, br, u)
			},
			steps: seq(get("/a"), req("POST", "/p", func() io.Reader { return strings.NewReader("once") }, nil), get("/c")),
			check: both(wantAccepted(2), func(t *testing.T, o observed) {
				if o.results[1].Status != http.StatusBadGateway || o.results[2].Body != "conn 1" {
					t.Errorf("results %v: want 502 for the POST, then a fresh connection", o.results)
				}
			}),
		},
		{
			name: "upstream closes an idle connection: the next request uses a new one",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, _, ok := readReq(br); ok {
					io.WriteString(c, okResp(fmt.Sprintf("conn %d", i)))
				}
			},
			steps: func(t *testing.T, c *client, u *upstreamScript) []result {
				out := c.do(t, "GET", "/a", nil, nil)
				return []result{out, c.do(t, "GET", "/b", nil, nil)}
			},
			check: both(wantAccepted(2), wantBodies("conn 0", "conn 1")),
		},
		{
			name: "101 to a request that asked for no upgrade: fast refuses (std may tunnel)",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, _, ok := readReq(br); ok {
					io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\n\r\nraw bytes")
					u.waitClose(br)
				}
			},
			steps: get("/a"),
			check: func(t *testing.T, o observed) {
				if strings.Contains(o.results[0].Body, "raw bytes") && o.results[0].Status != http.StatusSwitchingProtocols {
					t.Errorf("results %v: raw bytes after a 101 answered as HTTP", o.results)
				}
			},
			fastMay: func(std, fast observed) bool { return fast.results[0].Status == http.StatusBadGateway },
		},
		{
			name: "a requested upgrade is relayed (through the fallback)",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				r, _, ok := readReq(br)
				if !ok || r.Header.Get("Upgrade") != "echo" {
					return
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
				line, _ := br.ReadString('\n')
				io.WriteString(c, "echo: "+line)
			},
			steps: func(t *testing.T, c *client, u *upstreamScript) []result {
				req, _ := http.NewRequest("GET", c.base+"/ws", nil)
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "echo")
				resp, err := c.hc.Do(req)
				if err != nil {
					return []result{{Err: true}}
				}
				defer resp.Body.Close()
				rw, ok := resp.Body.(io.ReadWriteCloser)
				if resp.StatusCode != 101 || !ok {
					return []result{{Status: resp.StatusCode}}
				}
				io.WriteString(rw, "ping\n")
				line, _ := bufio.NewReader(rw).ReadString('\n')
				return []result{{Status: resp.StatusCode, Body: line}}
			},
			check: wantBodies("echo: ping\n"),
		},
		{
			name: "early 413 while a large body is still being sent does not deadlock",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbig")
				u.waitClose(br)
			},
			steps: func(t *testing.T, c *client, u *upstreamScript) []result {
				req, _ := http.NewRequest("POST", c.base+"/upload", io.LimitReader(zeros{}, 64<<20))
				req.ContentLength = 64 << 20
				resp, err := c.hc.Do(req)
				if err != nil {
					// The client may see its own write fail first; what matters is that it ends.
					return []result{{Err: true}}
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return []result{{Status: resp.StatusCode, Body: string(b)}}
			},
			closed:  1,
			fastMay: func(std, fast observed) bool { return true }, // client-side timing (see the transport-level test)
		},
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestDifferential(t *testing.T) {
	for _, tc := range diffCases() {
		t.Run(tc.name, func(t *testing.T) {
			obs := map[string]observed{}
			for _, k := range kinds {
				u := startUpstream(t, tc.upstream)
				px := startProxy(t, u.url(), k.make())
				c := newClient(px.URL)
				o := observed{kind: k.name, results: tc.steps(t, c, u)}
				c.hc.CloseIdleConnections()
				if tc.closed > 0 {
					testutil.Eventually(t, 5*time.Second, func() bool { return u.closedByPeer.Load() >= tc.closed },
						"%s: the upstream saw %d connections closed, want %d", k.name, u.closedByPeer.Load(), tc.closed)
				}
				o.accepted, o.closed = u.accepted.Load(), u.closedByPeer.Load()
				obs[k.name] = o
				if tc.check != nil {
					t.Run(k.name, func(t *testing.T) { tc.check(t, o) })
				}
			}
			std, fast := obs["std"], obs["fast"]
			same := fmt.Sprint(normalize(std.results)) == fmt.Sprint(normalize(fast.results)) && std.accepted == fast.accepted
			if !same && (tc.fastMay == nil || !tc.fastMay(std, fast)) {
				t.Errorf("std and fast differ:\n std: %v accepted %d\nfast: %v accepted %d", std.results, std.accepted, fast.results, fast.accepted)
			}
		})
	}
}

// normalize drops timing from results. It treats a response aborted in its body like one aborted
// before its headers: which of the two a client sees depends on whether ReverseProxy's header
// flush won the race with the abort, for either transport.
func normalize(rs []result) []result {
	out := make([]result, len(rs))
	for i, r := range rs {
		if r.BodyErr {
			r = result{Err: true, Info: r.Info}
		}
		// A 100 Continue may also come from the proxy's own server when the body is first read,
		// depending on whether the response headers were written by then.
		r.Info = strings.ReplaceAll(r.Info, "100:;", "")
		out[i] = r
	}
	return out
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
