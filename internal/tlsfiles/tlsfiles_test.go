package tlsfiles

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testpki"
)

// secretDir lays files out as a Kubernetes Secret volume does: dir/..data -> a timestamped
// directory, dir/tls.crt -> ..data/tls.crt. swap replaces the content by switching ..data.
type secretDir struct {
	t   *testing.T
	dir string
	n   int
}

func (s *secretDir) swap(cert, key []byte) {
	s.t.Helper()
	s.n++
	ts := filepath.Join(s.dir, "..ts"+string(rune('0'+s.n)))
	if err := os.Mkdir(ts, 0o700); err != nil {
		s.t.Fatal(err)
	}
	testpki.Write(s.t, ts, "tls.crt", cert)
	testpki.Write(s.t, ts, "tls.key", key)
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		s.t.Fatal(err)
	}
	if s.n == 1 {
		for _, f := range []string{"tls.crt", "tls.key"} {
			if err := os.Symlink(filepath.Join("..data", f), filepath.Join(s.dir, f)); err != nil {
				s.t.Fatal(err)
			}
		}
	}
}

// TestPairRotation: a symlink swap is picked up by Check; a bad new pair keeps the old one and
// says why; a good pair after it is taken.
func TestPairRotation(t *testing.T) {
	ca := testpki.NewCA(t)
	sd := &secretDir{t: t, dir: t.TempDir()}
	c1, k1 := ca.Leaf(t, "one", time.Now().Add(time.Hour))
	sd.swap(c1, k1)
	var logs bytes.Buffer
	p, err := LoadPair(filepath.Join(sd.dir, "tls.crt"), filepath.Join(sd.dir, "tls.key"), "faces", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cn := func() string { return p.Certificate().Leaf.Subject.CommonName }
	p.Check()
	if cn() != "one" || logs.Len() != 0 {
		t.Fatalf("unchanged files: %s, logs %q", cn(), logs.String())
	}

	c2, k2 := ca.Leaf(t, "two", time.Now().Add(2*time.Hour))
	sd.swap(c2, k2)
	p.Check()
	if cn() != "two" || !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Fatalf("after the swap: %s, logs %q", cn(), logs.String())
	}
	if got := p.NotAfter(); got.Before(time.Now().Add(time.Hour + 50*time.Minute)) {
		t.Errorf("NotAfter %v is the old certificate's", got)
	}

	_, k3 := ca.Leaf(t, "three", time.Now().Add(time.Hour))
	sd.swap(c1, k3) // a certificate with another's key
	logs.Reset()
	p.Check()
	p.Check()
	if cn() != "two" {
		t.Fatalf("a mismatched pair replaced the certificate: %s", cn())
	}
	if n := strings.Count(logs.String(), "keeping the previous certificate"); n != 1 || !strings.Contains(logs.String(), "private key does not match") {
		t.Errorf("want one warning saying why, got %q", logs.String())
	}

	sd.swap([]byte("not pem"), k3)
	p.Check()
	if cn() != "two" {
		t.Fatalf("garbage replaced the certificate: %s", cn())
	}

	c4, k4 := ca.Leaf(t, "four", time.Now().Add(time.Hour))
	sd.swap(c4, k4)
	p.Check()
	if cn() != "four" {
		t.Fatalf("a good pair after bad ones was not taken: %s", cn())
	}
}

func TestPoolReload(t *testing.T) {
	ca1, ca2 := testpki.NewCA(t), testpki.NewCA(t)
	dir := t.TempDir()
	f := testpki.Write(t, dir, "ca.crt", ca1.PEM)
	var logs bytes.Buffer
	p, err := LoadPool(f, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := ca1.Leaf(t, "a", time.Now().Add(time.Hour))
	c2, _ := ca2.Leaf(t, "b", time.Now().Add(time.Hour))
	verifies := func(certPEM []byte) bool {
		c, err := parse(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Verify(x509VerifyOptions(p))
		return err == nil
	}
	if !verifies(c1) || verifies(c2) {
		t.Fatal("initial roots wrong")
	}
	testpki.Write(t, dir, "ca.new", ca2.PEM)
	if err := os.Rename(filepath.Join(dir, "ca.new"), f); err != nil {
		t.Fatal(err)
	}
	p.Check()
	if verifies(c1) || !verifies(c2) {
		t.Fatal("roots not reloaded")
	}
	testpki.Write(t, dir, "ca.new", []byte("nothing"))
	if err := os.Rename(filepath.Join(dir, "ca.new"), f); err != nil {
		t.Fatal(err)
	}
	p.Check()
	if !verifies(c2) || !strings.Contains(logs.String(), "keeping the previous roots") {
		t.Fatalf("bad bundle: roots lost or not logged: %q", logs.String())
	}
	if _, err := LoadPool(filepath.Join(dir, "missing"), slog.Default()); err == nil {
		t.Error("a missing CA file loaded")
	}
}
