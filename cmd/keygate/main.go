// Command keygate is the authentication gateway for the platform's Studio, ingestion and remote
// management APIs, and the tool that manages its keys. Run `keygate help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/keygate/keygate/server"
)

// version is stamped at build time: go build -ldflags "-X main.version=1.2.3".
var version = ""

// commands are keygate's commands; each group (keys, hmac, …) dispatches its own with subcommands.
func commands() []sub {
	return []sub{
		{"serve", "run the gateway (configured from KEYGATE_* environment variables)", runServe},
		{"demo", "run the gateway with the embedded store and a built-in stand-in backend", runDemo},
		{"keys", "manage API keys: create, list, revoke, roll", runKeys},
		{"hmac", "manage HMAC keys: create, list, delete, roll", runHMAC},
		{"audit", "show a project's audit trail (who created, rolled, revoked keys)", showCmd("audit", " (the shape of GET /v1/api/{projectId}/audit)", nil, auditFlags)},
		{"devkeys", "show a project's development keys", showCmd("devkeys", " (the shape of GET /v1/api/{projectId}/devkeys)", readDevKeys)},
		{"settings", "show or change a project's settings", runSettings},
		{"limits", "set, show or clear a project's or a key's rate limit", runLimits},
		{"sign", "sign a data acquisition file with an HMAC key", runSign},
		{"verify", "verify a signed data acquisition file", runVerify},
		{"version", "print the version", runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit status: 0 ok, 1 failure, 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return exitStatus(subcommands("", commands()...)(ctx, args, stdout, stderr), stderr)
}

// exitStatus is the one place an error becomes the exit status and its line on stderr.
func exitStatus(err error, stderr io.Writer) int {
	var ce server.ConfigError
	var se silentError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &se):
		return se.code
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "keygate: %s\n", ce.Error())
		return 2
	}
	fmt.Fprintf(stderr, "keygate: %v\n", err)
	return 1
}

// usagef is a bad flag or value: one line on stderr, exit status 2.
func usagef(format string, a ...any) error { return server.ConfigErrorf(format, a...) }

// silentError ends a command with a status after it has printed its own message.
type silentError struct{ code int }

func (e silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(newFlagSet("version"), args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "keygate %s\n", server.Version(version))
	return nil
}

// newFlagSet makes a FlagSet that prints nothing itself: parseFlags turns its errors into one usage
// line (exit 2) and --help into the command's usage on stdout (exit 0).
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args, printing the usage on --help and turning other errors into one line.
func parseFlags(fs *flag.FlagSet, args []string, synopsis ...string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(fs, synopsis...)
		return flag.ErrHelp
	}
	if err != nil {
		return usagef("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 && len(synopsis) == 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

func printUsage(fs *flag.FlagSet, synopsis ...string) {
	w := os.Stdout
	line := "keygate " + fs.Name() + " [flags]"
	if len(synopsis) > 0 {
		line = "keygate " + fs.Name() + " " + synopsis[0]
	}
	fmt.Fprintf(w, "usage: %s\n", line)
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  --%-14s %s%s\n", f.Name, f.Usage, def)
	})
}

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
	return server.Serve(ctx, stderr, server.Version(version))
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
	return server.RunDemo(ctx, cfg, *project, server.Options{LogOutput: stderr, Version: server.Version(version)}, stdout)
}
