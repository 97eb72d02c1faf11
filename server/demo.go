package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/standin"
	"github.com/keygate/keygate/keys"
)

// RunDemo is `keygate demo`: it creates the demo project's keys on first start and prints them,
// starts the stand-ins for every face without an upstream, and runs keygate in front of them until
// ctx ends, printing where each face listens. cfg comes from LoadDefaults (not yet validated).
func RunDemo(ctx context.Context, cfg Config, project int64, opt Options, stdout io.Writer) error {
	if opt.LogOutput == nil {
		opt.LogOutput = os.Stderr
	}
	demoOnLoopback(&cfg, os.LookupEnv)
	if cfg.RedisURL != "" {
		fmt.Fprintln(opt.LogOutput, "keygate demo: using the Redis store from KEYGATE_REDIS_URL")
	}
	dk, err := EnsureDemoKeys(ctx, cfg.StoreConfig, project)
	if err != nil {
		return err
	}
	dk.print(stdout, project)
	uploads, runner, stop, err := StartStandIns(&cfg)
	defer stop()
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	opt.Log = NewLogger(cfg, opt.LogOutput)
	opt.OnReady = func(addrs map[string]string) {
		printDemoAddrs(stdout, addrs, uploads)
		runner.SetAddrs("http://"+addrs["ops"], "http://"+addrs["studio"])
	}
	s, err := New(cfg, opt)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

func (dk DemoKeys) print(w io.Writer, pid int64) {
	if dk.Existing > 0 {
		fmt.Fprintf(w, "Project %d already has %d API key(s); the admin key was printed when the demo first ran.\n", pid, dk.Existing)
		if dk.Dev != "" {
			fmt.Fprintf(w, "  development API key (Ingestion): %s\n", dk.Dev)
		}
		if dk.HMAC != "" {
			fmt.Fprintf(w, "  development HMAC key:            %s\n", dk.HMAC)
		}
		return
	}
	fmt.Fprintf(w, "Created keys for project %d (shown once; the admin key is not stored readable):\n", pid)
	fmt.Fprintf(w, "  admin API key:                      %s\n", dk.Admin)
	fmt.Fprintf(w, "  development API key (Ingestion):    %s\n", dk.Dev)
	fmt.Fprintf(w, "  read-only API key:                  %s\n", dk.ReadOnly)
	fmt.Fprintf(w, "  development HMAC key:               %s\n", dk.HMAC)
}

func printDemoAddrs(w io.Writer, addrs map[string]string, uploads string) {
	for k, v := range addrs {
		if h, p, err := net.SplitHostPort(v); err == nil && (h == "::" || h == "0.0.0.0" || h == "") {
			addrs[k] = "localhost:" + p
		}
	}
	fmt.Fprintf(w, "\nkeygate demo is running (stop with Ctrl-C):\n")
	fmt.Fprintf(w, "  Studio API     http://%s  (try: curl -H \"x-api-key: $KEY\" http://%s/v1/api/projects)\n", addrs["studio"], addrs["studio"])
	fmt.Fprintf(w, "  ingestion API  http://%s  (uploads are stored under %s)\n", addrs["ingestion"], uploads)
	fmt.Fprintf(w, "  remote mgmt    ws://%s  (devices send {\"hello\": {\"apiKey\": …}} first)\n", addrs["remote"])
	fmt.Fprintf(w, "  Keys page      http://%s/keys  (sign in with the admin key)\n", addrs["studio"])
	fmt.Fprintf(w, "  ops            http://%s/metrics, /healthz, /readyz\n", addrs["ops"])
	fmt.Fprintf(w, "  privileged block  curl -X POST -H \"x-api-key: $ADMIN_KEY\" http://%s/v1/api/<project>/jobs/privileged-block\n", addrs["studio"])
	fmt.Fprintf(w, "  The platform's CLI tools reach it with EI_HOST=localhost.\n\n")
}

// StartStandIns points every face of cfg that has no upstream at a built-in stand-in (the Studio
// and ingestion backend, storing uploads under DataDir/uploads, and the remote-management server),
// so `keygate demo` serves all three faces with no real backend. The Studio stand-in runs the
// privileged-deployment-block job with runner, which fetches development keys from the ops
// listener: without KEYGATE_SERVICE_TOKEN_FILE, a token is generated into DataDir/service-token.
// Call runner.SetAddrs once keygate listens. stop closes the stand-ins.
func StartStandIns(cfg *Config) (uploads string, runner *standin.Privileged, stop func(), err error) {
	var servers []*http.Server
	stop = func() {
		for _, s := range servers {
			s.Close()
		}
	}
	serve := func(what string, h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("stand-in %s: %w", what, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(ln) }()
		return ln.Addr().String(), nil
	}
	token, err := demoServiceToken(cfg)
	if err != nil {
		return "", nil, stop, err
	}
	runner = &standin.Privileged{Token: token}
	uploads = filepath.Join(cfg.DataDir, "uploads")
	addr, err := serve("backend", &standin.Backend{Dir: uploads, Privileged: runner})
	if err != nil {
		return "", nil, stop, err
	}
	if cfg.StudioUpstream == "" {
		cfg.StudioUpstream = "http://" + addr
	}
	if cfg.IngestionUpstream == "" {
		cfg.IngestionUpstream = "http://" + addr
	}
	if cfg.RemoteUpstream == "" {
		addr, err := serve("remote management", standin.Remote{})
		if err != nil {
			return "", nil, stop, err
		}
		cfg.RemoteUpstream = "ws://" + addr
	}
	return uploads, runner, stop, nil
}

// demoServiceToken returns the service token the demo's runner uses: the configured file's, or a
// new one written to DataDir/service-token (readable by the owner only) and configured.
func demoServiceToken(cfg *Config) (string, error) {
	if cfg.ServiceTokenFile != "" {
		b, err := os.ReadFile(cfg.ServiceTokenFile)
		if err != nil {
			return "", fmt.Errorf("KEYGATE_SERVICE_TOKEN_FILE: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	token := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("demo service token: %w", err)
	}
	path := filepath.Join(cfg.DataDir, "service-token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("demo service token: %w", err)
	}
	cfg.ServiceTokenFile = path
	return token, nil
}

// DemoKeys are the keys `keygate demo` creates for its project on first start. Admin and ReadOnly
// are empty when the project already had keys (they are not stored readable); Existing is then
// how many it had.
type DemoKeys struct {
	Existing                   int
	Admin, Dev, ReadOnly, HMAC string
}

// EnsureDemoKeys creates the demo project's admin, development, read-only and HMAC keys once; on
// later starts it returns the development keys it can read back.
func EnsureDemoKeys(ctx context.Context, sc StoreConfig, pid int64) (DemoKeys, error) {
	s, err := sc.Open()
	if err != nil {
		return DemoKeys{}, err
	}
	defer s.Close()
	existing, err := s.ListAPIKeys(ctx, pid)
	if err != nil {
		return DemoKeys{}, err
	}
	if len(existing) > 0 {
		dk := DemoKeys{Existing: len(existing)}
		if api, hk, err := keys.DevelopmentKeys(ctx, s, pid); err == nil {
			if api != nil {
				dk.Dev = api.DevSecret
			}
			if hk != nil {
				dk.HMAC = hk.Secret
			}
		}
		return dk, nil
	}
	var dk DemoKeys
	for _, k := range []struct {
		key  *string
		name string
		role keys.Role
		dev  bool
	}{
		{&dk.Admin, "Demo admin key", keys.RoleAdmin, false},
		{&dk.Dev, "Demo development key", keys.RoleIngestion, true},
		{&dk.ReadOnly, "Demo read-only key", keys.RoleReadOnly, false},
	} {
		if *k.key, err = keys.GenerateAPIKey(); err != nil {
			return DemoKeys{}, err
		}
		if _, err := s.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: pid, Name: k.name, Role: k.role, IsDevelopmentKey: k.dev, Key: *k.key}); err != nil {
			return DemoKeys{}, fmt.Errorf("create %s: %w", k.name, err)
		}
	}
	if dk.HMAC, err = keys.GenerateHMACKey(); err != nil {
		return DemoKeys{}, err
	}
	if _, err := s.CreateHMACKey(ctx, keys.NewHMACKey{ProjectID: pid, Name: "Demo HMAC key", Secret: dk.HMAC, IsDevelopmentKey: true}); err != nil {
		return DemoKeys{}, errors.Join(errors.New("create the demo HMAC key"), err)
	}
	return dk, nil
}

// demoOnLoopback binds every listener the environment did not name to 127.0.0.1: the demo prints
// its keys in clear and fronts stand-in backends, so it is reachable from this machine only unless
// a KEYGATE_*_LISTEN variable says otherwise (serve keeps listening on every interface).
func demoOnLoopback(cfg *Config, lookup func(string) (string, bool)) {
	for _, l := range []struct {
		env  string
		addr *string
	}{
		{"KEYGATE_STUDIO_LISTEN", &cfg.StudioListen}, {"KEYGATE_INGESTION_LISTEN", &cfg.IngestionListen},
		{"KEYGATE_REMOTE_LISTEN", &cfg.RemoteListen}, {"KEYGATE_OPS_LISTEN", &cfg.OpsListen},
	} {
		if _, set := lookup(l.env); !set && strings.HasPrefix(*l.addr, ":") {
			*l.addr = "127.0.0.1" + *l.addr
		}
	}
}
