// Package redistest starts a real redis-server for tests, on a free loopback port, and can stop and
// restart it on the same port so tests can exercise Redis outages. Tests never mock Redis.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Server is one redis-server process owned by a test.
type Server struct {
	t    testing.TB
	Port int
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start launches redis-server on a free loopback port and stops it when the test ends. A missing
// redis-server fails the test: `make test` installs it, so its absence is a broken setup, not a skip.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found in PATH (make test installs it): %v", err)
	}
	s := &Server{t: t, Port: FreePort(t), dir: t.TempDir()}
	s.startProcess()
	t.Cleanup(s.Stop)
	return s
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL is the redis:// URL keygate takes in KEYGATE_REDIS_URL.
func (s *Server) URL() string { return "redis://" + s.Addr() }

func (s *Server) startProcess() {
	s.t.Helper()
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"), "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = nil, os.Stderr
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond); err == nil {
			// A listening socket is not enough: wait until it answers PING.
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			n, _ := c.Read(buf)
			c.Close()
			if n >= 5 && string(buf[:5]) == "+PONG" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("redis-server on %s did not answer within 10s", s.Addr())
}

// Stop kills the server (data is not persisted). Safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Restart starts the server again on the same port, with empty data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.startProcess()
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
