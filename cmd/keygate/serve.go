package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/keygate/keygate/server"
)

// runServe reads the configuration from the environment and runs keygate until SIGTERM or SIGINT.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" || a == "help" {
			server.WriteUsage(stdout)
			return nil
		}
	}
	if err := parseFlags(newFlagSet("serve"), args); err != nil {
		return err
	}
	cfg, err := server.LoadConfig()
	if err != nil {
		return err
	}
	log := server.NewLogger(cfg, stderr)
	slog.SetDefault(log)
	server.WarnUnknownVariables(log, os.Environ())
	s, err := server.New(cfg, server.Options{Log: log, LogOutput: stderr, Version: versionString()})
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

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
	return server.RunDemo(ctx, cfg, *project, server.Options{LogOutput: stderr, Version: versionString()}, stdout)
}
