package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testutil"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server"
)

// TestMain lets a test run keygate as its own process: KEYGATE_TEST_MAIN=1 re-runs this binary as
// `keygate <args>` through the real entry point (signal handling and exit status included).
func TestMain(m *testing.M) {
	if os.Getenv("KEYGATE_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestServeExitsOnSIGTERM runs `keygate serve` on Redis as a process and sends it SIGTERM while a
// request is in flight: /readyz turns 503, the request still gets its answer, and the process exits 0
// within KEYGATE_SHUTDOWN_TIMEOUT plus 5 s — with Redis up, and with Redis gone at that moment.
func TestServeExitsOnSIGTERM(t *testing.T) {
	const drain = 3 * time.Second
	for _, tc := range []struct {
		name      string
		redisDown bool
	}{{"redis up", false}, {"redis down at SIGTERM", true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			sc := server.StoreConfig{RedisURL: srv.URL()}
			store, err := sc.Open()
			if err != nil {
				t.Fatal(err)
			}
			key, err := keys.GenerateAPIKey()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.CreateAPIKey(context.Background(), keys.NewAPIKey{ProjectID: 1, Name: "a", Role: keys.RoleAdmin, Key: key}); err != nil {
				t.Fatal(err)
			}
			store.Close()

			inFlight, release := make(chan struct{}, 1), make(chan struct{})
			var releaseOnce sync.Once
			free := func() { releaseOnce.Do(func() { close(release) }) }
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v1/api/1/slow" {
					inFlight <- struct{}{}
					<-release
				}
				io.WriteString(w, `{"success":true}`)
			}))
			defer up.Close()
			defer free()

			studio, ops := "127.0.0.1:"+strconv.Itoa(redistest.FreePort(t)), "127.0.0.1:"+strconv.Itoa(redistest.FreePort(t))
			cmd := exec.Command(os.Args[0], "serve")
			cmd.Env = append(os.Environ(), "KEYGATE_TEST_MAIN=1", "KEYGATE_REDIS_URL="+srv.URL(),
				"KEYGATE_STUDIO_LISTEN="+studio, "KEYGATE_STUDIO_UPSTREAM="+up.URL, "KEYGATE_OPS_LISTEN="+ops,
				"KEYGATE_INGESTION_LISTEN=127.0.0.1:0", "KEYGATE_REMOTE_LISTEN=127.0.0.1:0",
				"KEYGATE_SHUTDOWN_TIMEOUT="+drain.String(), "KEYGATE_LOG_FORMAT=text")
			logs := &syncBuffer{}
			cmd.Stdout, cmd.Stderr = logs, logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited, waited := make(chan error, 1), false
			go func() { exited <- cmd.Wait() }()
			defer func() {
				if !waited {
					cmd.Process.Kill()
					<-exited
				}
			}()

			get := func(url string) (int, string) {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("x-api-key", key)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					return 0, err.Error()
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return res.StatusCode, string(b)
			}
			testutil.Eventually(t, 10*time.Second, func() bool {
				c, _ := get("http://" + ops + "/readyz")
				return c == 200
			}, "keygate never became ready; output:\n%s", logs)
			if c, body := get("http://" + studio + "/v1/api/1/raw-data"); c != 200 { // the key is now cached
				t.Fatalf("GET with the key: %d %s", c, body)
			}
			if tc.redisDown {
				srv.Stop()
			}

			answer := make(chan int, 1)
			go func() { c, _ := get("http://" + studio + "/v1/api/1/slow"); answer <- c }()
			<-inFlight
			sent := time.Now()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 5*time.Second, func() bool {
				c, _ := get("http://" + ops + "/readyz")
				return c == 503
			}, "/readyz did not turn 503 while draining")
			select {
			case err := <-exited:
				waited = true
				t.Fatalf("keygate exited with a request in flight: %v", err)
			default:
			}
			free()
			if c := <-answer; c != 200 {
				t.Errorf("the in-flight request got %d, want 200", c)
			}
			select {
			case err := <-exited:
				waited = true
				if err != nil {
					t.Errorf("keygate exited with %v, want status 0; output:\n%s", err, logs)
				}
				t.Logf("exited %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
			case <-time.After(drain + 5*time.Second):
				t.Fatalf("keygate still running %v after SIGTERM; output:\n%s", drain+5*time.Second, logs)
			}
			if out := logs.String(); !strings.Contains(out, "msg=stopped") || strings.Contains(out, "did not stop in time") {
				t.Errorf("the drain did not finish cleanly:\n%s", out)
			}
		})
	}
}
