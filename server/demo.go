package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/keygate/keygate/internal/standin"
	"github.com/keygate/keygate/keys"
)

// StartStandIns points every face of cfg that has no upstream at a built-in stand-in (the Studio
// and ingestion backend, storing uploads under DataDir/uploads, and the remote-management server),
// so `keygate demo` serves all three faces with no real backend. stop closes the stand-ins.
func StartStandIns(cfg *Config) (uploads string, stop func(), err error) {
	var servers []*http.Server
	stop = func() {
		for _, s := range servers {
			s.Close()
		}
	}
	serve := func(what string, h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("stand-in %s: %w", what, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(ln) }()
		return ln.Addr().String(), nil
	}
	uploads = filepath.Join(cfg.DataDir, "uploads")
	addr, err := serve("backend", &standin.Backend{Dir: uploads})
	if err != nil {
		return "", stop, err
	}
	if cfg.StudioUpstream == "" {
		cfg.StudioUpstream = "http://" + addr
	}
	if cfg.IngestionUpstream == "" {
		cfg.IngestionUpstream = "http://" + addr
	}
	if cfg.RemoteUpstream == "" {
		addr, err := serve("remote management", standin.Remote{})
		if err != nil {
			return "", stop, err
		}
		cfg.RemoteUpstream = "ws://" + addr
	}
	return uploads, stop, nil
}

// DemoKeys are the keys `keygate demo` creates for its project on first start. Admin and ReadOnly
// are empty when the project already had keys (they are not stored readable); Existing is then
// how many it had.
type DemoKeys struct {
	Existing                   int
	Admin, Dev, ReadOnly, HMAC string
}

// EnsureDemoKeys creates the demo project's admin, development, read-only and HMAC keys once; on
// later starts it returns the development keys it can read back.
func EnsureDemoKeys(ctx context.Context, sc StoreConfig, pid int64) (DemoKeys, error) {
	s, err := sc.Open()
	if err != nil {
		return DemoKeys{}, err
	}
	defer s.Close()
	existing, err := s.ListAPIKeys(ctx, pid)
	if err != nil {
		return DemoKeys{}, err
	}
	if len(existing) > 0 {
		dk := DemoKeys{Existing: len(existing)}
		if api, hk, err := keys.DevelopmentKeys(ctx, s, pid); err == nil {
			if api != nil {
				dk.Dev = api.DevSecret
			}
			if hk != nil {
				dk.HMAC = hk.Secret
			}
		}
		return dk, nil
	}
	var dk DemoKeys
	for _, k := range []struct {
		key  *string
		name string
		role keys.Role
		dev  bool
	}{
		{&dk.Admin, "Demo admin key", keys.RoleAdmin, false},
		{&dk.Dev, "Demo development key", keys.RoleIngestion, true},
		{&dk.ReadOnly, "Demo read-only key", keys.RoleReadOnly, false},
	} {
		if *k.key, err = keys.GenerateAPIKey(); err != nil {
			return DemoKeys{}, err
		}
		if _, err := s.CreateAPIKey(ctx, keys.NewAPIKey{ProjectID: pid, Name: k.name, Role: k.role, IsDevelopmentKey: k.dev, Key: *k.key}); err != nil {
			return DemoKeys{}, fmt.Errorf("create %s: %w", k.name, err)
		}
	}
	if dk.HMAC, err = keys.GenerateHMACKey(); err != nil {
		return DemoKeys{}, err
	}
	if _, err := s.CreateHMACKey(ctx, keys.NewHMACKey{ProjectID: pid, Name: "Demo HMAC key", Secret: dk.HMAC, IsDevelopmentKey: true}); err != nil {
		return DemoKeys{}, errors.Join(errors.New("create the demo HMAC key"), err)
	}
	return dk, nil
}
