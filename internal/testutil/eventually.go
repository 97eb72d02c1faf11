// Package testutil holds the small helpers every package's tests share: waiting for a condition
// with a deadline instead of sleeping.
package testutil

import (
	"fmt"
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it returns true, and fails the test with the
// formatted message if it has not by timeout. Tests use it instead of sleeping for "long enough":
// it returns as soon as the condition holds and fails loudly when it never does.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !Within(timeout, cond) {
		t.Fatalf("after %v: %s", timeout, fmt.Sprintf(format, args...))
	}
}

// Within polls cond until it returns true (true) or timeout passes (false). It is Eventually for
// callers that need to decide themselves what a timeout means, such as a goroutine that must not
// call t.Fatal.
func Within(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

// Pause blocks for d without time.Sleep, for the rare test that must let time pass on a real clock
// (a deadline on the other side of a socket): it names the wait so a reader sees why it exists.
func Pause(d time.Duration) { <-time.After(d) }
