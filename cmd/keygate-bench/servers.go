package main

import (
	"bufio"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	_ "net/http/pprof"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	upstreamfast "github.com/keygate/keygate/upstream"
)

// runBackend is the trivial backend: a fixed ~100-byte JSON answer; request bodies are read and dropped.
func runBackend(addr string) {
	body := []byte(`{"success":true,"project":{"id":1,"name":"bench","owner":"keygate-bench"},"note":"fixed 100 byte body"}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	if pp := os.Getenv("BARE_PPROF"); pp != "" {
		go http.ListenAndServe(pp, nil) // net/http/pprof on the default mux, for comparing profiles
	}
	log.Fatal((&http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}).ListenAndServe())
}

type pool struct{ p sync.Pool }

func (b *pool) Get() []byte  { return b.p.Get().(*[32 << 10]byte)[:] }
func (b *pool) Put(p []byte) { b.p.Put((*[32 << 10]byte)(p)) }

// runBareProxy is the floor for an httputil design: ReverseProxy (Rewrite), tuned Transport, buffer
// pool, and a map lookup of x-api-key — no policy, metrics or logging.
func runBareProxy(addr, upstream, keysFile string) {
	up, err := url.Parse(upstream)
	if err != nil {
		log.Fatal(err)
	}
	valid := map[string]bool{}
	f, err := os.Open(keysFile)
	if err != nil {
		log.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		valid[strings.TrimSpace(sc.Text())] = true
	}
	f.Close()
	rp := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(up); pr.SetXForwarded() },
		Transport:  &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second, DisableCompression: true},
		BufferPool: &pool{p: sync.Pool{New: func() any { return new([32 << 10]byte) }}},
	}
	if os.Getenv("BARE_FAST") != "" {
		// The same bare proxy on keygate's upstream transport: separates the transport's cost from
		// keygate's own when comparing instruction counts.
		rp.Transport = upstreamfast.New(upstreamfast.Options{})
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !valid[r.Header.Get("X-Api-Key")] {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		rp.ServeHTTP(w, r)
	})
	if pp := os.Getenv("BARE_PPROF"); pp != "" {
		go http.ListenAndServe(pp, nil) // net/http/pprof on the default mux, for comparing profiles
	}
	log.Fatal((&http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}).ListenAndServe())
}
