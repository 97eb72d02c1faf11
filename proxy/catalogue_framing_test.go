package proxy

import (
	"net/http"
	"testing"

	"github.com/keygate/keygate/policy"
)

// TestCatalogueFraming: requests whose end a proxy in front of keygate may place elsewhere than
// net/http does. net/http reads Content-Length beside Transfer-Encoding as chunked (and removes the
// Content-Length), and ignores Transfer-Encoding on HTTP/1.0 (reading the chunked body as the next
// request). A front proxy that frames by the other header sends the bytes after keygate's end of
// the request as part of the same request, or glues the next client's request to them; so keygate
// answers such a request and closes the connection (RFC 9112 §6.1): nothing after it is read.
// Each row's first request is forwarded; the pipelined one after it must never be.
func TestCatalogueFraming(t *testing.T) {
	closed := func(t *testing.T, res *http.Response, _ []byte) {
		t.Helper()
		if !res.Close {
			t.Errorf("the answer keeps the connection open (Connection: %q)", res.Header.Get("Connection"))
		}
	}
	next := "GET /v1/api/1/raw-data HTTP/1.1\nHost: k\nx-api-key: {read1}\nConnection: close\n\n"
	row := func(name, raw, path string) catalogueCase {
		return catalogueCase{name: "framing: " + name, raw: raw, status: 200, forward: path, check: closed}
	}
	runCatalogue(t, []catalogueCase{
		row("CL and TE, then a request", "POST /v1/api/1/raw-data/1/rename HTTP/1.1\nHost: k\nx-api-key: {ingest1}\nContent-Length: 5\nTransfer-Encoding: chunked\n\n0\n\n"+next,
			"/v1/api/1/raw-data/1/rename"),
		row("TE before CL, then a request", "POST /v1/api/1/raw-data/1/rename HTTP/1.1\nHost: k\nx-api-key: {ingest1}\nTransfer-Encoding: chunked\nContent-Length: 60\n\n0\n\n"+next,
			"/v1/api/1/raw-data/1/rename"),
		row("chunked, then a request", "POST /v1/api/1/raw-data/1/rename HTTP/1.1\nHost: k\nx-api-key: {ingest1}\nTransfer-Encoding: chunked\n\n5\nhello\n0\n\n"+next,
			"/v1/api/1/raw-data/1/rename"),
		row("HTTP/1.0 TE keep-alive, then a request", "POST /v1/api/1/raw-data/1/rename HTTP/1.0\nHost: k\nx-api-key: {ingest1}\nConnection: keep-alive\nTransfer-Encoding: chunked\n\n"+next,
			"/v1/api/1/raw-data/1/rename"),
		row("HTTP/1.0 TE and CL keep-alive, then a request", "POST /v1/api/1/raw-data/1/rename HTTP/1.0\nHost: k\nx-api-key: {ingest1}\nConnection: keep-alive\nContent-Length: 0\nTransfer-Encoding: chunked\n\n"+next,
			"/v1/api/1/raw-data/1/rename"),
		row("HTTP/1.0 keep-alive GET, then a request", "GET /v1/api/1/raw-data HTTP/1.0\nHost: k\nx-api-key: {read1}\nConnection: keep-alive\nTransfer-Encoding: chunked\n\n"+next,
			"/v1/api/1/raw-data"),
		// Refused requests too: the bytes after them are never read as a request.
		{name: "framing: ingestion HTTP/1.0 TE keep-alive refused, then a request", face: policy.FaceIngestion,
			raw: "POST /api/training/data HTTP/1.0\nHost: k\nx-api-key: {read1}\nConnection: keep-alive\nContent-Type: application/json\nTransfer-Encoding: chunked\n\n" +
				"POST /api/training/data HTTP/1.1\nHost: k\nx-api-key: {ingest1}\nContent-Type: application/json\nContent-Length: 2\nConnection: close\n\n{}",
			status: 403, says: "role may not", check: closed},
		{name: "framing: CL and TE refused, then a request",
			raw:    "POST /v1/api/1/jobs/train/keras/1 HTTP/1.1\nHost: k\nx-api-key: {read1}\nContent-Length: 5\nTransfer-Encoding: chunked\n\n0\n\n" + next,
			status: 403, says: "role may not", check: closed},
	})
}
