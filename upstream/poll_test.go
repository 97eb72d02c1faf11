package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil"
)

// A bodiless round trip watches its context by polling until cancelPoll, then with
// context.AfterFunc (conn.stop). These tests hold both phases to the properties the AfterFunc
// alone gave: cancellation closes the connection, the header timeout is neither shortened nor
// lost, and a slow but healthy answer is read whole and its connection reused.

// slowUpstream answers each request with head after release is closed for it (per request: the
// script takes the next channel from gates), and the body after bodyGate, if any.
func slowUpstream(t *testing.T, gates chan chan struct{}, head, body string, bodyGate chan struct{}) *upstreamScript {
	t.Helper()
	return startUpstream(t, func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
		for {
			if _, _, ok := readReq(br); !ok {
				u.closedByPeer.Add(1)
				return
			}
			u.strayIn.Store(true)
			// next reports the peer's next move: another request's first byte, or its close.
			next := make(chan error, 1)
			go func() { _, err := br.Peek(1); next <- err }()
			wait := func(g chan struct{}) bool {
				select {
				case <-g:
					return true
				case err := <-next:
					if err != nil {
						u.closedByPeer.Add(1)
					}
					return false
				case <-u.stop:
					return false
				}
			}
			var g chan struct{}
			select {
			case g = <-gates:
			case <-u.stop:
				return
			}
			if !wait(g) {
				return
			}
			io.WriteString(c, head)
			if bodyGate != nil && !wait(bodyGate) {
				return
			}
			io.WriteString(c, body)
			if err := <-next; err != nil {
				u.closedByPeer.Add(1)
				return
			}
		}
	})
}

func TestPolledRoundTrip(t *testing.T) {
	const head, body = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", "slow"
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		waits   []time.Duration // how long the upstream holds each answer's head back
	}{
		{"answer within the poll", 0, []time.Duration{0, 0}},
		{"answer after the poll", 0, []time.Duration{3 * cancelPoll, 3 * cancelPoll}},
		// The second request keeps the first one's poll deadline (pollAt), which then passes.
		{"answer after a kept poll deadline", 0, []time.Duration{0, 3 * cancelPoll}},
		{"answer after the poll, header timeout longer", 10 * time.Second, []time.Duration{3 * cancelPoll, 0, 3 * cancelPoll}},
		{"answer within a header timeout shorter than the poll", cancelPoll / 2 * 3, []time.Duration{cancelPoll / 2, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gates := make(chan chan struct{}, len(tc.waits))
			u := slowUpstream(t, gates, head, body, nil)
			tr := New(Options{ResponseHeaderTimeout: tc.timeout})
			defer tr.CloseIdleConnections()
			for _, wait := range tc.waits {
				g := make(chan struct{})
				gates <- g
				go func() { testutil.Pause(wait); close(g) }()
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+"/s", nil)
				_, got, err := roundTrip(t, tr, req)
				cancel()
				if err != nil || got != body {
					t.Fatalf("got %q %v", got, err)
				}
			}
			if n := u.accepted.Load(); n != 1 {
				t.Fatalf("%d connections, want 1 (reused after a slow answer)", n)
			}
		})
	}
}

func TestPolledBodyAfterThePoll(t *testing.T) {
	gates := make(chan chan struct{}, 1)
	bodyGate := make(chan struct{})
	u := slowUpstream(t, gates, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", "late", bodyGate)
	tr := New(Options{ResponseHeaderTimeout: cancelPoll / 2})
	defer tr.CloseIdleConnections()
	g := make(chan struct{})
	close(g)
	gates <- g
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+"/b", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	// The body comes well after both the poll and the header deadline: neither applies to it.
	go func() { testutil.Pause(3 * cancelPoll); close(bodyGate) }()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "late" {
		t.Fatalf("body %q %v", b, err)
	}
	if tr.IdleConns() != 1 {
		t.Fatalf("%d idle connections, want the one reused", tr.IdleConns())
	}
}

func TestPolledHeaderTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{cancelPoll / 2, 3 * cancelPoll} {
		t.Run(timeout.String(), func(t *testing.T) {
			gates := make(chan chan struct{}, 1)
			u := slowUpstream(t, gates, "", "", nil)
			gates <- make(chan struct{}) // never released
			tr := New(Options{ResponseHeaderTimeout: timeout})
			defer tr.CloseIdleConnections()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+"/t", nil)
			start := time.Now()
			_, err := tr.RoundTrip(req)
			if took := time.Since(start); !errors.Is(err, ErrHeaderTimeout) || took < timeout || took > timeout+5*time.Second {
				t.Fatalf("err %v after %v, want the header timeout after %v", err, took, timeout)
			}
			testutil.Eventually(t, 5*time.Second, func() bool { return u.closedByPeer.Load() == 1 }, "connection not closed")
		})
	}
}

func TestPolledCancel(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration // cancel this long after the request reached the upstream
	}{
		{"while polling", 0},
		{"once watched", 3 * cancelPoll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gates := make(chan chan struct{}, 1)
			u := slowUpstream(t, gates, "", "", nil)
			gates <- make(chan struct{})
			tr := New(Options{ResponseHeaderTimeout: time.Minute})
			defer tr.CloseIdleConnections()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				testutil.Eventually(t, 5*time.Second, u.strayIn.Load, "request never reached the upstream")
				testutil.Pause(tc.after)
				cancel()
			}()
			req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+"/c", nil)
			if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want context.Canceled", err)
			}
			testutil.Eventually(t, 5*time.Second, func() bool { return u.closedByPeer.Load() == 1 }, "connection not closed on cancel")
			if tr.IdleConns() != 0 {
				t.Fatal("a canceled connection went back to the pool")
			}
		})
	}
}

// A head too large to be sure of the socket buffer is watched with AfterFunc from the start; it
// must still go out and be answered.
func TestLargeHeadWatchedFromTheStart(t *testing.T) {
	u := startUpstream(t, serveEach(func(_ int, r *http.Request, _ string) string { return okResp(r.Header.Get("X-Big")[:3]) }))
	tr := New(Options{})
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+"/l", nil)
	req.Header.Set("X-Big", strings.Repeat("b", maxPolledHead))
	if _, got, err := roundTrip(t, tr, req); err != nil || got != "bbb" {
		t.Fatalf("got %q %v", got, err)
	}
}

// A round trip that does not poll (its context cannot end) on a connection a polling one left its
// deadline on must not be cut short by that deadline.
func TestUnpolledAfterPolled(t *testing.T) {
	gates := make(chan chan struct{}, 2)
	u := slowUpstream(t, gates, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "ok", nil)
	tr := New(Options{})
	defer tr.CloseIdleConnections()
	for i, ctx := range []context.Context{t.Context(), context.Background()} {
		g := make(chan struct{})
		gates <- g
		wait := time.Duration(0)
		if i == 1 {
			wait = 3 * cancelPoll
		}
		go func() { testutil.Pause(wait); close(g) }()
		req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+"/u", nil)
		if _, got, err := roundTrip(t, tr, req); err != nil || got != "ok" {
			t.Fatalf("request %d: %q %v", i, got, err)
		}
	}
	if n := u.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}
