package redistest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// recordingTB is a testing.TB whose log and cleanups the test can inspect.
type recordingTB struct {
	testing.TB
	mu       sync.Mutex
	lines    []string
	cleanups []func()
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// end runs the cleanups as testing does: last registered first.
func (r *recordingTB) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

func (r *recordingTB) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

func TestLogTo(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		lines     int
		quiet     bool
		wantShown int
		wantTail  string
	}{
		{name: "few lines all shown", lines: 3, wantShown: 3},
		{name: "many lines capped", lines: 40, wantShown: shownLines, wantTail: "go-redis: 35 more log lines not shown"},
		{name: "quiet after a stop", lines: 7, quiet: true, wantShown: 0, wantTail: "go-redis: 7 more log lines not shown (Redis was stopped on purpose)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			LogTo(rec)
			if tc.quiet {
				quiet(rec)
			}
			for i := range tc.lines {
				logs.Printf(ctx, "dial error %d", i)
			}
			rec.end()
			// After the test ended its lines go nowhere (logging to an ended test panics).
			logs.Printf(ctx, "after the end")
			got := rec.log()
			shown := 0
			for _, l := range got {
				if strings.HasPrefix(l, "go-redis: dial error ") {
					shown++
				}
				if strings.Contains(l, "after the end") {
					t.Errorf("a line reached a test after its end: %q", l)
				}
			}
			if shown != tc.wantShown {
				t.Errorf("shown %d lines, want %d: %q", shown, tc.wantShown, got)
			}
			if tc.wantTail != "" && (len(got) == 0 || got[len(got)-1] != tc.wantTail) {
				t.Errorf("last line %q, want %q", got, tc.wantTail)
			}
			if tc.wantTail == "" && len(got) != tc.wantShown {
				t.Errorf("unexpected summary: %q", got)
			}
		})
	}
}

// TestLogToLatestTest: lines go to the test that opted in last, and back to the earlier one when it ends.
func TestLogToLatestTest(t *testing.T) {
	ctx := context.Background()
	a, b := &recordingTB{TB: t}, &recordingTB{TB: t}
	LogTo(a)
	LogTo(b)
	logs.Printf(ctx, "one")
	b.end()
	logs.Printf(ctx, "two")
	a.end()
	if got := b.log(); len(got) != 1 || got[0] != "go-redis: one" {
		t.Errorf("b: %q", got)
	}
	if got := a.log(); len(got) != 1 || got[0] != "go-redis: two" {
		t.Errorf("a: %q", got)
	}
}

// TestStopWaitsAndRestart: Stop returns only when the process is gone; Restart serves the same port
// again; a go-redis client's dial errors in between do not reach the test's output unbounded.
func TestStopWaitsAndRestart(t *testing.T) {
	srv := Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	p := srv.proc
	srv.mu.Unlock()
	srv.Stop()
	select {
	case <-p.exited:
	default:
		t.Fatal("Stop returned before redis-server exited")
	}
	if conn, err := net.DialTimeout("tcp", srv.Addr(), 200*time.Millisecond); err == nil {
		conn.Close()
		t.Fatal("the port still accepts connections after Stop")
	}
	if err := c.Get(ctx, "k").Err(); err == nil {
		t.Fatal("a command succeeded against a stopped server")
	}
	srv.Stop() // twice is fine
	srv.Restart()
	if err := c.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("after Restart: %v, want an empty server (redis.Nil)", err)
	}
}
