package testutil

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestWithin(t *testing.T) {
	var n atomic.Int32
	if !Within(time.Second, func() bool { return n.Add(1) >= 3 }) {
		t.Fatal("condition that becomes true was reported as timed out")
	}
	if n.Load() != 3 {
		t.Fatalf("polled %d times, want 3 (stop as soon as it holds)", n.Load())
	}
	if Within(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("condition that never holds was reported true")
	}
}
