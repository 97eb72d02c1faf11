package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// responseSeeds are answers a backend gives, simple and odd; the fast path takes some.
var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: application/json\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 2\r\nDate: Thu, 26 Nov 2026 12:00:00 GMT\r\nX-Powered-By: Express\r\nEtag: W/\"2-x\"\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{}",
	"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\nx-custom:  spaced value \t\r\n\r\nnopNEXT",
	"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	"HTTP/1.1 201\r\nContent-Length: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nx",
	"HTTP/1.1 200  two spaces\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: 0005\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
	"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nuntil close",
	"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nX: a\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
	"HTTP/1.1 200 OK\r\nBad Name: v\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\n: empty\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nTrailer: X-T\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 2x0 Bad\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\x01\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\n",
	"\r\n\r\n",
	"\n\r\n\r\n",
	"garbage\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison",
}

// FuzzReadResponse: whatever readResponse returns, http.ReadResponse returns the same — status,
// protocol, headers, framing, close, body bytes and body error — or both fail; and both leave the
// reader at the same place. The fast path may only ever be a faster http.ReadResponse.
func FuzzReadResponse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		want := parseWith(data, method, http.ReadResponse)
		got := parseWith(data, method, readResponse)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("%q (%s):\nhttp.ReadResponse %+v\n     readResponse %+v", data, method, want, got)
		}
	})
}

// TestReadResponseSeeds runs the seeds (make test runs the fuzz target's seeds too; this also
// checks the fast path is taken where it should be).
func TestReadResponseSeeds(t *testing.T) {
	fast := 0
	for _, s := range responseSeeds {
		for _, method := range []string{"GET", "HEAD", "POST"} {
			want := parseWith([]byte(s), method, http.ReadResponse)
			got := parseWith([]byte(s), method, readResponse)
			if !reflect.DeepEqual(want, got) {
				t.Errorf("%q (%s):\nhttp.ReadResponse %+v\n     readResponse %+v", s, method, want, got)
			}
			req, _ := http.NewRequest(method, "http://u/", nil)
			if fastResponse(bufio.NewReader(strings.NewReader(s)), req) != nil {
				fast++
			}
		}
	}
	// 11 seeds are simple (one Content-Length, HTTP/1.1, 2xx–5xx but 204/304, no Transfer-Encoding,
	// Trailer or Pragma, no obs-fold or bare LF), each taken for GET and POST, never for HEAD.
	if fast != 22 {
		t.Errorf("fast path taken %d times, want 22", fast)
	}
}

// TestReadResponseSplitReads: a response whose header block arrives in pieces (one byte per read)
// is still read right (by http.ReadResponse, the fast path seeing only part of it).
func TestReadResponseSplitReads(t *testing.T) {
	s := responseSeeds[1]
	req, _ := http.NewRequest("GET", "http://u/", nil)
	resp, err := readResponse(bufio.NewReader(iotest.OneByteReader(strings.NewReader(s))), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "{}" || resp.Header.Get("X-Powered-By") != "Express" {
		t.Fatalf("body %q (%v), header %v", b, err, resp.Header)
	}
}

// parsed is everything a caller can observe of a parsed response.
type parsed struct {
	Err                      string
	Status                   string
	StatusCode               int
	Proto                    string
	ProtoMajor, ProtoMinor   int
	Header, Trailer          http.Header
	ContentLength            int64
	TransferEncoding         []string
	Close, Uncompressed      bool
	NoBody                   bool
	Body, BodyErr, Remaining string
}

func parseWith(data []byte, method string, read func(*bufio.Reader, *http.Request) (*http.Response, error)) parsed {
	br := bufio.NewReaderSize(bytes.NewReader(data), 4<<10)
	req, _ := http.NewRequest(method, "http://u/", nil)
	resp, err := read(br, req)
	if err != nil {
		return parsed{Err: "error"} // the messages may differ; that both refuse is what matters
	}
	p := parsed{Status: resp.Status, StatusCode: resp.StatusCode, Proto: resp.Proto, ProtoMajor: resp.ProtoMajor,
		ProtoMinor: resp.ProtoMinor, Header: resp.Header, ContentLength: resp.ContentLength,
		TransferEncoding: resp.TransferEncoding, Close: resp.Close, Uncompressed: resp.Uncompressed,
		NoBody: resp.Body == http.NoBody}
	var body bytes.Buffer
	buf := make([]byte, 3) // small reads, so the body's end is reached across several calls
	for {
		n, err := resp.Body.Read(buf)
		body.Write(buf[:n])
		if err != nil {
			if !errors.Is(err, io.EOF) {
				p.BodyErr = err.Error()
			}
			break
		}
	}
	p.Body = body.String()
	p.Trailer = resp.Trailer
	rest, _ := io.ReadAll(br)
	p.Remaining = string(rest)
	return p
}
