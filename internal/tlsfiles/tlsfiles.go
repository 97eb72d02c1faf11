// Package tlsfiles keeps TLS material loaded from PEM files current: a certificate and key pair (a
// face's serving certificate, or the client certificate for upstreams) and a CA bundle. The files
// are polled, so a rotation by cert-manager (which swaps a symlink in the mounted Secret's
// directory) is picked up without a restart and without touching open connections; a bad new pair
// keeps the previous one in use and the reason is logged.
package tlsfiles

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// PollInterval is how often the files are checked for a change.
const PollInterval = time.Second

// stamp identifies a file's content cheaply: os.Stat follows symlinks, so a swapped symlink gives a
// different inode or time even when the size is the same.
type stamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func stat(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{fi.ModTime(), fi.Size(), inode(fi)}, nil
}

// Pair is a certificate and key pair reloaded from two PEM files.
type Pair struct {
	certFile, keyFile, name string
	log                     *slog.Logger
	cur                     atomic.Pointer[tls.Certificate]
	mu                      sync.Mutex
	stamps                  [2]stamp
	lastErr                 string
}

// LoadPair loads the pair once (an error here is a configuration error) and returns it; Watch
// keeps it current. name says which pair it is in logs ("faces", "upstream client").
func LoadPair(certFile, keyFile, name string, log *slog.Logger) (*Pair, error) {
	p := &Pair{certFile: certFile, keyFile: keyFile, name: name, log: log}
	if err := p.reload(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Pair) reload() error {
	cs, err := stat(p.certFile)
	if err != nil {
		return err
	}
	ks, err := stat(p.keyFile)
	if err != nil {
		return err
	}
	c, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		return fmt.Errorf("load %s and %s: %w", p.certFile, p.keyFile, err)
	}
	if c.Leaf == nil && len(c.Certificate) > 0 {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return fmt.Errorf("parse %s: %w", p.certFile, err)
		}
	}
	p.cur.Store(&c)
	p.stamps = [2]stamp{cs, ks}
	return nil
}

// Check reloads the pair if either file changed. A pair that does not load keeps the previous one;
// the reason is logged once per distinct error and the load is retried at the next check (the two
// files of a rotation may be seen half-replaced).
func (p *Pair) Check() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs, err1 := stat(p.certFile)
	ks, err2 := stat(p.keyFile)
	if err1 == nil && err2 == nil && [2]stamp{cs, ks} == p.stamps {
		return
	}
	old := p.cur.Load()
	if err := p.reload(); err != nil {
		if msg := err.Error(); msg != p.lastErr {
			p.lastErr = msg
			p.log.Warn("TLS certificate files changed but do not load: keeping the previous certificate",
				"cert", p.name, "err", msg, "serving_until", old.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		return
	}
	p.lastErr = ""
	c := p.cur.Load()
	p.log.Info("TLS certificate reloaded", "cert", p.name, "subject", c.Leaf.Subject.String(),
		"not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
}

// Certificate is the current pair.
func (p *Pair) Certificate() *tls.Certificate { return p.cur.Load() }

// NotAfter is when the current certificate expires.
func (p *Pair) NotAfter() time.Time { return p.cur.Load().Leaf.NotAfter }

// GetCertificate is for tls.Config.GetCertificate (serving).
func (p *Pair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return p.cur.Load(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate (mTLS to upstreams).
func (p *Pair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return p.cur.Load(), nil
}

// Pool is a CA bundle added to the system roots, reloaded from its PEM file.
type Pool struct {
	file    string
	log     *slog.Logger
	cur     atomic.Pointer[x509.CertPool]
	mu      sync.Mutex
	stamp   stamp
	lastErr string
}

// LoadPool loads the bundle once; Watch keeps it current.
func LoadPool(file string, log *slog.Logger) (*Pool, error) {
	p := &Pool{file: file, log: log}
	if err := p.reload(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Pool) reload() error {
	st, err := stat(p.file)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(p.file)
	if err != nil {
		return err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return fmt.Errorf("%s: no PEM certificate in it", p.file)
	}
	p.cur.Store(pool)
	p.stamp = st
	return nil
}

// Check reloads the bundle if the file changed (a bad new file keeps the previous bundle).
func (p *Pool) Check() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, err := stat(p.file); err == nil && st == p.stamp {
		return
	}
	if err := p.reload(); err != nil {
		if msg := err.Error(); msg != p.lastErr {
			p.lastErr = msg
			p.log.Warn("CA file changed but does not load: keeping the previous roots", "file", p.file, "err", msg)
		}
		return
	}
	p.lastErr = ""
	p.log.Info("upstream CA roots reloaded", "file", p.file)
}

// Roots is the current pool (system roots plus the file's).
func (p *Pool) Roots() *x509.CertPool { return p.cur.Load() }

// Checker is a Pair or a Pool.
type Checker interface{ Check() }

// Watch checks each of cs every PollInterval until ctx ends.
func Watch(ctx context.Context, cs ...Checker) {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, c := range cs {
				c.Check()
			}
		}
	}
}

// Client is the TLS side of keygate's connections to https and wss upstreams: extra roots
// (KEYGATE_UPSTREAM_CA_FILE) and a client certificate (mTLS), both reloaded. Either may be nil.
type Client struct {
	Roots *Pool
	Cert  *Pair
}

// Config is the tls.Config for one new connection to serverName, built from the current files
// (an open connection keeps what it was made with).
func (c *Client) Config(serverName string, nextProtos ...string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, NextProtos: nextProtos}
	if c.Roots != nil {
		cfg.RootCAs = c.Roots.Roots()
	}
	if c.Cert != nil {
		cfg.GetClientCertificate = c.Cert.GetClientCertificate
	}
	return cfg
}

// DialFunc is the shape of net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dialer wraps dial into a TLS dialer (for http.Transport.DialTLSContext and
// websocket.Dialer.NetDialTLSContext) that handshakes with Config(host, nextProtos...).
func (c *Client) Dialer(dial DialFunc, nextProtos ...string) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(conn, c.Config(host, nextProtos...))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
}
