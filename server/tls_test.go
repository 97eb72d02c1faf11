package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/keygate/keygate/internal/testpki"
	"github.com/keygate/keygate/keys"
)

// TestTLSFacesAndUpstream: the Studio face over TLS (HTTP/1.1 and HTTP/2, TLS 1.2 minimum) in
// front of an https upstream signed by a private CA that requires a client certificate; ops stays
// plain; the certificate's expiry is a metric.
func TestTLSFacesAndUpstream(t *testing.T) {
	ca := testpki.NewCA(t)
	dir := t.TempDir()
	sc, kc := ca.Leaf(t, "keygate", time.Now().Add(48*time.Hour))
	uc, uk := ca.Leaf(t, "upstream", time.Now().Add(48*time.Hour))
	cc, ck := ca.Leaf(t, "keygate-client", time.Now().Add(48*time.Hour))

	upCert, err := tls.X509KeyPair(uc, uk)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 10)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen <- r.TLS.PeerCertificates[0].Subject.CommonName + " " + r.Proto + " " + r.Header.Get("X-Request-Id") + " " + string(b)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"success":true}`)
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{upCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	up.StartTLS()
	t.Cleanup(up.Close)

	store := StoreConfig{DataDir: t.TempDir()}
	s, err := store.Open()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := mkKey(t, s, 1, keys.RoleAdmin)
	s.Close()
	cfg := Config{StoreConfig: store}
	if err := envDefaults(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.StudioListen, cfg.IngestionListen, cfg.OpsListen, cfg.StudioUpstream = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", up.URL
	cfg.AccessLog = false
	cfg.TLSCertFile, cfg.TLSKeyFile = testpki.Write(t, dir, "tls.crt", sc), testpki.Write(t, dir, "tls.key", kc)
	cfg.UpstreamCAFile = testpki.Write(t, dir, "ca.crt", ca.PEM)
	cfg.UpstreamClientCertFile, cfg.UpstreamClientKeyFile = testpki.Write(t, dir, "c.crt", cc), testpki.Write(t, dir, "c.key", ck)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, _ := runServer(t, cfg, io.Discard)

	for _, tt := range []struct {
		name  string
		h2    bool
		proto string
	}{{"http1", false, "HTTP/1.1"}, {"http2", true, "HTTP/2.0"}} {
		t.Run(tt.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: tt.h2}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest("POST", "https://"+a["studio"]+"/v1/api/1/raw-data/1/rename", strings.NewReader(`{"name":"x"}`))
			req.Header.Set("x-api-key", key)
			req.Header.Set("X-Request-Id", "tls-"+tt.name)
			res, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || res.Proto != tt.proto || res.TLS.Version < tls.VersionTLS12 {
				t.Fatalf("status %d proto %s", res.StatusCode, res.Proto)
			}
			if got := <-seen; got != "keygate-client HTTP/1.1 tls-"+tt.name+` {"name":"x"}` {
				t.Errorf("upstream saw %q", got)
			}
		})
	}
	t.Run("tls1.1 refused", func(t *testing.T) {
		c, err := tls.Dial("tcp", a["studio"], &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11})
		if err == nil {
			c.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})
	t.Run("ops plain", func(t *testing.T) {
		r := do(t, "GET", "http://"+a["ops"]+"/metrics", "", nil)
		if r.status != 200 || !strings.Contains(r.body, `keygate_tls_certificate_expiry_timestamp_seconds{cert="faces"}`) ||
			!strings.Contains(r.body, `keygate_tls_certificate_expiry_timestamp_seconds{cert="upstream_client"}`) {
			t.Errorf("ops metrics: %d, expiry gauges missing", r.status)
		}
	})
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := testpki.Write(t, dir, "bad.pem", []byte("nope"))
	for _, tt := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"cert without key", func(c *Config) { c.TLSCertFile = bad }, "KEYGATE_TLS_CERT_FILE and KEYGATE_TLS_KEY_FILE"},
		{"client key without cert", func(c *Config) { c.UpstreamClientKeyFile = bad }, "KEYGATE_UPSTREAM_CLIENT_CERT_FILE"},
		{"unknown face", func(c *Config) { c.TLSFaces = []string{"studio", "admin"} }, "KEYGATE_TLS_FACES"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			if err := envDefaults(&c); err != nil {
				t.Fatal(err)
			}
			c.StudioUpstream = "http://127.0.0.1:1"
			tt.set(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want it to name %s", err, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"unreadable pair", func(c *Config) { c.TLSCertFile, c.TLSKeyFile = bad, bad }, "KEYGATE_TLS_CERT_FILE"},
		{"bad CA file", func(c *Config) { c.UpstreamCAFile = bad }, "KEYGATE_UPSTREAM_CA_FILE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{StoreConfig: StoreConfig{DataDir: t.TempDir()}}
			if err := envDefaults(&c); err != nil {
				t.Fatal(err)
			}
			c.StudioUpstream = "http://127.0.0.1:1"
			tt.set(&c)
			_, err := New(c, Options{})
			var ce ConfigError
			if err == nil || !strings.Contains(err.Error(), tt.want) || !asConfigError(err, &ce) {
				t.Errorf("err %v, want a ConfigError naming %s", err, tt.want)
			}
		})
	}
}

func asConfigError(err error, ce *ConfigError) bool { return errors.As(err, ce) }

// TestRemoteOverTLS: devices reach the remote face with wss:// (HTTP/1.1 offered for the upgrade),
// keygate reaches a wss:// upstream signed by a private CA (KEYGATE_UPSTREAM_CA_FILE), and the
// X-Request-Id is on the 101 answer and the upstream's upgrade request.
func TestRemoteOverTLS(t *testing.T) {
	ca := testpki.NewCA(t)
	dir := t.TempDir()
	sc, kc := ca.Leaf(t, "keygate", time.Now().Add(48*time.Hour))
	uc, uk := ca.Leaf(t, "upstream", time.Now().Add(48*time.Hour))
	upCert, err := tls.X509KeyPair(uc, uk)
	if err != nil {
		t.Fatal(err)
	}
	plain := newWSUpstream(t)
	up := httptest.NewUnstartedServer(plain.Config.Handler)
	up.TLS = &tls.Config{Certificates: []tls.Certificate{upCert}}
	up.StartTLS()
	t.Cleanup(up.Close)

	store := StoreConfig{DataDir: t.TempDir()}
	s, err := store.Open()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := mkKey(t, s, 1, keys.RoleIngestion)
	s.Close()
	cfg := Config{StoreConfig: store}
	if err := envDefaults(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.StudioListen, cfg.IngestionListen, cfg.RemoteListen, cfg.OpsListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.RemoteUpstream = "wss" + strings.TrimPrefix(up.URL, "https")
	cfg.AccessLog = false
	cfg.TLSCertFile, cfg.TLSKeyFile = testpki.Write(t, dir, "tls.crt", sc), testpki.Write(t, dir, "tls.key", kc)
	cfg.UpstreamCAFile = testpki.Write(t, dir, "ca.crt", ca.PEM)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, _ := runServer(t, cfg, io.Discard)

	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, HandshakeTimeout: 5 * time.Second}
	c, res, err := d.Dial("wss://"+a["remote"]+"/", http.Header{"X-Request-Id": {"dev-42"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if res.Header.Get("X-Request-Id") != "dev-42" {
		t.Errorf("101 answer X-Request-Id %q", res.Header.Get("X-Request-Id"))
	}
	if err := c.WriteMessage(websocket.TextMessage, jsonHello(key, "dev-tls")); err != nil {
		t.Fatal(err)
	}
	if m, _ := readJSON(t, c); m["hello"] != true {
		t.Fatalf("hello over wss: %v", m)
	}
	plain.mu.Lock()
	hdr := plain.hdrs[len(plain.hdrs)-1]
	plain.mu.Unlock()
	if hdr.Get("X-Request-Id") != "dev-42" || hdr.Get("X-Keygate-Project") != "1" {
		t.Errorf("upstream upgrade headers %v", hdr)
	}
}
