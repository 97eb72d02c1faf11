package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// hangingStore is a store whose Close blocks until the test releases it, like a go-redis client
// waiting on a server that stopped answering.
type hangingStore struct {
	keys.Store
	release chan struct{}
	closed  chan struct{}
}

func (h *hangingStore) Close() error {
	defer close(h.closed)
	<-h.release
	return nil
}

func TestCloseStoreIsBounded(t *testing.T) {
	var logs bytes.Buffer
	h := &hangingStore{release: make(chan struct{}), closed: make(chan struct{})}
	s := &Server{store: h, log: slog.New(slog.NewTextHandler(&logs, nil))}
	if s.closeStore(20 * time.Millisecond) {
		t.Fatal("closeStore reported a hanging Close as finished")
	}
	if !strings.Contains(logs.String(), "store did not close in time") {
		t.Errorf("no log line for the overrun: %q", logs.String())
	}
	close(h.release)
	<-h.closed

	quick := &hangingStore{release: make(chan struct{}), closed: make(chan struct{})}
	close(quick.release)
	s.store = quick
	if !s.closeStore(5 * time.Second) {
		t.Fatal("a store that closes at once was reported as overrunning")
	}
}
