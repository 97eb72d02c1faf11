package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/keygate/keygate/keys"
)

// WithStore opens the configured key store for one management command, runs fn on it and closes
// it. With create nil the store must exist (StoreConfig.OpenExisting: a mistyped KEYGATE_DATA_DIR
// is an error, not a new empty store); with create set, the command may create the embedded store
// and says so there (StoreConfig.OpenOrCreate). The command line only chooses which.
func WithStore(create io.Writer, fn func(keys.Store) error) error {
	cfg, err := LoadStoreConfig()
	if err != nil {
		return err
	}
	var s keys.Store
	if create != nil {
		s, err = cfg.OpenOrCreate(create)
	} else {
		s, err = cfg.OpenExisting()
	}
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

// WarnPlaintextTo writes WarnPlaintext's warning to w when HMAC keys are about to be stored
// without KEYGATE_MASTER_KEY (the commands that store secrets call it first).
func WarnPlaintextTo(w io.Writer) {
	if cfg, err := LoadStoreConfig(); err == nil && cfg.MasterKey == "" {
		WarnPlaintext(slog.New(slog.NewTextHandler(w, nil)))
	}
}

// Serve is `keygate serve`: the configuration from the environment, logging set up (slog's
// default and go-redis's), a warning for each unknown KEYGATE_* variable, then New and Run until
// ctx ends. Logs go to logOutput.
func Serve(ctx context.Context, logOutput io.Writer, version string) error {
	cfg, err := LoadConfig()
	if err != nil {
		return err
	}
	log := NewLogger(cfg, logOutput)
	slog.SetDefault(log)
	SetRedisLogger(log)
	WarnUnknownVariables(log, os.Environ())
	TuneGC(os.LookupEnv)
	s, err := New(cfg, Options{Log: log, LogOutput: logOutput, Version: version})
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// DefaultGCPercent is the garbage collector's target keygate runs with unless GOGC is set: 400
// (heap may grow to five times what is live) instead of Go's 100. keygate's live heap is small
// (cached principals, limiter state: a few MiB) and every proxied request allocates a few KiB that
// die at once, so at 100 the collector runs every few thousand requests and costs ~8% of the CPU
// of a request (callgrind, docs/benchmarks.md); at 400 it runs a quarter as often. GOMEMLIMIT,
// when set (the Kubernetes manifests set it below the container's limit), still makes the
// collector work harder as the heap nears it, so the larger target cannot outgrow the container.
const DefaultGCPercent = 400

// TuneGC sets the collector's target to DefaultGCPercent unless the operator chose one with GOGC
// (lookup is os.LookupEnv); it reports whether it did.
func TuneGC(lookup func(string) (string, bool)) bool {
	if _, set := lookup("GOGC"); set {
		return false
	}
	debug.SetGCPercent(DefaultGCPercent)
	return true
}

// Version is the version keygate reports: stamped at build time when set, else the module
// version go install recorded, else "dev".
func Version(stamped string) string {
	if stamped != "" {
		return stamped
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
