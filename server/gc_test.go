package server

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: serve raises the collector's target unless GOGC chose one.
func TestTuneGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	if TuneGC(func(k string) (string, bool) { return "50", k == "GOGC" }) {
		t.Fatal("TuneGC overrode GOGC")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with GOGC set the percent became %d", got)
	}
	if !TuneGC(func(string) (string, bool) { return "", false }) {
		t.Fatal("TuneGC did nothing without GOGC")
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Fatalf("percent %d, want %d", got, DefaultGCPercent)
	}
}
