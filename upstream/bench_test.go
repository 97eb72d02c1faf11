package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkRoundTrip is one keep-alive GET per iteration against a local backend, through each
// transport: the per-request cost of the client side alone (CPU and allocations).
func BenchmarkRoundTrip(b *testing.B) {
	body := []byte(`{"success":true,"project":{"id":1,"name":"bench","owner":"keygate-bench"},"note":"fixed 100 byte body"}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer srv.Close()
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			tr := k.make()
			defer tr.(interface{ CloseIdleConnections() }).CloseIdleConnections()
			// A cancelable context, as a proxied request's is (the server cancels it when the client
			// goes away).
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/api/1/raw-data", nil)
			req.Header.Set("User-Agent", "")
			buf := make([]byte, 512)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := tr.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						if err != io.EOF {
							b.Fatal(err)
						}
						break
					}
				}
				resp.Body.Close()
			}
		})
	}
}
