package keys

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/redistest"
)

// blackHole accepts connections on loopback and never answers: a Redis that hangs (a frozen
// process, a stalled network path) rather than refusing. It returns its address.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestRedisClientHonoursContextDeadline: a command against a Redis that does not answer returns
// when its context's deadline passes, in every URL mode — not after go-redis's own read timeout
// (seconds). The readiness checker bounds each probe to 500 ms and a key lookup to 2 s with a
// context (docs/deploy.md); without this they waited for the read timeout instead.
func TestRedisClientHonoursContextDeadline(t *testing.T) {
	redistest.LogTo(t)
	addr := blackHole(t)
	for _, tc := range []struct{ name, url string }{
		{"standalone", "redis://" + addr},
		{"sentinel", "redis+sentinel://" + addr + "?master_name=mymaster"},
		{"cluster", "redis+cluster://" + addr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewRedisClient(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			const deadline = 200 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err = c.Ping(ctx).Err()
			took := time.Since(start)
			c.Close()
			if err == nil {
				t.Fatal("PING to a server that never answers succeeded")
			}
			// Generous against a loaded machine, far below go-redis's 3 s read timeout.
			if took > deadline+1500*time.Millisecond {
				t.Errorf("PING returned after %v, want about the context's %v (err %v)", took, deadline, err)
			}
		})
	}
}
