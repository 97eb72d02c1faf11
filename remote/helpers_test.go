package remote

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/apierr"
)

// dialRaw opens a plain TCP connection to srv, closed when the test ends.
func dialRaw(t *testing.T, srv *httptest.Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAnswer reads one response from br within d.
func readAnswer(t *testing.T, c net.Conn, br *bufio.Reader, d time.Duration) (*http.Response, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", d, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, body
}

// expectConnClosed reads until the server closes the connection, within d.
func expectConnClosed(t *testing.T, c net.Conn, br *bufio.Reader, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open after %v", d)
	}
}

// errorText decodes the JSON error shape.
func errorText(t *testing.T, body []byte) string {
	t.Helper()
	var eb apierr.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Success || eb.Error == "" {
		t.Fatalf("not the JSON error shape: %s", body)
	}
	return eb.Error
}
