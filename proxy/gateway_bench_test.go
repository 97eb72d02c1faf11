package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"

	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keygate/keygate/cache"
	"github.com/keygate/keygate/internal/accesslog"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/policy"
)

// cannedTransport answers every request without a network, so the benchmark measures keygate's own
// work: route, identify (cached), authorize, rewrite and the ReverseProxy machinery.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(`{"success":true}`)),
		ContentLength: 16, Request: r,
	}, nil
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchGateway(b testing.TB) (*Gateway, string) {
	b.Helper()
	s, err := keys.OpenBolt(b.TempDir(), nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	key, _ := keys.GenerateAPIKey()
	if _, err := s.CreateAPIKey(context.Background(), keys.NewAPIKey{ProjectID: 1, Name: "b", Role: keys.RoleAdmin, Key: key}); err != nil {
		b.Fatal(err)
	}
	up, _ := url.Parse("http://127.0.0.1:1")
	g := New(Options{Face: policy.FaceStudio, Upstream: up, Resolver: cache.NewResolver(s, cache.Options{}), Transport: cannedTransport{}})
	return g, key
}

// BenchmarkGatewayDecision is the hot path up to the decision: cached key → route → authorize,
// answered 403 so nothing is forwarded.
func BenchmarkGatewayDecision(b *testing.B) {
	g, key := benchGateway(b)
	r := httptest.NewRequest("POST", "/v1/api/2/raw-data/1/rename", nil)
	r.Header.Set("x-api-key", key)
	w := &discardWriter{h: http.Header{}}
	g.ServeHTTP(w, r)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		g.ServeHTTP(w, r)
	}
}

// BenchmarkGatewayForward is the whole hot path with a canned upstream: cached key → decision →
// rewrite → ReverseProxy.
func BenchmarkGatewayForward(b *testing.B) {
	g, key := benchGateway(b)
	w := &discardWriter{h: http.Header{}}
	for _, bc := range []struct {
		name string
		body []byte
	}{{"GET", nil}, {"POST16KiB", bytes.Repeat([]byte("x"), 16<<10)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				method := "GET"
				var body io.Reader
				if bc.body != nil {
					method, body = "POST", bytes.NewReader(bc.body)
				}
				r := httptest.NewRequest(method, "/v1/api/1/raw-data/1", body)
				r.Header.Set("x-api-key", key)
				clear(w.h)
				g.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkBareReverseProxy is the floor the gateway is compared with: ReverseProxy (Rewrite,
// SetURL, SetXForwarded), the same buffer pool and a map lookup of the key.
func BenchmarkBareReverseProxy(b *testing.B) {
	up, _ := url.Parse("http://127.0.0.1:1")
	key, _ := keys.GenerateAPIKey()
	valid := map[string]bool{key: true}
	rp := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(up); pr.SetXForwarded() },
		Transport:  cannedTransport{},
		BufferPool: newBufferPool(),
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !valid[r.Header.Get("X-Api-Key")] {
			w.WriteHeader(401)
			return
		}
		rp.ServeHTTP(w, r)
	})
	benchGET(b, h, key)
}

// BenchmarkGatewayForwardObserved adds what production runs with: metrics and the JSON access log.
func BenchmarkGatewayForwardObserved(b *testing.B) {
	g, key := benchGateway(b)
	g.opt.Metrics = NewMetrics(prometheus.NewRegistry())
	g.opt.AccessLog = accesslog.New(io.Discard, false)
	benchGET(b, g, key)
}

// BenchmarkGatewayForwardServeLike is the Studio face as `keygate serve` builds it: metrics, access
// log, last-used recording, and the rate limiter consulted (Studio limits off by default).
func BenchmarkGatewayForwardServeLike(b *testing.B) {
	g, key := benchGateway(b)
	g.opt.Metrics = NewMetrics(prometheus.NewRegistry())
	g.opt.AccessLog = accesslog.New(io.Discard, false)
	g.opt.Usage = keys.NewUsageRecorder(nil, time.Hour, nil)
	g.opt.Limiter = &RateLimits{Engine: limit.NewLocal(0, nil), Projects: staticProjects{}, Headers: true}
	benchGET(b, g, key)
}

type staticProjects struct{}

func (staticProjects) Get(context.Context, int64) (cache.Project, error) { return cache.Project{}, nil }

// benchGET sends the same cached-key GET through h b.N times.
func benchGET(b *testing.B, h http.Handler, key string) {
	b.Helper()
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest("GET", "/v1/api/1/raw-data/1", nil)
		r.Header.Set("x-api-key", key)
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}
