package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/keygate/keygate/internal/standin"
	"github.com/keygate/keygate/keys"
)

// runDemo starts the gateway on its default ports with the embedded store, in front of a built-in
// stand-in backend, and creates project 1's keys on first start.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo")
	project := fs.Int64("project", 1, "the demo project's id")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadServeConfigNoValidate()
	if err != nil {
		return err
	}
	if cfg.RedisURL != "" {
		fmt.Fprintln(stderr, "keygate demo: using the Redis store from KEYGATE_REDIS_URL")
	}
	if err := demoKeys(ctx, cfg.StoreConfig, *project, stdout); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("stand-in backend: %w", err)
	}
	dir := filepath.Join(cfg.DataDir, "uploads")
	backend := &http.Server{Handler: &standin.Backend{Dir: dir}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = backend.Serve(ln) }()
	defer backend.Close()
	up := "http://" + ln.Addr().String()
	if cfg.StudioUpstream == "" {
		cfg.StudioUpstream = up
	}
	if cfg.IngestionUpstream == "" {
		cfg.IngestionUpstream = up
	}
	if cfg.RemoteUpstream == "" {
		rln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("stand-in remote management: %w", err)
		}
		rsrv := &http.Server{Handler: standin.Remote{}, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = rsrv.Serve(rln) }()
		defer rsrv.Close()
		cfg.RemoteUpstream = "ws://" + rln.Addr().String()
	}
	if cfg.LogFormat == "json" {
		cfg.LogFormat = "text"
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	return serve(ctx, cfg, log, stderr, func(addrs map[string]string) {
		for k, v := range addrs {
			if h, p, err := net.SplitHostPort(v); err == nil && (h == "::" || h == "0.0.0.0" || h == "") {
				addrs[k] = "localhost:" + p
			}
		}
		fmt.Fprintf(stdout, "\nkeygate demo is running (stop with Ctrl-C):\n")
		fmt.Fprintf(stdout, "  Studio API     http://%s  (try: curl -H \"x-api-key: $KEY\" http://%s/v1/api/projects)\n", addrs["studio"], addrs["studio"])
		fmt.Fprintf(stdout, "  ingestion API  http://%s  (uploads are stored under %s)\n", addrs["ingestion"], dir)
		fmt.Fprintf(stdout, "  remote mgmt    ws://%s  (devices send {\"hello\": {\"apiKey\": …}} first)\n", addrs["remote"])
		fmt.Fprintf(stdout, "  Keys page      http://%s/keys  (sign in with the admin key)\n", addrs["studio"])
		fmt.Fprintf(stdout, "  ops            http://%s/metrics, /healthz, /readyz\n", addrs["ops"])
		fmt.Fprintf(stdout, "  The platform's CLI tools reach it with EI_HOST=localhost.\n\n")
	})
}

// demoKeys creates the demo project's admin key and development keys once, and prints them.
func demoKeys(ctx context.Context, sc StoreConfig, pid int64, stdout io.Writer) error {
	s, err := sc.open()
	if err != nil {
		return err
	}
	defer s.Close()
	existing, err := s.ListAPIKeys(ctx, pid)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		fmt.Fprintf(stdout, "Project %d already has %d API key(s); the admin key was printed when the demo first ran.\n", pid, len(existing))
		if api, hk, err := keys.DevelopmentKeys(ctx, s, pid); err == nil {
			if api != nil {
				fmt.Fprintf(stdout, "  development API key (%s): %s\n", api.Role.Label(), api.DevSecret)
			}
			if hk != nil {
				fmt.Fprintf(stdout, "  development HMAC key:      %s\n", hk.Secret)
			}
		}
		return nil
	}
	adminKey, err := keys.GenerateAPIKey()
	if err != nil {
		return err
	}
	if _, err := s.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: pid, Name: "Demo admin key", Role: keys.RoleAdmin, Key: adminKey}); err != nil {
		return err
	}
	devKey, err := keys.GenerateAPIKey()
	if err != nil {
		return err
	}
	if _, err := s.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: pid, Name: "Demo development key", Role: keys.RoleIngestion, IsDevelopmentKey: true, Key: devKey}); err != nil {
		return err
	}
	roKey, err := keys.GenerateAPIKey()
	if err != nil {
		return err
	}
	if _, err := s.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: pid, Name: "Demo read-only key", Role: keys.RoleReadOnly, Key: roKey}); err != nil {
		return err
	}
	hmacKey, err := keys.GenerateHMACKey()
	if err != nil {
		return err
	}
	if _, err := s.CreateHMACKey(ctx, keys.NewHMACKey{ProjectID: pid, Name: "Demo HMAC key", Secret: hmacKey, IsDevelopmentKey: true}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created keys for project %d (shown once; the admin key is not stored readable):\n", pid)
	fmt.Fprintf(stdout, "  admin API key:                      %s\n", adminKey)
	fmt.Fprintf(stdout, "  development API key (Ingestion):    %s\n", devKey)
	fmt.Fprintf(stdout, "  read-only API key:                  %s\n", roKey)
	fmt.Fprintf(stdout, "  development HMAC key:               %s\n", hmacKey)
	return nil
}
