package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testutil"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/verify"
)

// dialRaw opens a connection to srv for hand-written requests.
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
	if isTimeout(err) {
		t.Fatalf("the connection was still open after %v", d)
	}
}

// errorText decodes the JSON error shape.
func errorText(t *testing.T, body []byte) string {
	t.Helper()
	var eb ErrorBodyForTest
	if err := json.Unmarshal(body, &eb); err != nil || eb.Success || eb.Error == "" {
		t.Fatalf("not the JSON error shape: %s", body)
	}
	return eb.Error
}

// TestRefusedUnreadBodyAnswersAtOnce: a request refused before its body was read is answered at
// once and its connection closed, however much body it declared and however slowly it sends it;
// nothing reaches the upstream.
func TestRefusedUnreadBodyAnswersAtOnce(t *testing.T) {
	fx := newCatalogueFixture(t, func(_ policy.Face, o *Options) { o.BodyTimeout = time.Minute })
	tests := []struct {
		name      string
		ingestion bool
		head      string // request line and headers, without the blank line
		sent      string // the part of the body sent (the rest never comes)
		status    int
	}{
		{"no key, 100 MB declared, one byte sent", false, "POST /v1/api/1/raw-data/3/rename HTTP/1.1\r\nContent-Length: 100000000", "x", 401},
		{"no key, chunked, half a chunk sent", false, "POST /v1/api/1/raw-data/3/rename HTTP/1.1\r\nTransfer-Encoding: chunked", "100\r\nabc", 401},
		{"no key, 1000 bytes declared, one sent", false, "POST /v1/api/1/raw-data/3/rename HTTP/1.1\r\nContent-Length: 1000", "x", 401},
		{"no key, nothing of the body sent", false, "POST /v1/api/1/raw-data/3/rename HTTP/1.1\r\nContent-Length: 1000", "", 401},
		{"unknown key", false, "POST /v1/api/1/raw-data/3/rename HTTP/1.1\r\nx-api-key: ei_" + strings.Repeat("0", 64) + "\r\nContent-Length: 100000000", "x", 401},
		{"read-only key on a write route", false, "POST /v1/api/1/raw-data/3/rename HTTP/1.1\r\nx-api-key: {read1}\r\nContent-Length: 100000000", "x", 403},
		{"other project", false, "POST /v1/api/2/raw-data/3/rename HTTP/1.1\r\nx-api-key: {admin1}\r\nContent-Length: 100000000", "x", 403},
		{"no such endpoint", false, "POST /elsewhere HTTP/1.1\r\nx-api-key: {admin1}\r\nContent-Length: 100000000", "x", 404},
		{"declared length over the cap", false, "POST /v1/api/1/raw-data/3/rename HTTP/1.1\r\nx-api-key: {admin1}\r\nContent-Length: 100000000", "x", 413},
		{"the Keys page with a slow body", false, "GET /keys HTTP/1.1\r\nContent-Length: 1000", "x", 400},
		{"Expect: 100-continue without a key", false, "POST /v1/api/1/raw-data/3/rename HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 100000000", "", 401},
		{"ingestion: no key", true, "POST /api/training/data HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100000000", "{", 401},
		{"ingestion: read-only key", true, "POST /api/training/data HTTP/1.1\r\nx-api-key: {read1}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked", "10\r\n{", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fx.studio
			if tt.ingestion {
				srv = fx.ingestion
			}
			fx.upstream.take()
			c := dialRaw(t, srv)
			if _, err := io.WriteString(c, fx.expand(tt.head)+"\r\nHost: k\r\n\r\n"+tt.sent); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			start := time.Now()
			res, body := readAnswer(t, c, br, 2*time.Second)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, body)
			}
			errorText(t, body)
			if !res.Close { // ReadResponse takes Connection: close out of the header into Close
				t.Errorf("answer without Connection: close: %v", res.Header)
			}
			expectConnClosed(t, c, br, 2*time.Second)
			t.Logf("answered and closed in %v", time.Since(start).Round(time.Millisecond))
			if got := fx.upstream.take(); len(got) != 0 {
				t.Errorf("the upstream received %v", paths(got))
			}
		})
	}
	t.Run("a small body sent whole keeps the connection", func(t *testing.T) {
		c := dialRaw(t, fx.studio)
		io.WriteString(c, "POST /v1/api/1/raw-data/3/rename HTTP/1.1\r\nHost: k\r\nContent-Length: 2\r\n\r\n{}")
		br := bufio.NewReader(c)
		res, _ := readAnswer(t, c, br, 2*time.Second)
		if res.StatusCode != 401 || res.Close {
			t.Fatalf("first answer %d %v", res.StatusCode, res.Header)
		}
		io.WriteString(c, fx.expand("GET /v1/api/1/raw-data HTTP/1.1\r\nHost: k\r\nx-api-key: {read1}\r\n\r\n"))
		if res, body := readAnswer(t, c, br, 2*time.Second); res.StatusCode != 200 {
			t.Fatalf("second request on the connection: %d %s", res.StatusCode, body)
		}
	})
}

// trickle writes one byte every interval to c until stop is closed or a write fails.
func trickle(c net.Conn, interval time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if _, err := c.Write([]byte("a")); err != nil {
				return
			}
		}
	}
}

// TestBodyTimeout: an authenticated body that trickles meets the body deadline: 408 in the JSON
// shape, the connection closed, and nothing upstream where keygate buffers (ingestion, and Studio
// bodies without a length).
func TestBodyTimeout(t *testing.T) {
	const timeout = 400 * time.Millisecond
	fx := newCatalogueFixture(t, func(_ policy.Face, o *Options) { o.BodyTimeout = timeout })
	tests := []struct {
		name      string
		ingestion bool
		head      string
		sent      string
		quiet     bool // the upstream must receive nothing
	}{
		{"ingestion sample", true, "POST /api/training/data HTTP/1.1\r\nx-api-key: {ingest1}\r\nContent-Type: application/json\r\nContent-Length: 5000", "{", true},
		{"ingestion chunked", true, "POST /api/training/data HTTP/1.1\r\nx-api-key: {ingest1}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked", "1000\r\n{", true},
		{"Studio chunked", false, "POST /v1/api/1/raw-data/3/rename HTTP/1.1\r\nx-api-key: {admin1}\r\nTransfer-Encoding: chunked", "1000\r\n", true},
		{"Studio with a length (streamed)", false, "POST /v1/api/1/raw-data/3/rename HTTP/1.1\r\nx-api-key: {admin1}\r\nContent-Length: 5000", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fx.studio
			if tt.ingestion {
				srv = fx.ingestion
			}
			fx.upstream.take()
			c := dialRaw(t, srv)
			io.WriteString(c, fx.expand(tt.head)+"\r\nHost: k\r\n\r\n"+tt.sent)
			stop := make(chan struct{})
			defer close(stop)
			go trickle(c, 20*time.Millisecond, stop)
			start := time.Now()
			br := bufio.NewReader(c)
			res, body := readAnswer(t, c, br, 5*time.Second)
			took := time.Since(start)
			if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(errorText(t, body), "did not arrive in time") {
				t.Fatalf("%d %s", res.StatusCode, body)
			}
			// (start is taken after the headers are written; the server may set the deadline a
			// moment before that, so allow a little under the timeout.)
			if took < timeout*3/4 || took > timeout+2*time.Second {
				t.Errorf("answered after %v; the body timeout is %v", took, timeout)
			}
			expectConnClosed(t, c, br, 2*time.Second)
			if got := fx.upstream.take(); tt.quiet && len(got) != 0 {
				t.Errorf("the upstream received %v", paths(got))
			}
		})
	}
}

// TestBodyDeadlineLiftedAfterLastByte: the body deadline bounds the body only; an upstream slower
// than it still answers (the deadline must not cancel the request once the body is in).
func TestBodyDeadlineLiftedAfterLastByte(t *testing.T) {
	const timeout = 200 * time.Millisecond
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(3 * timeout):
			io.WriteString(w, `{"success":true}`)
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	fx := newCatalogueFixture(t, func(_ policy.Face, o *Options) { o.BodyTimeout, o.Upstream = timeout, u })
	for _, tt := range []struct {
		name string
		srv  *httptest.Server
		req  func() *http.Request
	}{
		{"Studio", fx.studio, func() *http.Request {
			r, _ := http.NewRequest("POST", fx.studio.URL+"/v1/api/1/raw-data/3/rename", strings.NewReader(`{"name":"x"}`))
			r.Header.Set("x-api-key", fx.keys["admin1"])
			return r
		}},
		{"ingestion", fx.ingestion, func() *http.Request {
			r, _ := http.NewRequest("POST", fx.ingestion.URL+"/api/training/data", strings.NewReader("a,b\n1,2\n"))
			r.Header.Set("x-api-key", fx.keys["ingest1"])
			r.Header.Set("Content-Type", "text/csv")
			return r
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := http.DefaultClient.Do(tt.req())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("%d %s", res.StatusCode, body)
			}
		})
	}
}

// TestChunkedStudioBodyOverCap: a Studio body without a length is read to the cap before anything
// is forwarded: over the cap it is 413 with nothing upstream; under it the upstream gets the exact
// bytes with a Content-Length.
func TestChunkedStudioBodyOverCap(t *testing.T) {
	fx := newCatalogueFixture(t, func(_ policy.Face, o *Options) { o.MaxBody = 1 << 10 })
	send := func(t *testing.T, body []byte) *http.Response {
		t.Helper()
		r, _ := http.NewRequest("POST", fx.studio.URL+"/v1/api/1/raw-data/3/rename", io.MultiReader(bytes.NewReader(body)))
		r.ContentLength = -1 // chunked
		r.Header.Set("x-api-key", fx.keys["admin1"])
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	fx.upstream.take()
	if res := send(t, bytes.Repeat([]byte("a"), 4<<10)); res.StatusCode != 413 {
		t.Errorf("over the cap: %d", res.StatusCode)
	}
	if got := fx.upstream.take(); len(got) != 0 {
		t.Errorf("over the cap, the upstream received %d request(s), %d bytes", len(got), len(got[0].Body))
	}
	small := bytes.Repeat([]byte("b"), 1000)
	if res := send(t, small); res.StatusCode != 200 {
		t.Fatalf("under the cap: %d", res.StatusCode)
	}
	got := fx.upstream.take()
	if len(got) != 1 || !bytes.Equal(got[0].Body, small) || got[0].Header.Get("Content-Length") != "1000" || got[0].Header.Get("Transfer-Encoding") != "" {
		t.Errorf("under the cap, the upstream received %d request(s)", len(got))
	}
}

// heapBytes is the Go heap in use by objects.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// allocatedBytes is the heap allocated since the process started: it only grows, so memory
// another test frees meanwhile cannot hide an allocation from it.
func allocatedBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// rssBytes is this process's resident set size.
func rssBytes(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// countingVerifier counts the bodies that reached verification.
type countingVerifier struct {
	BodyVerifier
	n atomic.Int64
}

func (c *countingVerifier) VerifyIngest(r *http.Request, p keys.Principal, route policy.Route) (Verdict, error) {
	c.n.Add(1)
	return c.BodyVerifier.VerifyIngest(r, p, route)
}

// TestDeclaredLengthCostsNothing: 30 authenticated uploads declaring 100 MB and sending one byte
// cost what they sent, not what they declared (issue #11: 2.9 GB RSS before).
func TestDeclaredLengthCostsNothing(t *testing.T) {
	const n, declared = 30, 100_000_000
	cv := &countingVerifier{}
	fx := newCatalogueFixture(t, func(f policy.Face, o *Options) {
		o.MaxBody, o.BodyTimeout = 2*declared, time.Minute
		if f == policy.FaceIngestion {
			cv.BodyVerifier, o.Verifier = o.Verifier, cv
		}
	})
	runtime.GC()
	heap0, rss0, alloc0 := heapBytes(), rssBytes(t), allocatedBytes()
	var conns []net.Conn
	for range n {
		c := dialRaw(t, fx.ingestion)
		fmt.Fprintf(c, "POST /api/training/data HTTP/1.1\r\nHost: k\r\nx-api-key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", fx.keys["ingest1"], declared)
		conns = append(conns, c)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return cv.n.Load() == n }, "the %d uploads did not all reach verification", n)
	// Each starts a small buffer as it begins reading: wait until they have.
	testutil.Eventually(t, 2*time.Second, func() bool { return allocatedBytes() > alloc0+n*(64<<10) }, "the uploads' buffers were not allocated")
	heap1, rss1 := heapBytes(), rssBytes(t)
	dh, dr := int64(heap1)-int64(heap0), int64(rss1)-int64(rss0)
	t.Logf("%d uploads declaring %d MB and sending 1 byte: heap +%.1f MB, RSS +%.1f MB", n, declared/1_000_000, float64(dh)/1e6, float64(dr)/1e6)
	if dh > 50e6 || dr > 50e6 {
		t.Errorf("heap +%d, RSS +%d bytes: want less than 50 MB", dh, dr)
	}
	for _, c := range conns {
		c.Close()
	}
}

// TestSlowBodiesWithoutKey: many connections sending a slow body without a key are all answered
// and closed well within the body timeout. KEYGATE_TEST_SLOW_CONNS sets the count (300 by default;
// the figure is 3,000).
func TestSlowBodiesWithoutKey(t *testing.T) {
	n := 300
	if v, err := strconv.Atoi(os.Getenv("KEYGATE_TEST_SLOW_CONNS")); err == nil && v > 0 {
		n = v
	}
	const timeout = 10 * time.Second
	fx := newCatalogueFixture(t, func(_ policy.Face, o *Options) { o.BodyTimeout = timeout })
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	var answered, closed atomic.Int64
	var mu sync.Mutex
	var failures []string
	fail := func(s string) {
		mu.Lock()
		if len(failures) < 5 {
			failures = append(failures, s)
		}
		mu.Unlock()
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", fx.studio.Listener.Addr().String())
			if err != nil {
				fail("dial: " + err.Error())
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(timeout))
			fmt.Fprintf(c, "POST /v1/api/1/raw-data/%d/rename HTTP/1.1\r\nHost: k\r\nContent-Length: 1000000\r\n\r\nx", i)
			br := bufio.NewReader(c)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				fail("read: " + err.Error())
				return
			}
			io.Copy(io.Discard, res.Body)
			if res.StatusCode != 401 {
				fail("status " + res.Status)
				return
			}
			answered.Add(1)
			if _, err := io.Copy(io.Discard, br); err == nil || !isTimeout(err) {
				closed.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d slow-body connections without a key: %d answered, %d closed by the server, in %v (body timeout %v)", n, answered.Load(), closed.Load(), took.Round(time.Millisecond), timeout)
	if answered.Load() != int64(n) || closed.Load() != int64(n) || len(failures) > 0 {
		t.Errorf("answered %d, closed %d of %d; failures: %v", answered.Load(), closed.Load(), n, failures)
	}
	if took >= timeout {
		t.Errorf("took %v, not within the body timeout %v", took, timeout)
	}
	if got := fx.upstream.take(); len(got) != 0 {
		t.Errorf("the upstream received %d requests", len(got))
	}
}

// TestReplayMarkKeptAfterUpstreamTookBody: once the upstream has the whole signed sample, the
// replay mark stays, whatever happens next (issue #11: the client hanging up released it and 5 of 5
// replays were accepted). When the upstream certainly did not take it (nothing listening, or a 5xx)
// the mark is released and the device's retry goes through.
func TestReplayMarkKeptAfterUpstreamTookBody(t *testing.T) {
	for _, kind := range []string{TransportFast, TransportStd} {
		t.Run(kind, func(t *testing.T) { testReplayMarks(t, kind) })
	}
}

func testReplayMarks(t *testing.T, kind string) {
	var mode atomic.Value // "hold", "ok", "503"
	mode.Store("ok")
	got, dropped := make(chan struct{}, 16), make(chan struct{}, 16)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch mode.Load() {
		case "hold":
			got <- struct{}{}
			<-r.Context().Done() // until keygate drops the request (the client hung up)
			dropped <- struct{}{}
			return
		case "503":
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, `{"success":true}`)
	}))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)
	// A port with nothing listening, for "connection refused".
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL, _ := url.Parse("http://" + ln.Addr().String())
	ln.Close()
	var target atomic.Pointer[url.URL]
	target.Store(upURL)

	// A switchable transport lets the test point the gateway at a dead port.
	base := NewTransport(TransportOptions{Kind: kind, DialTimeout: 2 * time.Second, ResponseHeaderTimeout: 10 * time.Second})
	fx := newCatalogueFixture(t, func(_ policy.Face, o *Options) {
		o.Upstream = upURL
		o.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r.URL.Host = target.Load().Host
			return base.RoundTrip(r)
		})
	})

	sign := func(t *testing.T) []byte {
		t.Helper()
		body := []byte(fmt.Sprintf(`{"protected":{"ver":"v1","alg":"HS256","iat":%d},"signature":"%s","payload":{"device_name":"d-%d","device_type":"T","interval_ms":1,"sensors":[],"values":[]}}`,
			time.Now().Unix(), strings.Repeat("0", 64), time.Now().UnixNano()))
		s, err := verify.Parse(body, verify.FormatJSON)
		if err != nil {
			t.Fatal(err)
		}
		mac := s.MAC(body, []byte(catalogueHMAC))
		hex := fmt.Sprintf("%x", mac)
		return bytes.Replace(body, []byte(strings.Repeat("0", 64)), []byte(hex), 1)
	}
	post := func(ctx context.Context, body []byte) (int, error) {
		r, _ := http.NewRequestWithContext(ctx, "POST", fx.ingestion.URL+"/api/training/data", bytes.NewReader(body))
		r.Header.Set("x-api-key", fx.keys["ingest1"])
		r.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}

	t.Run("client hangs up after the upstream took the body", func(t *testing.T) {
		body := sign(t)
		mode.Store("hold")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := post(ctx, body); done <- err }()
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("the upstream never received the sample")
		}
		cancel()
		<-done
		select { // keygate has given up on the upstream request: its decision about the mark is made
		case <-dropped:
		case <-time.After(5 * time.Second):
			t.Fatal("keygate did not drop the upstream request after the client hung up")
		}
		mode.Store("ok")
		accepted := 0
		for range 5 {
			// The gateway notices the hang-up asynchronously; each try is a fresh replay.
			if code, err := post(context.Background(), body); err != nil || code != 409 {
				accepted++
			}
		}
		if accepted != 0 {
			t.Errorf("%d of 5 replays accepted after the client hung up", accepted)
		}
	})
	t.Run("nothing listening: released, the retry passes", func(t *testing.T) {
		body := sign(t)
		target.Store(deadURL)
		if code, err := post(context.Background(), body); err != nil || code != 502 {
			t.Fatalf("upstream down: %d %v", code, err)
		}
		target.Store(upURL)
		if code, _ := post(context.Background(), body); code != 200 {
			t.Errorf("retry after a refused connection: %d", code)
		}
		if code, _ := post(context.Background(), body); code != 409 {
			t.Errorf("replay after acceptance: %d", code)
		}
	})
	t.Run("5xx: released, the retry passes", func(t *testing.T) {
		body := sign(t)
		mode.Store("503")
		if code, _ := post(context.Background(), body); code != 503 {
			t.Fatalf("upstream 503: %d", code)
		}
		mode.Store("ok")
		if code, _ := post(context.Background(), body); code != 200 {
			t.Errorf("retry after a 5xx: %d", code)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestRefusedUploadSeenByClient: an ordinary client uploading without a key reads the 401, not a
// reset, while keygate closes the connection instead of draining the upload.
func TestRefusedUploadSeenByClient(t *testing.T) {
	fx := newCatalogueFixture(t, nil)
	for _, size := range []int{10, 1 << 20, 20 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			for range 3 {
				r, _ := http.NewRequest("POST", fx.studio.URL+"/v1/api/1/raw-data/3/rename", bytes.NewReader(make([]byte, size)))
				res, err := http.DefaultClient.Do(r)
				if err != nil {
					t.Fatalf("the client did not read the answer: %v", err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 401 || !strings.Contains(errorText(t, body), "missing x-api-key") {
					t.Fatalf("%d %s", res.StatusCode, body)
				}
			}
		})
	}
	if got := fx.upstream.take(); len(got) != 0 {
		t.Errorf("the upstream received %d requests", len(got))
	}
}
