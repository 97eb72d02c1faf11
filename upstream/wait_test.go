//go:build unix

package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil"
)

// A bodiless request's head goes out inside the wait for its answer (sendAndWait). These tests
// hold that path to what a plain Write and Read gave.

// A head larger than the socket buffers cannot go out in one non-blocking write (it is over
// maxPolledHead: written by a plain Write, see TestSendAndWaitFullSocket for sendAndWait's part):
// the answer is read whole, on a connection that is then reused.
func TestSendAndWaitPartialHead(t *testing.T) {
	const big = 1 << 20
	u := startUpstream(t, func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
		testutil.Pause(100 * time.Millisecond) // let the proxy's side fill its buffers first
		for {
			r, _, ok := readReq(br)
			if !ok {
				return
			}
			if _, err := c.Write([]byte(okResp(r.Header.Get("X-Big")[big-3:] + r.URL.Path))); err != nil {
				return
			}
		}
	})
	d := &net.Dialer{Control: smallSndBuf}
	for _, timeout := range []time.Duration{10 * time.Second, 0} {
		tr := New(Options{ResponseHeaderTimeout: timeout, DialContext: d.DialContext})
		for i, path := range []string{"/one", "/two"} {
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+path, nil)
			req.Header.Set("X-Big", strings.Repeat("b", big-3)+"end")
			_, got, err := roundTrip(t, tr, req)
			cancel()
			if want := "end" + path; err != nil || got != want {
				t.Fatalf("timeout %v, request %d: got %q %v, want %q", timeout, i, got, err, want)
			}
		}
		tr.CloseIdleConnections()
	}
	if n := u.accepted.Load(); n != 2 {
		t.Fatalf("%d connections for two transports, want 2 (each reused)", n)
	}
}

// Bytes an upstream sends before it was asked anything, on a fresh connection, arrive before the
// wait begins and wake nobody: the wait ends at the poll deadline, and they are read then, as a
// plain Read would have read them at once (the diff suite checks what becomes of them). The
// round trip must end, within the header timeout, not hang.
func TestSendAndWaitUnaskedBytesBeforeTheWait(t *testing.T) {
	u := startUpstream(t, func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
		c.Write([]byte(okResp("early")))
		readReq(br)
		<-u.stop
	})
	tr := New(Options{ResponseHeaderTimeout: 5 * time.Second})
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+"/e", nil)
	// Hanging until the header timeout would fail with ErrHeaderTimeout.
	_, got, err := roundTrip(t, tr, req)
	if err != nil || got != "early" {
		t.Fatalf("got %q %v, want the early bytes read as a plain Read reads them", got, err)
	}
}

// smallSndBuf is a dialer Control that shrinks the socket's send buffer, so a large head cannot go
// out in one non-blocking write.
func smallSndBuf(_, _ string, rc syscall.RawConn) error {
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
	}); cerr != nil {
		return cerr
	}
	return err
}

// ResponseHeaderTimeout bounds the wait for the answer once the request is written: a head that
// takes longer than the timeout to go out (an upstream slow to read it) must not have used it up.
// Such heads are over maxPolledHead, or sent under a context that never ends: no poll, the header
// deadline alone bounds the wait.
func TestSendAndWaitHeaderTimeoutAfterTheWrite(t *testing.T) {
	const big, timeout = 1 << 20, 300 * time.Millisecond
	u := startUpstream(t, func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
		testutil.Pause(3 * timeout) // the head cannot go out before this
		for {
			r, _, ok := readReq(br)
			if !ok {
				return
			}
			if _, err := c.Write([]byte(okResp(r.URL.Path))); err != nil {
				return
			}
		}
	})
	d := &net.Dialer{Control: smallSndBuf}
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"context with Done", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{"context without Done", func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(Options{ResponseHeaderTimeout: timeout, DialContext: d.DialContext})
			defer tr.CloseIdleConnections()
			ctx, cancel := tc.ctx()
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+"/slow-read", nil)
			req.Header.Set("X-Big", strings.Repeat("b", big))
			_, got, err := roundTrip(t, tr, req)
			if err != nil || got != "/slow-read" {
				t.Fatalf("got %q %v, want the answer (sent at once once the head is read)", got, err)
			}
		})
	}
}

// Bytes an upstream sends unasked, before the wait begins, when the wait is bounded by the header
// deadline rather than the poll deadline (a header timeout shorter than cancelPoll, or a context
// that never ends): a plain Read reads them at once; they must be read, not turned into
// ErrHeaderTimeout at the deadline.
func TestSendAndWaitUnaskedBytesHeaderDeadline(t *testing.T) {
	u := startUpstream(t, func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
		c.Write([]byte(okResp("early")))
		readReq(br)
		<-u.stop
	})
	// The dial returns once the unasked bytes are there and the poller has had time to see them:
	// their readiness is then consumed before the round trip's read resets it.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		rc, err := nc.(syscall.Conn).SyscallConn()
		if err != nil {
			return nil, err
		}
		testutil.Eventually(t, 5*time.Second, func() bool {
			n := 0
			rc.Control(func(fd uintptr) {
				var b [1]byte
				n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			})
			return n > 0
		}, "the unasked bytes never arrived")
		testutil.Pause(20 * time.Millisecond) // an idle P polls the network meanwhile
		return nc, nil
	}
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		ctx     func() (context.Context, context.CancelFunc)
	}{
		{"header timeout shorter than the poll", cancelPoll / 2, func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}},
		{"context without Done", time.Second, func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(Options{ResponseHeaderTimeout: tc.timeout, DialContext: dial})
			defer tr.CloseIdleConnections()
			ctx, cancel := tc.ctx()
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+"/e", nil)
			_, got, err := roundTrip(t, tr, req)
			if err != nil || got != "early" {
				t.Fatalf("got %q %v, want the early bytes read as a plain Read reads them", got, err)
			}
		})
	}
}

// A head over maxPolledHead is watched with context.AfterFunc from the start: a cancellation while
// the round trip waits for the answer closes the connection under the wait, which must end with
// the context's cause.
func TestSendAndWaitCancelLargeHead(t *testing.T) {
	gates := make(chan chan struct{}, 1)
	u := slowUpstream(t, gates, "", "", nil)
	gates <- make(chan struct{}) // never released
	tr := New(Options{ResponseHeaderTimeout: time.Minute})
	defer tr.CloseIdleConnections()
	cause := errors.New("client went away")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		testutil.Eventually(t, 5*time.Second, u.strayIn.Load, "request never reached the upstream")
		cancel(cause)
	}()
	req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+"/c", nil)
	req.Header.Set("X-Big", strings.Repeat("b", maxPolledHead+1))
	if _, err := tr.RoundTrip(req); !errors.Is(err, cause) {
		t.Fatalf("err %v, want the cause", err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return u.closedByPeer.Load() == 1 }, "connection not closed on cancel")
}

// Cancellations racing the write and the wait, on reused connections: each round trip ends with
// the answer or the context's error, never another error or a hang, and never an answer that was
// another request's (each answer names its request).
func TestSendAndWaitCancelRace(t *testing.T) {
	u := startUpstream(t, serveEach(func(_ int, r *http.Request, _ string) string { return okResp(r.URL.Path) }))
	tr := New(Options{ResponseHeaderTimeout: 10 * time.Second})
	defer tr.CloseIdleConnections()
	for _, size := range []int{0, maxPolledHead + 1} {
		for i := range 100 {
			ctx, cancel := context.WithCancel(context.Background())
			path := fmt.Sprintf("/%d/%d", size, i)
			req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+path, nil)
			if size > 0 {
				req.Header.Set("X-Big", strings.Repeat("b", size))
			}
			go func() {
				for range i % 7 {
					runtime.Gosched()
				}
				cancel()
			}()
			done := make(chan struct{})
			var got string
			var err error
			go func() { _, got, err = roundTrip(t, tr, req); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: round trip still waiting 5 s after its cancellation", path)
			}
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) || err == nil && got != path {
				t.Fatalf("%s: got %q %v", path, got, err)
			}
		}
	}
}

// A head the socket cannot take whole (its send queue is full: the upstream reads nothing) is not
// waited on: sendAndWait returns at once with what went out, and the caller's Write does the rest.
func TestSendAndWaitFullSocket(t *testing.T) {
	release := make(chan struct{})
	u := startUpstream(t, func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
		select {
		case <-release:
		case <-u.stop:
		}
		io.Copy(io.Discard, br)
	})
	tr := New(Options{})
	c, err := tr.get(context.Background(), tr.pool(u.url().Host), true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	// Fill the upstream's receive buffer and the send queue, until a write would block.
	fill := make([]byte, 64<<10)
	var ferr error
	c.rc.Control(func(fd uintptr) {
		for {
			if _, ferr = syscall.Write(int(fd), fill); ferr != nil {
				return
			}
		}
	})
	if ferr != syscall.EAGAIN {
		t.Fatalf("filling the socket: %v, want EAGAIN", ferr)
	}
	c.nc.SetReadDeadline(time.Now().Add(time.Minute)) // a wait would last this long
	head := []byte("GET /full HTTP/1.1\r\nHost: x\r\n\r\n")
	done := make(chan int, 1)
	go func() { done <- c.sendAndWait(head) }()
	select {
	case n := <-done:
		if n >= len(head) {
			t.Fatalf("%d bytes of %d sent into a full socket", n, len(head))
		}
	case <-time.After(10 * time.Second):
		close(release) // the head goes out and nothing answers: the wait lasts its deadline
		t.Fatal("sendAndWait waited although the head did not go out whole")
	}
	close(release)
}
