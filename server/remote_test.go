package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/gorilla/websocket"

	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testutil"
	"github.com/keygate/keygate/keys"
)

// wsUpstream is a real remote-management server: it records the hello bytes and headers, answers
// {"hello": true}, echoes data, answers pings (gorilla's default) and records pongs it receives.
type wsUpstream struct {
	*httptest.Server
	mu     sync.Mutex
	hellos [][]byte
	types  []int
	hdrs   []http.Header
	pongs  []string
	conns  []*websocket.Conn
}

func newWSUpstream(t *testing.T) *wsUpstream {
	t.Helper()
	u := &wsUpstream{}
	up := websocket.Upgrader{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetPongHandler(func(s string) error { u.mu.Lock(); u.pongs = append(u.pongs, s); u.mu.Unlock(); return nil })
		mt, b, err := c.ReadMessage()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.hellos, u.types, u.hdrs, u.conns = append(u.hellos, b), append(u.types, mt), append(u.hdrs, r.Header.Clone()), append(u.conns, c)
		u.mu.Unlock()
		reply, _ := json.Marshal(map[string]any{"hello": true, "serverTimestamp": time.Now().UnixMilli()})
		if mt == websocket.BinaryMessage {
			reply, _ = cbor.Marshal(map[string]any{"hello": true, "serverTimestamp": time.Now().UnixMilli()})
		}
		if err := c.WriteMessage(mt, reply); err != nil {
			return
		}
		for {
			mt, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, append([]byte("echo:"), b...)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *wsUpstream) url() string { return "ws" + strings.TrimPrefix(u.URL, "http") }

func (u *wsUpstream) lastConn() *websocket.Conn {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns[len(u.conns)-1]
}

func jsonHello(key, device string) []byte {
	return []byte(fmt.Sprintf(`{"hello":{"version":4,"apiKey":%q,"deviceId":%q,"deviceType":"TEST","connection":"ip","sensors":[],"supportsSnapshotStreaming":true,"mode":"ingestion"}}`, key, device))
}

func dialRemote(t *testing.T, addr string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readJSON(t *testing.T, c *websocket.Conn) (map[string]any, int) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if mt == websocket.BinaryMessage {
		err = cbor.Unmarshal(b, &m)
	} else {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	return m, mt
}

// expectClosed reads until the connection closes and returns the close frame's text.
func expectClosed(t *testing.T, c *websocket.Conn, within time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Text
		}
		t.Fatalf("connection did not close with a close frame within %v: %v", within, err)
	}
}

func TestRemoteManagement(t *testing.T) {
	srv := redistest.Start(t)
	sc, store := redisStoreConfig(t, srv)
	up := newWSUpstream(t)
	ing, _ := mkKey(t, store, 1, keys.RoleIngestion)
	ro, _ := mkKey(t, store, 1, keys.RoleReadOnly)
	victim, victimKey := mkKey(t, store, 1, keys.RoleIngestionDeployment)
	remoteAddr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	startGateway(t, sc, "", func(c *Config) {
		c.StudioUpstream, c.IngestionUpstream = "", ""
		c.RemoteUpstream, c.RemoteListen = up.url(), remoteAddr
		c.RemoteHelloTimeout = 300 * time.Millisecond
	})

	t.Run("plain HTTP is refused with the JSON error shape", func(t *testing.T) {
		r := do(t, "GET", "http://"+remoteAddr+"/", ing, nil)
		if r.status != 400 || !strings.Contains(r.body, `"success":false`) || strings.Contains(r.body, ing) {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("JSON hello relayed byte for byte, then data and pings both ways", func(t *testing.T) {
		c := dialRemote(t, remoteAddr)
		hello := jsonHello(ing, "dev-json")
		if err := c.WriteMessage(websocket.TextMessage, hello); err != nil {
			t.Fatal(err)
		}
		m, mt := readJSON(t, c)
		if m["hello"] != true || mt != websocket.TextMessage {
			t.Fatalf("reply %v", m)
		}
		up.mu.Lock()
		got, hdr := up.hellos[len(up.hellos)-1], up.hdrs[len(up.hdrs)-1]
		up.mu.Unlock()
		if !bytes.Equal(got, hello) {
			t.Errorf("upstream got %q, want the hello unchanged", got)
		}
		if hdr.Get("X-Keygate-Project") != "1" || hdr.Get("X-Keygate-Role") != "ingestiononly" || hdr.Get("X-Keygate-Key-Id") == "" {
			t.Errorf("identity headers on the upgrade: %v", hdr)
		}
		c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		mt, b, err := c.ReadMessage()
		if err != nil || mt != websocket.BinaryMessage || !bytes.Equal(b, []byte("echo:\x01\x02\x03")) {
			t.Errorf("echo: %d %q %v", mt, b, err)
		}
		// Device ping → upstream (which answers pong) → device.
		pong := make(chan string, 1)
		c.SetPongHandler(func(s string) error { pong <- s; return nil })
		c.WriteControl(websocket.PingMessage, []byte("device-ping"), time.Now().Add(time.Second))
		go c.ReadMessage()
		select {
		case s := <-pong:
			if s != "device-ping" {
				t.Errorf("pong %q", s)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("device ping not answered through the gateway")
		}
		// Upstream ping → device (gorilla's default handler answers) → upstream.
		upc := up.lastConn()
		upc.WriteControl(websocket.PingMessage, []byte("server-ping"), time.Now().Add(time.Second))
		testutil.Eventually(t, 5*time.Second, func() bool {
			up.mu.Lock()
			defer up.mu.Unlock()
			return len(up.pongs) > 0 && up.pongs[len(up.pongs)-1] == "server-ping"
		}, "upstream ping not answered by the device through the gateway")
	})
	t.Run("CBOR hello", func(t *testing.T) {
		c := dialRemote(t, remoteAddr)
		hello, _ := cbor.Marshal(map[string]any{"hello": map[string]any{"version": 4, "apiKey": ing, "deviceId": "dev-cbor"}})
		c.WriteMessage(websocket.BinaryMessage, hello)
		m, mt := readJSON(t, c)
		if m["hello"] != true || mt != websocket.BinaryMessage {
			t.Fatalf("reply %v (type %d)", m, mt)
		}
		up.mu.Lock()
		got := up.hellos[len(up.hellos)-1]
		up.mu.Unlock()
		if !bytes.Equal(got, hello) {
			t.Error("CBOR hello not relayed unchanged")
		}
	})
	refusals := []struct {
		name string
		send func(c *websocket.Conn)
		says string
		mt   int
	}{
		{"read-only key", func(c *websocket.Conn) { c.WriteMessage(websocket.TextMessage, jsonHello(ro, "d")) }, "may not connect to remote management", websocket.TextMessage},
		{"read-only key, CBOR", func(c *websocket.Conn) {
			b, _ := cbor.Marshal(map[string]any{"hello": map[string]any{"apiKey": ro}})
			c.WriteMessage(websocket.BinaryMessage, b)
		}, "may not connect to remote management", websocket.BinaryMessage},
		{"unknown key", func(c *websocket.Conn) {
			c.WriteMessage(websocket.TextMessage, jsonHello("ei_"+strings.Repeat("0", 64), "d"))
		}, "unknown or revoked", websocket.TextMessage},
		{"garbage first message", func(c *websocket.Conn) { c.WriteMessage(websocket.TextMessage, []byte("GET / HTTP/1.1")) }, "first message must be a hello", websocket.TextMessage},
		{"a message that is not a hello", func(c *websocket.Conn) { c.WriteMessage(websocket.TextMessage, []byte(`{"sample":{}}`)) }, "first message must be a hello", websocket.TextMessage},
		{"silent client", func(c *websocket.Conn) {}, "no hello within", websocket.TextMessage},
	}
	for _, tt := range refusals {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			c := dialRemote(t, remoteAddr)
			n := len(up.hellos)
			tt.send(c)
			m, mt := readJSON(t, c)
			if m["hello"] != false || !strings.Contains(fmt.Sprint(m["err"]), tt.says) || mt != tt.mt {
				t.Errorf("reply %v (type %d), want hello:false saying %q", m, mt, tt.says)
			}
			expectClosed(t, c, 5*time.Second)
			if len(up.hellos) != n {
				t.Error("a refused session reached the upstream")
			}
		})
	}
	t.Run("revocation ends a live session", func(t *testing.T) {
		c := dialRemote(t, remoteAddr)
		c.WriteMessage(websocket.TextMessage, jsonHello(victim, "dev-victim"))
		if m, _ := readJSON(t, c); m["hello"] != true {
			t.Fatal(m)
		}
		start := time.Now()
		if err := store.RevokeAPIKey(context.Background(), 1, victimKey.ID); err != nil {
			t.Fatal(err)
		}
		if why := expectClosed(t, c, 2*time.Second); why != "API key revoked" {
			t.Errorf("close reason %q", why)
		}
		t.Logf("session closed %v after the revocation", time.Since(start))
	})
	t.Run("a key's expiry and a rolled secret's grace end live sessions", func(t *testing.T) {
		short, _ := keys.GenerateAPIKey()
		if _, err := store.CreateAPIKey(context.Background(), keys.NewAPIKey{ProjectID: 1, Name: "short", Role: keys.RoleIngestion, Key: short, TTL: time.Second}); err != nil {
			t.Fatal(err)
		}
		rolling, rk := mkKey(t, store, 1, keys.RoleIngestion)
		sessions := map[string]*websocket.Conn{}
		for name, key := range map[string]string{"API key expired": short, "API key revoked": rolling} {
			c := dialRemote(t, remoteAddr)
			c.WriteMessage(websocket.TextMessage, jsonHello(key, "dev-"+name))
			if m, _ := readJSON(t, c); m["hello"] != true {
				t.Fatal(name, m)
			}
			sessions[name] = c
		}
		newSecret, _ := keys.GenerateAPIKey()
		if _, err := store.RollAPIKey(context.Background(), 1, rk.ID, newSecret, time.Second); err != nil {
			t.Fatal(err)
		}
		// The expiring key's session ends at its deadline on its own; the rolled secret's learns its
		// grace from the roll's announcement and ends with it.
		for reason, c := range sessions {
			if why := expectClosed(t, c, 5*time.Second); why != reason {
				t.Errorf("session closed with %q, want %q", why, reason)
			}
		}
	})
	t.Run("one session per device", func(t *testing.T) {
		a := dialRemote(t, remoteAddr)
		a.WriteMessage(websocket.TextMessage, jsonHello(ing, "dev-dup"))
		readJSON(t, a)
		b := dialRemote(t, remoteAddr)
		b.WriteMessage(websocket.TextMessage, jsonHello(ing, "dev-dup"))
		if m, _ := readJSON(t, b); m["hello"] != true {
			t.Fatal(m)
		}
		if why := expectClosed(t, a, 2*time.Second); !strings.Contains(why, "replaced") {
			t.Errorf("older session closed with %q", why)
		}
	})
}

func TestRemoteUpstreamDown(t *testing.T) {
	sc := StoreConfig{DataDir: t.TempDir()}
	s, err := sc.Open()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := mkKey(t, s, 1, keys.RoleAdmin)
	s.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := "ws" + strings.TrimPrefix(dead.URL, "http")
	dead.Close()
	addr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	startGateway(t, sc, "", func(c *Config) {
		c.StudioUpstream, c.IngestionUpstream, c.RemoteUpstream, c.RemoteListen = "", "", deadURL, addr
	})
	c := dialRemote(t, addr)
	c.WriteMessage(websocket.TextMessage, jsonHello(key, "d"))
	m, _ := readJSON(t, c)
	if m["hello"] != false || !strings.Contains(fmt.Sprint(m["err"]), "unavailable") {
		t.Errorf("reply %v", m)
	}
	expectClosed(t, c, 5*time.Second)
}

// TestMain lets a test start keygate as its own process (KEYGATE_TEST_MAIN=1 re-runs this binary
// as `keygate serve` does: configured from the environment, stopped by SIGTERM), so memory can be
// measured on keygate alone.
func TestMain(m *testing.M) {
	if os.Getenv("KEYGATE_TEST_MAIN") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		cfg, err := LoadConfig()
		if err == nil {
			var s *Server
			if s, err = New(cfg, Options{Log: NewLogger(cfg, os.Stderr)}); err == nil {
				err = s.Run(ctx)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}

// TestThousandIdleSessions holds 1,000 concurrent idle device sessions through a keygate process
// and reports its memory per session.
func TestThousandIdleSessions(t *testing.T) {
	dir := t.TempDir()
	sc := StoreConfig{DataDir: dir}
	s, err := sc.Open()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := mkKey(t, s, 1, keys.RoleIngestion)
	s.Close()
	up := newWSUpstream(t)
	addr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), "KEYGATE_TEST_MAIN=1", "KEYGATE_DATA_DIR="+dir, "KEYGATE_REMOTE_UPSTREAM="+up.url(),
		"KEYGATE_REMOTE_LISTEN="+addr, "KEYGATE_OPS_LISTEN=127.0.0.1:0", "KEYGATE_REMOTE_MAX_SESSIONS_PER_KEY=2000", "KEYGATE_ACCESS_LOG=false", "KEYGATE_LOG_LEVEL=warn")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	testutil.Eventually(t, 10*time.Second, func() bool {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr, nil)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "keygate did not start")
	// Warm the key into the cache before the baseline.
	warm := dialRemote(t, addr)
	warm.WriteMessage(websocket.TextMessage, jsonHello(key, "warm"))
	readJSON(t, warm)
	before := rssKiB(t, cmd.Process.Pid)
	const n = 1000
	conns := make([]*websocket.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr, nil)
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		conns = append(conns, c)
		if err := c.WriteMessage(websocket.TextMessage, jsonHello(key, fmt.Sprintf("idle-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := c.ReadMessage()
		if err != nil || !bytes.Contains(b, []byte(`"hello":true`)) {
			t.Fatalf("session %d: %q %v", i, b, err)
		}
	}
	// Every hello was answered, so every session is allocated: measure now.
	after := rssKiB(t, cmd.Process.Pid)
	perSession := float64(after-before) / n
	t.Logf("1,000 idle sessions held: keygate RSS %d KiB -> %d KiB, %.1f KiB per session", before, after, perSession)
	bound := 100.0 // measured ~38 KiB per session without the race detector
	if raceEnabled {
		bound = 1024 // the race detector's shadow memory: ~240 KiB per session measured
	}
	if perSession > bound {
		t.Errorf("%.1f KiB per idle session, bound %.0f", perSession, bound)
	}
	// They are all still alive: a ping through each is answered.
	for i, c := range conns[:50] {
		pong := make(chan struct{}, 1)
		c.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
		c.WriteControl(websocket.PingMessage, []byte("x"), time.Now().Add(time.Second))
		go c.ReadMessage()
		select {
		case <-pong:
		case <-time.After(5 * time.Second):
			t.Fatalf("session %d did not answer a ping", i)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}
