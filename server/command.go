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
	s, err := New(cfg, Options{Log: log, LogOutput: logOutput, Version: version})
	if err != nil {
		return err
	}
	return s.Run(ctx)
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
