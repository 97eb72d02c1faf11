// Package redistest starts a real redis-server for tests, on a free loopback port, and can stop and
// restart it on the same port so tests can exercise Redis outages. Tests never mock Redis.
package redistest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil"
)

// Server is one redis-server process owned by a test.
type Server struct {
	t    testing.TB
	Port int
	dir  string

	mu   sync.Mutex
	proc *process
}

// process is one run of redis-server; exited is closed once it has been waited for.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // from Wait, readable after exited is closed
}

// Start launches redis-server on a free loopback port and stops it when the test ends. A missing
// redis-server fails the test: `make test` installs it, so its absence is a broken setup, not a skip.
// The test's go-redis log lines go to its own log (LogTo).
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found in PATH (make test installs it): %v", err)
	}
	s := &Server{t: t, dir: t.TempDir()}
	// Stop is registered after TempDir, so it runs first: the process is gone (waited for) before its
	// directory is removed.
	t.Cleanup(s.stop)
	var err error
	// A free port can be taken by another process between FreePort and redis-server's bind: try
	// another port then, a few times.
	for range 3 {
		s.Port = FreePort(t)
		if err = s.startProcess(); err == nil {
			LogTo(t)
			return s
		}
	}
	t.Fatal(err)
	return nil
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL is the redis:// URL keygate takes in KEYGATE_REDIS_URL.
func (s *Server) URL() string { return "redis://" + s.Addr() }

func (s *Server) startProcess() error {
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"), "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = nil, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	gone := false
	up := testutil.Within(10*time.Second, func() bool {
		select {
		case <-p.exited:
			gone = true
			return true
		default:
		}
		return s.ping()
	})
	switch {
	case gone:
		s.stopProcess()
		log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
		return fmt.Errorf("redis-server on %s exited (%v): %s", s.Addr(), p.err, log)
	case !up:
		s.stopProcess()
		return fmt.Errorf("redis-server on %s did not answer PING within 10s", s.Addr())
	}
	return nil
}

// ping reports whether the server answers PING: a listening socket is not enough.
func (s *Server) ping() bool {
	c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := io.ReadAtLeast(c, buf, 5)
	return n >= 5 && string(buf[:5]) == "+PONG"
}

// Stop kills the server (data is not persisted) and waits until the process has exited. Safe to call
// twice. A test that stops Redis expects the connection errors that follow, so go-redis's lines stop
// showing in its log (they are counted).
func (s *Server) Stop() {
	quiet(s.t)
	s.stopProcess()
}

// stop is Stop at the end of the test.
func (s *Server) stop() { s.stopProcess() }

func (s *Server) stopProcess() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Restart starts the server again on the same port, with empty data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.startProcess(); err != nil {
		s.t.Fatal(err)
	}
}

// FlushAll empties the server, so one server can serve several subtests.
func (s *Server) FlushAll(ctx context.Context) error {
	c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", s.Addr())
	if err != nil {
		return fmt.Errorf("flushall: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("FLUSHALL\r\n")); err != nil {
		return fmt.Errorf("flushall: %w", err)
	}
	buf := make([]byte, 5)
	if _, err := c.Read(buf); err != nil || string(buf[:3]) != "+OK" {
		return fmt.Errorf("flushall: unexpected reply %q: %v", buf, err)
	}
	return nil
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
