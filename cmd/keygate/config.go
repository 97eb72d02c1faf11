package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/caarlos0/env/v11"

	"github.com/keygate/keygate/keys"
)

// StoreConfig selects and opens the key store. It is shared by `keygate serve` and every key
// command, so both always see the same keys.
type StoreConfig struct {
	// RedisURL selects the Redis store (redis://, rediss://, redis+sentinel://, redis+cluster://).
	// Empty: the embedded bbolt store under DataDir.
	RedisURL string `env:"KEYGATE_REDIS_URL"`
	// DataDir holds the embedded store's file. Default ./keygate-data.
	DataDir string `env:"KEYGATE_DATA_DIR" envDefault:"./keygate-data"`
	// MasterKey (32 bytes, hex or base64) encrypts HMAC keys and the development API key at rest.
	// Unset: they are stored in plain text and keygate warns at start.
	MasterKey string `env:"KEYGATE_MASTER_KEY"`
}

// loadStoreConfig reads the store settings from the environment.
func loadStoreConfig() (StoreConfig, error) {
	var c StoreConfig
	if err := env.Parse(&c); err != nil {
		return c, configError(err)
	}
	return c, nil
}

// usageError is a bad flag or configuration value: one line on stderr, exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// configError turns caarlos0/env's aggregate error into one usage error naming the variables.
func configError(err error) error {
	var agg env.AggregateError
	if errors.As(err, &agg) {
		msgs := make([]string, 0, len(agg.Errors))
		for _, e := range agg.Errors {
			msgs = append(msgs, e.Error())
		}
		return usageError{"configuration: " + strings.Join(msgs, "; ")}
	}
	return usageError{"configuration: " + err.Error()}
}

// sealer builds the Sealer from KEYGATE_MASTER_KEY (nil when unset).
func (c StoreConfig) sealer() (*keys.Sealer, error) {
	if c.MasterKey == "" {
		return nil, nil
	}
	mk, err := keys.ParseMasterKey(c.MasterKey)
	if err != nil {
		return nil, usagef("KEYGATE_MASTER_KEY: %v", err)
	}
	return keys.NewSealer(mk)
}

// open opens the configured store.
func (c StoreConfig) open() (keys.Store, error) {
	sealer, err := c.sealer()
	if err != nil {
		return nil, err
	}
	if c.RedisURL != "" {
		rdb, err := keys.NewRedisClient(c.RedisURL)
		if err != nil {
			return nil, usagef("KEYGATE_REDIS_URL: %v", err)
		}
		return keys.NewRedisStore(rdb, sealer), nil
	}
	s, err := keys.OpenBolt(c.DataDir, sealer, 0)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ErrNoStore: a command that only reads or changes keys found no embedded store where it looked.
var ErrNoStore = errors.New("no key store")

// boltPath is where the embedded store's file is (absolute when it can be, so an operator sees
// which directory a relative KEYGATE_DATA_DIR meant).
func (c StoreConfig) boltPath() string {
	p := filepath.Join(c.DataDir, keys.DataFileName)
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// openExisting opens the configured store for a command that reads or changes keys: on the
// embedded store it refuses to create a file (or directory) that is not there, because a mistyped
// KEYGATE_DATA_DIR would otherwise answer from a new, empty store.
func (c StoreConfig) openExisting() (keys.Store, error) {
	if _, err := c.sealer(); err != nil { // a bad setting is reported before a missing store
		return nil, err
	}
	if c.RedisURL == "" {
		path := c.boltPath()
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s: set KEYGATE_DATA_DIR to the directory that holds %s, or KEYGATE_REDIS_URL to use Redis "+
				"(`keygate keys create` or `keygate hmac create` makes a new store)", ErrNoStore, path, keys.DataFileName)
		} else if err != nil {
			return nil, fmt.Errorf("key store %s: %w", path, err)
		}
	}
	return c.open()
}

// openOrCreate opens the configured store for a command that creates keys, creating the embedded
// store if it is not there and saying where on stderr.
func (c StoreConfig) openOrCreate(stderr io.Writer) (keys.Store, error) {
	if c.RedisURL != "" {
		return c.open()
	}
	path := c.boltPath()
	_, statErr := os.Stat(path)
	s, err := c.open()
	if err == nil && errors.Is(statErr, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "Created a new key store at %s (KEYGATE_DATA_DIR; set KEYGATE_REDIS_URL to use Redis instead).\n", path)
	}
	return s, err
}

// warnPlaintext is the loud warning for secrets stored without encryption.
func warnPlaintext(log *slog.Logger) {
	log.Warn("KEYGATE_MASTER_KEY is not set: HMAC keys and the development API key are stored UNENCRYPTED. " +
		"Set a 32-byte key (e.g. `openssl rand -hex 32`) before storing real secrets.")
}
