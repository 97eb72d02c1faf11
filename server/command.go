package server

import (
	"io"
	"log/slog"

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
