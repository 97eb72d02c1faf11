package main

import (
	"errors"
	"fmt"
	"log/slog"
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

// warnPlaintext is the loud warning for secrets stored without encryption.
func warnPlaintext(log *slog.Logger) {
	log.Warn("KEYGATE_MASTER_KEY is not set: HMAC keys and the development API key are stored UNENCRYPTED. " +
		"Set a 32-byte key (e.g. `openssl rand -hex 32`) before storing real secrets.")
}
