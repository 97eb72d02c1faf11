package proxy

import (
	"crypto/tls"
	"net/http"
	"net/http/httputil"
	"reflect"
	"testing"
)

// TestSetXForwardedMatchesReverseProxy: keygate's setXForwarded writes the same three headers as
// httputil's ProxyRequest.SetXForwarded for every peer address shape, Host and scheme.
func TestSetXForwardedMatchesReverseProxy(t *testing.T) {
	for _, tc := range []struct {
		remote, host string
		tls          bool
		prior        []string
	}{
		{"192.0.2.1:5555", "api.example", false, nil},
		{"[2001:db8::1]:443", "api.example:4800", true, nil},
		{"[fe80::1%eth0]:80", "", false, nil},
		{"pipe", "h", false, nil},                                     // no port: no X-Forwarded-For
		{"", "h", true, nil},                                          // no peer at all
		{"192.0.2.1:1", "h", false, []string{"10.0.0.1", "10.0.0.2"}}, // prior hops are kept first
	} {
		mk := func() *httputil.ProxyRequest {
			in, _ := http.NewRequest("GET", "http://x/v1/api/1/raw-data", nil)
			in.RemoteAddr, in.Host = tc.remote, tc.host
			if tc.tls {
				in.TLS = &tls.ConnectionState{}
			}
			out := in.Clone(in.Context())
			out.Header = http.Header{"X-Api-Key": {"k"}}
			if tc.prior != nil {
				out.Header["X-Forwarded-For"] = append([]string(nil), tc.prior...)
			}
			return &httputil.ProxyRequest{In: in, Out: out}
		}
		want, got := mk(), mk()
		want.SetXForwarded()
		setXForwarded(got, &state{})
		if !reflect.DeepEqual(want.Out.Header, got.Out.Header) {
			t.Errorf("%+v:\n got %v\nwant %v", tc, got.Out.Header, want.Out.Header)
		}
	}
}
