package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

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

// TestAccessLogLine: one JSON line per request with the fields operators rely on, never the key.
func TestAccessLogLine(t *testing.T) {
	sc := StoreConfig{DataDir: t.TempDir()}
	s, err := sc.Open()
	if err != nil {
		t.Fatal(err)
	}
	key, ak := mkKey(t, s, 1, keys.RoleReadOnly)
	s.Close()
	up := newUpstream(t)
	cfg := Config{StoreConfig: sc}
	if err := envDefaults(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.StudioListen, cfg.IngestionListen, cfg.OpsListen, cfg.StudioUpstream = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", up.URL
	logs := &syncBuffer{}
	a, stop := runServer(t, cfg, logs)
	do(t, "GET", "http://"+a["studio"]+"/v1/api/1/raw-data", key, nil)
	do(t, "POST", "http://"+a["studio"]+"/v1/api/1/raw-data/1/rename", key, strings.NewReader("{}"))
	stop()
	out := logs.String()
	if strings.Contains(out, key) || strings.Contains(out, key[11:]) {
		t.Fatal("the access log contains the key")
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d request lines, want 2: %s", len(lines), out)
	}
	first, second := lines[0], lines[1]
	if first["status"] != 200.0 || first["outcome"] != "forwarded" || first["class"] != "read" || first["key_id"] != float64(ak.ID) ||
		first["project"] != 1.0 || first["path"] != "/v1/api/1/raw-data" || first["face"] != "studio" {
		t.Errorf("first line %v", first)
	}
	if d, _ := first["duration_ms"].(float64); d <= 0 || d > float64(10*time.Second/time.Millisecond) {
		t.Errorf("duration_ms %v", first["duration_ms"])
	}
	if first["client_ip"] != "127.0.0.1" || first["user_agent"] != "Go-http-client/1.1" {
		t.Errorf("client_ip %v, user_agent %v", first["client_ip"], first["user_agent"])
	}
	if id, _ := first["request_id"].(string); len(id) != 32 || id == second["request_id"] {
		t.Errorf("request ids %v, %v", first["request_id"], second["request_id"])
	}
	if second["status"] != 403.0 || second["outcome"] != "denied" || second["class"] != "add_data" {
		t.Errorf("second line %v", second)
	}
}
