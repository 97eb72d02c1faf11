package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/verify"
)

// sampleJSON is an unsigned data acquisition file (docs/protocol.md §5.1) naming device.
func sampleJSON(device string) []byte {
	return []byte(fmt.Sprintf(`{"protected":{"ver":"v1","alg":"HS256"},"signature":"%s","payload":{"device_name":%q,"device_type":"TEST","interval_ms":10,"sensors":[{"name":"accX","units":"m/s2"}],"values":[[1],[2],[3]]}}`,
		strings.Repeat("0", 64), device))
}

// signedJSON signs sampleJSON(device) with key, iat now.
func signedJSON(t *testing.T, device, key string) string {
	t.Helper()
	b, err := verify.Sign(sampleJSON(device), verify.FormatJSON, []byte(key), verify.SignOptions{HasIAT: true, IAT: time.Now().Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCatalogueSignatures is the signature class that already held: a forged, tampered or
// replayed sample never reaches the upstream in reject mode; a valid one is forwarded once,
// marked valid.
func TestCatalogueSignatures(t *testing.T) {
	valid := signedJSON(t, "dev-1", catalogueHMAC)
	tampered := strings.Replace(signedJSON(t, "dev-2", catalogueHMAC), `[[1],[2],[3]]`, `[[1],[2],[4]]`, 1)
	forged := signedJSON(t, "dev-3", "not the project's key")
	post := func(name, key, body string, status int, says string, header ...string) catalogueCase {
		c := ingestion(name, "POST", "/api/training/data", key, status, says, append([]string{"Content-Type: application/json"}, header...)...)
		c.body = body
		return c
	}
	first := post("signature: valid is forwarded", "ingest1", valid, 200, "", "x-file-name: a.json")
	first.forward = "/api/training/data"
	first.upstream = func(t *testing.T, got recorded) {
		if got.Header.Get(HeaderSignature) != SigValid || string(got.Body) != valid {
			t.Errorf("upstream: signature %q, body %d bytes", got.Header.Get(HeaderSignature), len(got.Body))
		}
		if got.Header.Get("X-File-Name") != "a.json" {
			t.Errorf("x-file-name not passed through: %v", got.Header)
		}
	}
	boundary := "catalogue"
	multipart := func(body string) string {
		return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"data\"; filename=\"a.json\"\r\nContent-Type: application/json\r\n\r\n" +
			body + "\r\n--" + boundary + "--\r\n"
	}
	files := func(name, body string, status int, says string) catalogueCase {
		c := ingestion(name, "POST", "/api/testing/files", "ingest1", status, says, "Content-Type: multipart/form-data; boundary="+boundary)
		c.body = multipart(body)
		return c
	}
	runCatalogue(t, []catalogueCase{
		first,
		post("signature: replayed", "ingest1", valid, http.StatusConflict, "replayed"),
		post("signature: tampered", "ingest1", tampered, http.StatusUnauthorized, ""),
		post("signature: forged key", "admin1", forged, http.StatusUnauthorized, ""),
		post("signature: not JSON", "ingest1", `{"protected":`, http.StatusBadRequest, ""),
		files("signature: tampered in multipart", tampered, http.StatusUnauthorized, ""),
		files("signature: forged in multipart", forged, http.StatusUnauthorized, ""),
		files("signature: replayed in multipart", valid, http.StatusConflict, "replayed"),
		ingestion("signature: files without multipart", "POST", "/api/training/files", "ingest1", 400, "multipart/form-data", "Content-Type: application/json"),
	})
}

// TestCatalogueUpstreamDown: with the upstream unreachable every allowed request is answered 502
// in the JSON shape, and refusals are still refusals.
func TestCatalogueUpstreamDown(t *testing.T) {
	fx := newCatalogueFixture(t, func(_ policy.Face, o *Options) {
		o.Upstream = &url.URL{Scheme: "http", Host: "127.0.0.1:1"}
	})
	runCatalogueOn(t, fx, []catalogueCase{
		studio("upstream down: allowed", "GET", "/v1/api/1/raw-data", "read1", http.StatusBadGateway, "upstream is unavailable"),
		studio("upstream down: refused", "GET", "/v1/api/2/raw-data", "read1", http.StatusForbidden, "not project 2"),
		ingestion("upstream down: ingestion", "POST", "/api/training/data", "ingest1", http.StatusBadGateway, "upstream is unavailable", "Content-Type: application/octet-stream"),
	})
}

// TestCatalogueLimits: a request over a rate limit or over the declared body cap is refused (429,
// 413) in the JSON shape with nothing upstream.
func TestCatalogueLimits(t *testing.T) {
	fx := newCatalogueFixture(t, func(_ policy.Face, o *Options) {
		once := keys.Limit{Rate: 1, Period: time.Hour, Burst: 1}
		rl := *o.Limiter.(*RateLimits)
		rl.Limits.StudioKey = once
		rl.Limits.IngestionKey = map[keys.Role]keys.Limit{keys.RoleIngestion: once}
		o.Limiter = &rl
		o.MaxBody = 1 << 10
	})
	first := studio("limits: first request", "GET", "/v1/api/1/raw-data", "read1", 200, "")
	first.forward = "/v1/api/1/raw-data"
	over := ingestion("limits: declared body over the cap", "POST", "/api/training/data", "admin1", http.StatusRequestEntityTooLarge, "larger than the limit",
		"Content-Type: application/octet-stream")
	over.body = strings.Repeat("x", 2<<10)
	runCatalogueOn(t, fx, []catalogueCase{
		first,
		studio("limits: second request", "GET", "/v1/api/1/raw-data", "read1", http.StatusTooManyRequests, ""),
		over,
	})
}
