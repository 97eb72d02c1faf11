package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/keygate/keygate/server"
)

// runDemo starts the gateway on its default ports with the embedded store, in front of built-in
// stand-in backends, and creates project 1's keys on first start.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo")
	project := fs.Int64("project", 1, "the demo project's id")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := server.LoadDefaults()
	if err != nil {
		return err
	}
	if cfg.RedisURL != "" {
		fmt.Fprintln(stderr, "keygate demo: using the Redis store from KEYGATE_REDIS_URL")
	}
	dk, err := server.EnsureDemoKeys(ctx, cfg.StoreConfig, *project)
	if err != nil {
		return err
	}
	printDemoKeys(stdout, *project, dk)
	uploads, stop, err := server.StartStandIns(&cfg)
	defer stop()
	if err != nil {
		return err
	}
	if cfg.LogFormat == "json" {
		cfg.LogFormat = "text"
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	s, err := server.New(cfg, server.Options{Log: server.NewLogger(cfg, stderr), LogOutput: stderr, Version: versionString(),
		OnReady: func(addrs map[string]string) { printDemoAddrs(stdout, addrs, uploads) }})
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

func printDemoKeys(w io.Writer, pid int64, dk server.DemoKeys) {
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
	fmt.Fprintf(w, "  The platform's CLI tools reach it with EI_HOST=localhost.\n\n")
}
