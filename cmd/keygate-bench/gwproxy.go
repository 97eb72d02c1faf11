package main

import (
	"bufio"
	"context"
	"log"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/keygate/keygate/cache"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/proxy"
)

// mapLookup is an in-memory key table for gwproxy.
type mapLookup map[keys.Hash]keys.Principal

func (m mapLookup) LookupAPIKey(_ context.Context, h keys.Hash) (keys.Principal, error) {
	if p, ok := m[h]; ok {
		return p, nil
	}
	return keys.Principal{}, keys.ErrNotFound
}

// runGatewayProxy serves keygate's own proxy.Gateway (route, identify, authorize, rewrite) with the
// bare proxy's server settings and no store, metrics or log: it separates the gateway's own cost
// from the rest of `keygate serve` when the two are compared.
func runGatewayProxy(addr, upstream, keysFile string) {
	up, err := url.Parse(upstream)
	if err != nil {
		log.Fatal(err)
	}
	m := mapLookup{}
	f, err := os.Open(keysFile)
	if err != nil {
		log.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" {
			m[keys.HashKey(k)] = keys.Principal{KeyID: 1, ProjectID: 1, Role: keys.RoleAdmin}
		}
	}
	f.Close()
	g := proxy.New(proxy.Options{
		Face: policy.FaceStudio, Upstream: up, Resolver: cache.NewResolver(m, cache.Options{}),
		Transport: proxy.NewTransport(proxy.TransportOptions{DialTimeout: 5 * time.Second, ResponseHeaderTimeout: 60 * time.Second}),
	})
	log.Fatal((&http.Server{Addr: addr, Handler: g, ReadHeaderTimeout: 10 * time.Second}).ListenAndServe())
}
