package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/keygate/keygate/server"
)

// runServe reads the configuration from the environment and runs keygate until SIGTERM or SIGINT.
func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("serve")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := server.LoadConfig()
	if err != nil {
		return err
	}
	log := server.NewLogger(cfg, stderr)
	slog.SetDefault(log)
	s, err := server.New(cfg, server.Options{Log: log, LogOutput: stderr, Version: versionString()})
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
