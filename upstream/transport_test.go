package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil"
)

// Transport-level cases: the caller of RoundTrip is the client here, for what ReverseProxy hides
// (request trailers, req.Close, a body-read error) or what needs the transport's own view (its
// idle pool).

// closeRecorder is a request body that records being closed.
type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func roundTrip(t *testing.T, tr http.RoundTripper, req *http.Request) (*http.Response, string, error) {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestTransportLevel(t *testing.T) {
	cases := []struct {
		name     string
		upstream script
		run      func(t *testing.T, tr http.RoundTripper, u *upstreamScript)
	}{
		{
			name: "early answer while the upstream never reads the body nor closes",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 3\r\n\r\nbig")
				// Neither read nor close: only the proxy side can end this.
				<-u.stop
			},
			run: func(t *testing.T, tr http.RoundTripper, u *upstreamScript) {
				body := &closeRecorder{Reader: io.LimitReader(zeros{}, 64<<20)}
				req, _ := http.NewRequest("POST", u.url().String()+"/upload", body)
				req.ContentLength = 64 << 20
				done := make(chan struct{})
				var resp *http.Response
				var got string
				var err error
				go func() { resp, got, err = roundTrip(t, tr, req); close(done) }()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("round trip did not end: deadlock on an early answer")
				}
				if err != nil || resp.StatusCode != 413 || got != "big" {
					t.Fatalf("got %v %q %v, want 413 big", resp, got, err)
				}
				testutil.Eventually(t, 5*time.Second, body.closed.Load, "the request body was never closed")
			},
		},
		{
			name: "a request body read error is the round trip's error",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, _, ok := readReq(br); ok {
					io.WriteString(c, okResp("read it all"))
				}
			},
			run: func(t *testing.T, tr http.RoundTripper, u *upstreamScript) {
				body := http.MaxBytesReader(nil, io.NopCloser(io.LimitReader(zeros{}, 1<<20)), 1000)
				req, _ := http.NewRequest("POST", u.url().String()+"/upload", body)
				req.ContentLength = 1 << 20
				_, _, err := roundTrip(t, tr, req)
				var mbe *http.MaxBytesError
				if !errors.As(err, &mbe) {
					t.Fatalf("err %v, want a *http.MaxBytesError", err)
				}
			},
		},
		{
			name: "request trailers and a chunked body go out",
			upstream: serveEach(func(_ int, r *http.Request, body string) string {
				return okResp(body + " trailer=" + r.Trailer.Get("X-Req-Sum"))
			}),
			run: func(t *testing.T, tr http.RoundTripper, u *upstreamScript) {
				req, _ := http.NewRequest("POST", u.url().String()+"/t", io.NopCloser(strings.NewReader("chunks")))
				req.ContentLength = -1
				req.Trailer = http.Header{"X-Req-Sum": {"7"}}
				_, got, err := roundTrip(t, tr, req)
				if err != nil || got != "chunks trailer=7" {
					t.Fatalf("got %q %v", got, err)
				}
			},
		},
		{
			name:     "req.Close sends Connection: close and does not keep the connection",
			upstream: serveEach(func(_ int, r *http.Request, _ string) string { return okResp("close=" + r.Header.Get("Connection")) }),
			run: func(t *testing.T, tr http.RoundTripper, u *upstreamScript) {
				req, _ := http.NewRequest("GET", u.url().String()+"/c", nil)
				req.Close = true
				if _, got, err := roundTrip(t, tr, req); err != nil || got != "close=close" {
					t.Fatalf("got %q %v", got, err)
				}
				testutil.Eventually(t, 5*time.Second, func() bool { return u.closedByPeer.Load() == 1 }, "connection not closed")
			},
		},
		{
			name:     "invalid header values are refused before anything is sent",
			upstream: serveEach(func(int, *http.Request, string) string { return okResp("sent") }),
			run: func(t *testing.T, tr http.RoundTripper, u *upstreamScript) {
				req, _ := http.NewRequest("GET", u.url().String()+"/c", nil)
				req.Header["X-Bad"] = []string{"a\r\nInjected: yes"}
				if _, _, err := roundTrip(t, tr, req); err == nil {
					t.Fatal("invalid header value was sent")
				}
				if n := u.accepted.Load(); n != 0 {
					t.Fatalf("%d connections opened for a refused request", n)
				}
			},
		},
		{
			name: "the idle pool is bounded",
			upstream: func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				serveEach(func(int, *http.Request, string) string { return okResp("ok") })(i, c, br, u)
			},
			run: func(t *testing.T, tr http.RoundTripper, u *upstreamScript) {
				// Hold 6 requests at once: each needs its own connection; 2 may stay idle.
				var wg sync.WaitGroup
				release := make(chan struct{})
				var started atomic.Int32
				for range 6 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						req, _ := http.NewRequest("POST", u.url().String()+"/p", &gate{started: &started, release: release})
						req.ContentLength = 1
						resp, err := tr.RoundTrip(req)
						if err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					}()
				}
				testutil.Eventually(t, 5*time.Second, func() bool { return started.Load() == 6 }, "requests did not start")
				close(release)
				wg.Wait()
				testutil.Eventually(t, 5*time.Second, func() bool { return u.closedByPeer.Load() == 4 }, "closed %d connections, want 4", u.closedByPeer.Load())
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range kinds {
				t.Run(k.name, func(t *testing.T) {
					u := startUpstream(t, tc.upstream)
					tr := k.make()
					if s, ok := tr.(*http.Transport); ok {
						s.MaxIdleConnsPerHost = 2
					} else {
						tr.(*Transport).opt.MaxIdlePerHost = 2
					}
					t.Cleanup(tr.(interface{ CloseIdleConnections() }).CloseIdleConnections)
					tc.run(t, tr, u)
				})
			}
		})
	}
}

// gate is a one-byte request body that blocks until release.
type gate struct {
	started *atomic.Int32
	release chan struct{}
	done    bool
}

func (g *gate) Read(p []byte) (int, error) {
	if g.done {
		return 0, io.EOF
	}
	g.started.Add(1)
	<-g.release
	g.done = true
	p[0] = 'x'
	return 1, io.EOF
}

func TestIdleTimeoutClosesConnections(t *testing.T) {
	u := startUpstream(t, serveEach(func(int, *http.Request, string) string { return okResp("ok") }))
	tr := New(Options{IdleTimeout: 50 * time.Millisecond})
	req, _ := http.NewRequest("GET", u.url().String()+"/a", nil)
	if _, got, err := roundTrip(t, tr, req); err != nil || got != "ok" {
		t.Fatalf("got %q %v", got, err)
	}
	if tr.IdleConns() != 1 {
		t.Fatalf("idle %d after a keep-alive response, want 1", tr.IdleConns())
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return u.closedByPeer.Load() == 1 && tr.IdleConns() == 0 },
		"idle connection not closed after the idle timeout")
}

func TestContextCancelDuringBodyClosesConnection(t *testing.T) {
	u := startUpstream(t, func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
		if _, _, ok := readReq(br); ok {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part")
			u.waitClose(br)
		}
	})
	tr := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+"/a", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := resp.Body.Read(buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}
	resp.Body.Close()
	testutil.Eventually(t, 5*time.Second, func() bool { return u.closedByPeer.Load() == 1 }, "connection not closed on cancel")
	if tr.IdleConns() != 0 {
		t.Fatal("a canceled connection went back to the pool")
	}
}

// fallbackRecorder is a RoundTripper that records that it was used.
type fallbackRecorder struct{ n atomic.Int32 }

func (f *fallbackRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	f.n.Add(1)
	return &http.Response{StatusCode: 299, Body: http.NoBody, Request: r}, nil
}

func TestFallbackTakesHTTPSAndUpgrades(t *testing.T) {
	fb := &fallbackRecorder{}
	tr := New(Options{Fallback: fb})
	for _, tc := range []struct {
		url string
		hdr http.Header
	}{
		{"https://example.invalid/x", nil},
		{"http://127.0.0.1:1/ws", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}},
	} {
		req, _ := http.NewRequest("GET", tc.url, nil)
		for k, v := range tc.hdr {
			req.Header[k] = v
		}
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != 299 {
			t.Fatalf("%s: %v %v, want the fallback's answer", tc.url, resp, err)
		}
	}
	if fb.n.Load() != 2 {
		t.Fatalf("fallback used %d times, want 2", fb.n.Load())
	}
	if _, err := New(Options{}).RoundTrip(httptestReq("https://example.invalid/")); err == nil {
		t.Fatal("https without a fallback succeeded")
	}
}

func httptestReq(u string) *http.Request {
	req, _ := http.NewRequest("GET", u, nil)
	return req
}

func TestDialErrors(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	tr := New(Options{})
	if _, err := tr.RoundTrip(httptestReq("http://" + addr + "/")); err == nil || !strings.Contains(err.Error(), "dial") {
		t.Fatalf("dial to a closed port: %v", err)
	}
	slow := New(Options{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	if _, err := slow.RoundTrip(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial past the deadline: %v", err)
	}
}

// A header deadline left set on an idle connection (cleared lazily) must not fail the next request,
// before it or past it: the idle check peeks without regard to deadlines, and each request sets
// its own (or, with a body, clears the old one).
func TestHeaderDeadlineLeftOnIdleConnection(t *testing.T) {
	u := startUpstream(t, serveEach(func(i int, r *http.Request, body string) string { return okResp(r.Method + body) }))
	tr := New(Options{ResponseHeaderTimeout: 100 * time.Millisecond})
	defer tr.CloseIdleConnections()
	get := func() string {
		t.Helper()
		_, got, err := roundTrip(t, tr, httptestReq(u.url().String()+"/a"))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	get()
	start := time.Now()
	testutil.Eventually(t, 5*time.Second, func() bool { return time.Since(start) > 150*time.Millisecond }, "clock")
	if got := get(); got != "GET" {
		t.Fatalf("after the old deadline: %q", got)
	}
	req, _ := http.NewRequest("POST", u.url().String()+"/p", strings.NewReader("x"))
	if _, got, err := roundTrip(t, tr, req); err != nil || got != "POSTx" {
		t.Fatalf("POST on a connection with a GET's deadline: %q %v", got, err)
	}
	if n := u.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 (reused past the old deadline)", n)
	}
}
