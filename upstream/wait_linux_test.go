package upstream

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil"
	"golang.org/x/sys/unix"
)

// tcpState is the kernel's TCP state of c (unix.BPF_TCP_*), -1 if it cannot be read.
func tcpState(c net.Conn) int {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return -1
	}
	st := -1
	_ = rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			st = int(info.State)
		}
	})
	return st
}

// A reused connection the upstream ended after get's peek and before the round trip's read reset
// the poller's readiness (a window get cannot close): the readiness the close raised is gone, and
// the head goes out inside the wait. The round trip must still end at once (the upstream's answer
// to the head, a reset, wakes it) with the error and the retry decision a plain Write and Read
// gave: nothing read, so a retry on a fresh connection (nothing written, or an idempotent request).
func TestSendAndWaitUpstreamClosedBeforeTheWrite(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close func(c net.Conn, br *bufio.Reader)
		state int // the client side's TCP state once the close is in
	}{
		{"reset", func(c net.Conn, _ *bufio.Reader) { c.(*net.TCPConn).SetLinger(0) }, unix.BPF_TCP_CLOSE},
		{"close", func(net.Conn, *bufio.Reader) {}, unix.BPF_TCP_CLOSE_WAIT},
		// Half-closed: the upstream reads the request and then closes without a reset (nothing left
		// unread), so nothing wakes the wait but its poll deadline.
		{"half close, then read", func(c net.Conn, br *bufio.Reader) {
			c.(*net.TCPConn).CloseWrite()
			readReq(br)
		}, unix.BPF_TCP_CLOSE_WAIT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hangup := make(chan struct{})
			u := startUpstream(t, func(i int, c net.Conn, br *bufio.Reader, u *upstreamScript) {
				if _, _, ok := readReq(br); !ok {
					return
				}
				c.Write([]byte(okResp("first")))
				select {
				case <-hangup:
				case <-u.stop:
					return
				}
				tc.close(c, br)
			})
			tr := New(Options{ResponseHeaderTimeout: 10 * time.Second})
			defer tr.CloseIdleConnections()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", u.url().String()+"/r", nil)
			if _, got, err := roundTrip(t, tr, req); err != nil || got != "first" {
				t.Fatalf("first round trip: %q %v", got, err)
			}
			// The idle connection, taken as get takes it but without its peek.
			p := tr.pool(req.URL.Host)
			tr.mu.Lock()
			if len(p.idle) != 1 {
				tr.mu.Unlock()
				t.Fatalf("%d idle connections, want 1", len(p.idle))
			}
			c := p.idle[0]
			p.idle = p.idle[:0]
			tr.mu.Unlock()
			close(hangup)
			testutil.Eventually(t, 5*time.Second, func() bool { return tcpState(c.nc) == tc.state },
				"the upstream's close never reached the client (state %d)", tcpState(c.nc))
			testutil.Pause(20 * time.Millisecond) // an idle P polls the network: the readiness is seen
			head := &headBuf{}
			var err error
			if head.b, head.fl, err = appendHead(nil, req); err != nil {
				t.Fatal(err)
			}
			c.start = time.Now()
			resp, rerr := c.roundTrip(ctx, req, head, nil)
			took := time.Since(c.start)
			if rerr == nil {
				resp.Body.Close()
				t.Fatalf("got %d from a closed connection", resp.StatusCode)
			}
			if errors.Is(rerr.err, ErrHeaderTimeout) || !rerr.retry || c.nread != 0 {
				t.Fatalf("got %v, retry %v, %d bytes read (%v): want a retryable error, nothing read", rerr.err, rerr.retry, c.nread, took)
			}
			t.Logf("%v after %v (%d bytes written)", rerr.err, took, c.nwrite)
		})
	}
}
