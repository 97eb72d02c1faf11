package main

import (
	"fmt"
	"io"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server"
)

// usageError is a bad flag or configuration value: one line on stderr, exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// withStore opens the configured store, which must exist, for one command that reads or changes keys.
func withStore(fn func(keys.Store) error) error {
	return openWith(func(c server.StoreConfig) (keys.Store, error) { return c.OpenExisting() }, fn)
}

// withNewStore opens the configured store for a command that creates keys: the only commands that
// may create the embedded store (they say so on stderr when they do).
func withNewStore(stderr io.Writer, fn func(keys.Store) error) error {
	return openWith(func(c server.StoreConfig) (keys.Store, error) { return c.OpenOrCreate(stderr) }, fn)
}

func openWith(open func(server.StoreConfig) (keys.Store, error), fn func(keys.Store) error) error {
	cfg, err := server.LoadStoreConfig()
	if err != nil {
		return err
	}
	s, err := open(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}
