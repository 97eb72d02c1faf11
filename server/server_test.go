package server

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil"
)

// TestNewFailsCleanly: a configuration that fails while the parts are built leaves nothing
// behind: a ConfigError (exit status 2), the embedded store released (another process may open
// it at once) and no goroutine left running.
func TestNewFailsCleanly(t *testing.T) {
	cfg, err := LoadDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg.StoreConfig = StoreConfig{DataDir: t.TempDir()}
	cfg.StudioUpstream, cfg.AccessLog = "http://127.0.0.1:1", true
	cfg.ServiceTokenFile = filepath.Join(t.TempDir(), "missing-token")
	before := runtime.NumGoroutine()
	// Its log goes to the test's own output (the plaintext warning is expected here).
	_, err = New(cfg, Options{Log: slog.New(slog.NewTextHandler(t.Output(), nil)), LogOutput: io.Discard})
	var ce ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("New with a missing token file: %v, want a ConfigError", err)
	}
	s, err := cfg.Open()
	if err != nil {
		t.Fatalf("the store is still held after New failed: %v", err)
	}
	s.Close()
	testutil.Eventually(t, 2*time.Second, func() bool { return runtime.NumGoroutine() <= before },
		"goroutines left running after New failed: %d, were %d", runtime.NumGoroutine(), before)
}
