package upstream

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil"
)

// A bodiless request's head goes out inside the wait for its answer (sendAndWait). These tests
// hold that path to what a plain Write and Read gave.

// A head larger than the socket buffers cannot go out in one non-blocking write: the rest is
// written the usual way, and the answer is read whole, on a connection that is then reused.
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
	smallBuf := func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
		}); cerr != nil {
			return cerr
		}
		return err
	}
	d := &net.Dialer{Control: smallBuf}
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
