package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestRequestID: every answer carries X-Request-Id, errors included; a well-formed incoming id is
// kept and forwarded, a malformed one replaced; the upstream's own id does not duplicate it.
func TestRequestID(t *testing.T) {
	g, key := benchGateway(t)
	rt := &recordingTransport{}
	g.rp.Transport = rt
	long := strings.Repeat("a", 129)
	tests := []struct {
		name, key, incoming string
		status              int
		keep                bool
	}{
		{"generated on forward", key, "", 200, false},
		{"kept on forward", key, "abc-123_X.y", 200, true},
		{"kept on refusal", "", "trace-9", 401, true},
		{"generated on refusal", "", "", 401, false},
		{"too long replaced", key, long, 200, false},
		{"space replaced", key, "a b", 200, false},
		{"control replaced", key, "a\x01", 200, false},
		{"non-ascii replaced", key, "é", 200, false},
		{"key-shaped replaced", key, "ei_" + strings.Repeat("ab", 32), 200, false},
		{"key-shaped inside replaced", key, "trace-ei_0123456789", 200, false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/api/1/raw-data", nil)
			if tt.key != "" {
				r.Header.Set("x-api-key", tt.key)
			}
			if tt.incoming != "" {
				r.Header.Set(HeaderRequestID, tt.incoming)
			}
			w := httptest.NewRecorder()
			rt.last = nil
			g.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			got := w.Header().Values(HeaderRequestID)
			if len(got) != 1 {
				t.Fatalf("X-Request-Id on the answer: %q", got)
			}
			if tt.keep && got[0] != tt.incoming {
				t.Errorf("id %q, want the client's %q", got[0], tt.incoming)
			}
			if !tt.keep && (got[0] == tt.incoming || len(got[0]) != 32 || seen[got[0]]) {
				t.Errorf("generated id %q (incoming %q)", got[0], tt.incoming)
			}
			seen[got[0]] = true
			if tt.status == 200 {
				if out := rt.last.Header.Values(HeaderRequestID); len(out) != 1 || out[0] != got[0] {
					t.Errorf("forwarded X-Request-Id %q, answered %q", out, got[0])
				}
			}
		})
	}
}

func TestForwardedClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer ignores header", "203.0.113.5", []string{"1.2.3.4"}, "203.0.113.5"},
		{"trusted peer, one hop", "10.1.2.3", []string{"1.2.3.4"}, "1.2.3.4"},
		{"spoofed left entry ignored", "10.1.2.3", []string{"6.6.6.6, 1.2.3.4"}, "1.2.3.4"},
		{"chain of trusted proxies", "10.1.2.3", []string{"1.2.3.4, 192.0.2.7", "10.9.9.9"}, "1.2.3.4"},
		{"all trusted: left-most", "10.1.2.3", []string{"10.0.0.1"}, "10.0.0.1"},
		{"malformed entry stops", "10.1.2.3", []string{"1.2.3.4, junk"}, "10.1.2.3"},
		{"no header", "10.1.2.3", nil, "10.1.2.3"},
		{"ipv6 peer untrusted", "2001:db8::1", []string{"1.2.3.4"}, "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ForwardedClientIP(tt.peer, tt.xff, trusted); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCodeClass(t *testing.T) {
	for status, want := range map[int]string{0: "other", 101: "1xx", 200: "2xx", 304: "3xx", 404: "4xx", 499: "4xx", 503: "5xx", 600: "other", 99: "other"} {
		if got := CodeClass(status); got != want {
			t.Errorf("CodeClass(%d) = %q, want %q", status, got, want)
		}
	}
}

// TestRequestsCodeLabel: an upstream 5xx is counted as forwarded with code 5xx.
func TestRequestsCodeLabel(t *testing.T) {
	g, key := benchGateway(t)
	g.rp.Transport = statusTransport(502)
	g.opt.Metrics = NewMetrics(prometheus.NewRegistry())
	g.opt.Metrics.InitFace("studio", []string{"read"})
	r := httptest.NewRequest("GET", "/v1/api/1/raw-data", nil)
	r.Header.Set("x-api-key", key)
	g.ServeHTTP(httptest.NewRecorder(), r)
	if got := counterValue(t, g.opt.Metrics, "studio", "read", "forwarded", "5xx"); got != 1 {
		t.Errorf("forwarded 5xx = %v, want 1", got)
	}
	if got := counterValue(t, g.opt.Metrics, "studio", "read", "forwarded", "2xx"); got != 0 {
		t.Errorf("forwarded 2xx = %v, want 0 (zero series present)", got)
	}
}

type statusTransport int

func (s statusTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := cannedTransport{}.RoundTrip(r)
	if res != nil {
		res.StatusCode = int(s)
	}
	return res, err
}

func counterValue(t *testing.T, m *Metrics, labels ...string) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Requests.WithLabelValues(labels...).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}
