package redistest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// shownLines is how many go-redis lines a test's log shows before it only counts them: a dial error
// repeats for every retry, and a failing test's output should lead with its own failure.
const shownLines = 5

// LogTo routes go-redis's log lines into t's log until t ends, instead of the library's default
// (stderr, where every test's lines mix and a stopped Redis prints hundreds of dial errors). At most
// a few lines are shown; the rest are counted in one line when the test ends. Start calls it, so every
// test with a Redis server opts in.
//
// go-redis has one logger per process (redis.SetLogger). While several tests run in parallel the
// lines go to the one that opted in last; once no test is left they are dropped. A program that sets
// its own logger (say, to slog) after this takes over until the next LogTo.
func LogTo(t testing.TB) {
	t.Helper()
	logs.install()
	s := &logSink{t: t}
	logs.mu.Lock()
	logs.sinks = append(logs.sinks, s)
	logs.mu.Unlock()
	t.Cleanup(func() {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		for i, x := range logs.sinks {
			if x == s {
				logs.sinks = append(logs.sinks[:i], logs.sinks[i+1:]...)
				break
			}
		}
		if s.hidden > 0 {
			reason := ""
			if s.quiet {
				reason = " (Redis was stopped on purpose)"
			}
			t.Logf("go-redis: %d more log lines not shown%s", s.hidden, reason)
		}
	})
}

// quiet stops showing t's go-redis lines (they are still counted): the test stopped Redis on
// purpose, so connection errors are what it expects.
func quiet(t testing.TB) {
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, s := range logs.sinks {
		if s.t == t {
			s.quiet = true
		}
	}
}

type logSink struct {
	t      testing.TB
	shown  int
	hidden int
	quiet  bool
}

// router is the process's go-redis logger while tests run.
type router struct {
	once  sync.Once
	mu    sync.Mutex
	sinks []*logSink
}

var logs router

func (r *router) install() { r.once.Do(func() { redis.SetLogger(r) }) }

// Printf implements go-redis's internal.Logging. It holds the lock while logging, so a sink is never
// written after its test's cleanup removed it (testing panics on a log after the test ended).
func (r *router) Printf(_ context.Context, format string, v ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sinks) == 0 {
		return
	}
	s := r.sinks[len(r.sinks)-1]
	if s.quiet || s.shown >= shownLines {
		s.hidden++
		return
	}
	s.shown++
	s.t.Logf("go-redis: %s", fmt.Sprintf(format, v...))
}
