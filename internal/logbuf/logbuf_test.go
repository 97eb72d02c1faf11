package logbuf

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil"
)

type lockedBuf struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestBatchesWholeRecords(t *testing.T) {
	out := &lockedBuf{}
	w := New(out, 1024, time.Hour)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				fmt.Fprintf(w, "record %d-%d %s\n", g, i, strings.Repeat("x", i%50))
			}
		}(g)
	}
	wg.Wait()
	w.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4000 {
		t.Fatalf("%d lines, want 4000 (nothing lost)", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "record ") {
			t.Fatalf("split or interleaved line %q", l)
		}
	}
	if out.writes >= 4000/4 {
		t.Errorf("%d writes for 4000 records: not batched", out.writes)
	}
}

func TestFlushesOnInterval(t *testing.T) {
	out := &lockedBuf{}
	w := New(out, 1<<20, 10*time.Millisecond)
	defer w.Close()
	w.Write([]byte("one\n"))
	testutil.Eventually(t, 5*time.Second, func() bool { return out.String() == "one\n" }, "not flushed by the interval: %q", out.String())
}

func TestOversizedRecord(t *testing.T) {
	out := &lockedBuf{}
	w := New(out, 16, time.Hour)
	w.Write([]byte("short\n"))
	big := strings.Repeat("y", 100) + "\n"
	w.Write([]byte(big))
	w.Close()
	if out.String() != "short\n"+big {
		t.Errorf("got %q", out.String())
	}
}
