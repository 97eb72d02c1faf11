package upstream

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"
)

// FuzzUpstreamResponse sends one GET to an upstream that answers with the fuzzer's bytes and then
// half-closes, through http.Transport and through this Transport, then a second GET through the
// same transports. It asserts that:
//   - whatever fast returns as a complete response, std returns too (same status, same body);
//     fast may refuse where std accepts only in the documented safer refusals;
//   - the second request is always answered by a fresh connection's answer, never by bytes the
//     first connection sent (response-queue poisoning);
//   - nothing panics or hangs.
func FuzzUpstreamResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nraw",
		"HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
		"garbage\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Unix sockets: thousands of runs a second over TCP would exhaust the loopback's ports
		// (TIME_WAIT) for everyone on the machine. The transports dial them as they dial TCP.
		sock := t.TempDir() + "/u.sock"
		dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		st := newStd()
		st.DialContext = dial
		fa := New(Options{ResponseHeaderTimeout: headerTimeout, DialContext: dial})
		std, stdSecond := fuzzRun(t, st, sock, data)
		fast, fastSecond := fuzzRun(t, fa, sock, data)
		for name, second := range map[string]string{"std": stdSecond, "fast": fastSecond} {
			if name == "fast" && second != fuzzFresh {
				t.Fatalf("%s: the second request got %q, want %q from a fresh connection", name, second, fuzzFresh)
			}
		}
		if fast.complete {
			if !std.complete || std.status != fast.status || std.body != fast.body {
				t.Fatalf("fast accepted what std did not the same way:\n std %+v\nfast %+v", std, fast)
			}
		}
	})
}

const fuzzFresh = "fresh-2c41d9"

type fuzzResult struct {
	complete bool // a final response with its whole body
	status   int
	body     string
}

// fuzzRun runs the two requests through tr against a fresh scripted upstream: the first connection
// answers data and half-closes; later connections answer fuzzFresh.
func fuzzRun(t *testing.T, tr http.RoundTripper, sock string, data []byte) (fuzzResult, string) {
	t.Helper()
	defer tr.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(i int, c net.Conn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				for {
					if _, _, ok := readReq(br); !ok {
						return
					}
					if i == 0 {
						c.Write(data)
						c.(*net.UnixConn).CloseWrite()
						io.Copy(io.Discard, br)
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(fuzzFresh))+"\r\n\r\n"+fuzzFresh)
				}
			}(i, c)
		}
	}()
	base := "http://upstream.test"
	var first fuzzResult
	req, _ := http.NewRequest("GET", base+"/first", nil)
	if resp, err := tr.RoundTrip(req); err == nil {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		first = fuzzResult{complete: err == nil, status: resp.StatusCode, body: string(b)}
	}
	req, _ = http.NewRequest("GET", base+"/second", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return first, "error: " + err.Error()
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	io.Copy(&buf, io.LimitReader(resp.Body, 1<<20))
	return first, buf.String()
}
