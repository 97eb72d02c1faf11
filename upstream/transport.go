// Package upstream is keygate's client for the upstream hop: an HTTP/1.1 http.RoundTripper that
// runs each round trip on the calling goroutine over a bounded keep-alive pool.
//
// http.Transport serves every connection with a reader and a writer goroutine and hands each
// request and response between them over channels; a proxy pays for those hand-offs on every
// request. Here the handler's goroutine writes the request and reads the response itself; only a
// request with a body gets a writer goroutine, so that an upstream answering before it has read the
// body (413, 401) cannot deadlock the exchange. The wire format is net/http's own: responses are
// read as http.ReadResponse reads them, so framing (chunked, Content-Length, trailers,
// read-until-close, no body for HEAD/204/304) follows the same rules as http.Transport's. The
// head of a request without a body or with one of a known length is written by appendHead
// (head.go) with the same header lines as Request.Write's, held to it by a differential test and
// a fuzz target. A bodiless head goes out in one write, made inside the poller wait for the
// answer when the round trip polls (sendAndWait: no read that returns EAGAIN first). Bodies of
// unknown length (chunked) and unusual requests are written by (*http.Request).Write. (Common responses are parsed in place by fastResponse, response.go,
// and everything else by http.ReadResponse.)
//
// A round trip whose context ends closes its connection. A request with a body registers
// context.AfterFunc for that up front; a bodiless one first only keeps its read deadline within
// cancelPoll (50 ms) and registers when a read reaches it, so an answer within 50 ms costs no
// registration, and a cancellation before then is acted on within 50 ms.
//
// https upstreams and protocol upgrades (101) go to Options.Fallback (an http.Transport): TLS
// session caching, ALPN and certificate configuration live in one well-tested place, the TLS
// work dwarfs the hand-off cost this package saves, and keygate's sidecar upstreams are plain
// HTTP on loopback.
package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Options tune a Transport. Zero values take the defaults named on each field.
type Options struct {
	// DialTimeout bounds connecting to the upstream (default 5s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response headers once the request is written
	// (0: no bound beyond the request's context). The connection is closed when it expires.
	ResponseHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections left unused this long (default 90s).
	IdleTimeout time.Duration
	// MaxIdlePerHost bounds the idle connections kept per upstream (default 512); connections
	// beyond it are closed when their response ends.
	MaxIdlePerHost int
	// MaxResponseHeaderBytes bounds a response's header block, each 1xx counted afresh
	// (default 1 MiB).
	MaxResponseHeaderBytes int64
	// ExpectContinueTimeout is how long a request with "Expect: 100-continue" waits for the
	// upstream's 100 before sending the body anyway (default 1s).
	ExpectContinueTimeout time.Duration
	// Fallback carries the requests this transport does not: https upstreams and protocol
	// upgrades. Nil: such requests fail.
	Fallback http.RoundTripper
	// DialContext replaces the TCP dialer (tests); nil: net.Dialer with DialTimeout.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Defaults.
const (
	DefaultDialTimeout            = 5 * time.Second
	DefaultIdleTimeout            = 90 * time.Second
	DefaultMaxIdlePerHost         = 512
	DefaultMaxResponseHeaderBytes = 1 << 20
	DefaultExpectContinueTimeout  = time.Second
	// max1xx bounds the informational responses before the final one.
	max1xx = 16
)

// Transport is the upstream RoundTripper. It is safe for concurrent use.
type Transport struct {
	opt  Options
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.Mutex
	pools  map[string]*hostPool // per host:port; entries stay (one per upstream address used)
	reaper *time.Timer
	// last is the pool of the URL host most recently asked for: keygate forwards to one upstream,
	// so most round trips find their pool here without hostPort or a map lookup.
	last atomic.Pointer[hostCache]
}

// hostPool holds the idle connections to one host:port, most recently used last (under t.mu).
type hostPool struct {
	key  string
	idle []*conn
}

// hostCache maps a request URL's host, as written, to its pool.
type hostCache struct {
	host string
	p    *hostPool
}

var _ http.RoundTripper = (*Transport)(nil)

// New builds a Transport.
func New(o Options) *Transport {
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxIdlePerHost <= 0 {
		o.MaxIdlePerHost = DefaultMaxIdlePerHost
	}
	if o.MaxResponseHeaderBytes <= 0 {
		o.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
	if o.ExpectContinueTimeout <= 0 {
		o.ExpectContinueTimeout = DefaultExpectContinueTimeout
	}
	t := &Transport{opt: o, pools: map[string]*hostPool{}}
	t.dial = o.DialContext
	if t.dial == nil {
		t.dial = (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	return t
}

// Errors a round trip can end with, besides the network's and the context's.
var (
	// ErrHeaderTimeout is ResponseHeaderTimeout expiring; it reports Timeout() (504 in keygate).
	ErrHeaderTimeout  error = timeoutError{}
	errTooMany1xx           = errors.New("upstream: too many 1xx informational responses")
	errHeaderTooLarge       = errors.New("upstream: response headers exceed the size limit")
	errBodyClosed           = errors.New("upstream: read on closed response body")
	errSkipBody             = errors.New("upstream: body not sent: the upstream answered and closes")
	errUnaskedSwitch        = errors.New("upstream: 101 Switching Protocols to a request that asked for no upgrade")
)

type timeoutError struct{}

func (timeoutError) Error() string   { return "upstream: timeout awaiting response headers" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// RoundTrip sends one request and returns the upstream's final response. The response body must be
// read to its end (or closed) for the connection to be reused.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeReqBody(req)
		return nil, errors.New("upstream: nil Request.URL")
	}
	if req.URL.Scheme != "http" {
		return t.fallback(req)
	}
	ctx := req.Context()
	trace := httptrace.ContextClientTrace(ctx)
	var head *headBuf
	if headFast(req, trace) {
		// appendHead notes an upgrade as it goes: the head is dropped for the fallback then.
		// A bodiless request's head is written before RoundTrip returns, so its buffer is
		// pooled; a body's writer may outlive the round trip (an early answer), and a retry
		// sends the head again: that head gets a buffer of its own.
		pooled := !hasBody(req)
		if pooled {
			head = headPool.Get().(*headBuf)
		} else {
			head = &headBuf{b: make([]byte, 0, 1024)}
		}
		var err error
		head.b, head.fl, err = appendHead(head.b[:0], req)
		if err == nil && head.fl&flagUpgrade == 0 {
			if pooled {
				defer putHead(head)
			}
		} else {
			if pooled {
				putHead(head)
			}
			head = nil
			if isUpgrade(req.Header) {
				return t.fallback(req)
			}
			if err != errDecline {
				closeReqBody(req)
				return nil, err
			}
			// Request.Write writes the head.
			if err := validate(req); err != nil {
				closeReqBody(req)
				return nil, err
			}
		}
	} else if isUpgrade(req.Header) {
		return t.fallback(req)
	} else if err := validate(req); err != nil {
		closeReqBody(req)
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		closeReqBody(req)
		return nil, context.Cause(ctx)
	}
	pool := t.pool(req.URL.Host)
	for attempt := 0; ; attempt++ {
		c, err := t.get(ctx, pool, attempt > 0)
		if err != nil {
			closeReqBody(req)
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, err
		}
		resp, rerr := c.roundTrip(ctx, req, head, trace)
		if rerr == nil {
			return resp, nil
		}
		if attempt == 0 && rerr.retry && ctx.Err() == nil {
			if hasBody(req) {
				body, err := req.GetBody()
				if err != nil {
					return nil, rerr.err
				}
				r2 := *req
				r2.Body = body
				req = &r2
			}
			continue
		}
		return nil, rerr.err
	}
}

// fallback hands req to Options.Fallback (https upstreams, upgrades).
func (t *Transport) fallback(req *http.Request) (*http.Response, error) {
	if t.opt.Fallback != nil {
		return t.opt.Fallback.RoundTrip(req)
	}
	closeReqBody(req)
	return nil, fmt.Errorf("upstream: %s requests need a fallback transport", req.URL.Scheme)
}

// CloseIdleConnections closes the idle keep-alive connections (and the fallback's).
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	var all []*conn
	for _, p := range t.pools {
		all = append(all, p.idle...)
		clear(p.idle)
		p.idle = p.idle[:0]
	}
	t.mu.Unlock()
	for _, c := range all {
		c.close()
	}
	if f, ok := t.opt.Fallback.(interface{ CloseIdleConnections() }); ok {
		f.CloseIdleConnections()
	}
}

// IdleConns is the number of idle keep-alive connections (for tests and metrics).
func (t *Transport) IdleConns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.pools {
		n += len(p.idle)
	}
	return n
}

// pool returns the pool for a request URL's host.
func (t *Transport) pool(host string) *hostPool {
	if hc := t.last.Load(); hc != nil && hc.host == host {
		return hc.p
	}
	key := hostPort(host)
	t.mu.Lock()
	p := t.pools[key]
	if p == nil {
		p = &hostPool{key: key}
		t.pools[key] = p
	}
	t.mu.Unlock()
	t.last.Store(&hostCache{host: host, p: p})
	return p
}

// get returns an idle connection that is still open and quiet, or dials a new one.
func (t *Transport) get(ctx context.Context, p *hostPool, fresh bool) (*conn, error) {
	if !fresh {
		for {
			t.mu.Lock()
			cs := p.idle
			if len(cs) == 0 {
				t.mu.Unlock()
				break
			}
			c := cs[len(cs)-1]
			cs[len(cs)-1] = nil
			p.idle = cs[:len(cs)-1]
			t.mu.Unlock()
			// An idle connection must have nothing to read: bytes there are either the upstream's
			// close (EOF) or data nobody asked for, which must never be taken as the next answer.
			now := time.Now()
			if now.Sub(c.idleAt) < t.opt.IdleTimeout && c.quiet() {
				c.start = now
				return c, nil
			}
			c.close()
		}
	}
	nc, err := t.dial(ctx, "tcp", p.key)
	if err != nil {
		return nil, fmt.Errorf("upstream: dial %s: %w", p.key, err)
	}
	c := &conn{t: t, pool: p, nc: nc, limit: -1, start: time.Now()}
	c.br = bufio.NewReaderSize(c, 4<<10)
	c.bw = bufio.NewWriterSize(countWriter{c}, 4<<10)
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.peekFn = c.peek
			c.sendFn = c.sendThenWait
		}
	}
	return c, nil
}

// put returns a connection to the idle pool, or closes it when the pool is full.
func (t *Transport) put(c *conn) {
	c.reused = true
	c.idleAt = time.Now()
	t.mu.Lock()
	p := c.pool
	if len(p.idle) >= t.opt.MaxIdlePerHost {
		t.mu.Unlock()
		c.close()
		return
	}
	p.idle = append(p.idle, c)
	if t.reaper == nil {
		t.reaper = time.AfterFunc(t.opt.IdleTimeout, t.reap)
	}
	t.mu.Unlock()
}

// reap closes the connections idle longer than IdleTimeout and re-arms while any stay idle.
func (t *Transport) reap() {
	now := time.Now()
	var old []*conn
	var next time.Duration
	t.mu.Lock()
	for _, p := range t.pools {
		cs := p.idle
		i := 0
		for i < len(cs) && now.Sub(cs[i].idleAt) >= t.opt.IdleTimeout {
			i++
		}
		old = append(old, cs[:i]...)
		rest := append(cs[:0], cs[i:]...)
		clear(cs[len(rest):])
		p.idle = rest
		if len(rest) == 0 {
			continue
		}
		if d := t.opt.IdleTimeout - now.Sub(rest[0].idleAt); next == 0 || d < next {
			next = d
		}
	}
	if next > 0 {
		t.reaper.Reset(next)
	} else {
		t.reaper = nil
	}
	t.mu.Unlock()
	for _, c := range old {
		c.close()
	}
}

// conn is one upstream connection. While in use it belongs to one round trip.
type conn struct {
	t      *Transport
	pool   *hostPool
	nc     net.Conn
	rc     syscall.RawConn
	peekFn func(fd uintptr)
	br     *bufio.Reader
	bw     *bufio.Writer
	reused bool
	idleAt time.Time

	// Read accounting, owned by the reading goroutine: limit is the header bytes left (-1 while
	// reading a body), nread the bytes read in this round trip; armed is a read deadline still set
	// that a body read must not see (cleared lazily, on the body's first network read; the next
	// round trip sets its own).
	limit int64
	nread int64
	armed bool

	// Cancellation. stop ends the context.AfterFunc that closes the connection when the round
	// trip's context ends; nil while a bodiless round trip is only polling: instead of registering
	// with the request's context up front (an allocation, a child in its cancelCtx, a removal:
	// ~3k instructions), the read deadline is set at most cancelPoll ahead, and a read that
	// reaches it registers the AfterFunc then (see slowRead). Answers within cancelPoll never
	// register; a cancellation before it is seen within cancelPoll. hdrAt is the header deadline
	// of a polling round trip (zero: none).
	ctx   context.Context
	stop  func() bool
	hdrAt time.Time
	// pollAt, when not zero, is the read deadline set on the connection: a poll deadline, which
	// the next polling round trip keeps instead of setting a new one if it is at most
	// cancelPoll/5 earlier (one SetReadDeadline saved per request under load). Every other
	// deadline change zeroes it.
	pollAt time.Time
	// start is when the round trip got the connection (get's clock reading, reused).
	start time.Time
	// nwrite is the bytes written in this round trip (by the writing goroutine).
	nwrite int64

	// The header deadline is armed by the body writer once it has sent the request; mu orders that
	// against the reader disarming it when the headers are in.
	mu           sync.Mutex
	awaitHeaders bool

	peekN   int
	peekErr error
	peekBuf [1]byte

	// sendAndWait's state, for its callback sendFn (bound once, as peekFn is).
	sendFn   func(fd uintptr) bool
	send     []byte
	sendN    int
	sendDone bool

	closeOnce sync.Once
	broken    atomic.Bool
}

func (c *conn) Read(p []byte) (int, error) {
	if c.armed && c.limit < 0 && c.stop != nil {
		// The header deadline stays set until the body needs the network: most bodies arrive with
		// their headers, and the next round trip sets its own deadline (one call per request, not two).
		c.setReadDeadline(time.Time{})
		c.armed = false
	}
	if c.limit >= 0 {
		if c.limit == 0 {
			return 0, errHeaderTooLarge
		}
		if int64(len(p)) > c.limit {
			p = p[:c.limit]
		}
	}
	n, err := c.nc.Read(p)
	c.nread += int64(n)
	if c.limit >= 0 {
		c.limit -= int64(n)
	}
	if err != nil && c.stop == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return c.slowRead(p, n, err)
	}
	return n, err
}

// slowRead is a polling round trip's read reaching its poll deadline: the round trip now watches
// its context with context.AfterFunc (which runs at once if the context already ended), the
// deadline becomes the header deadline while the headers are read (none for the body), and the
// read goes on. A header deadline that has passed is returned as the timeout it is.
func (c *conn) slowRead(p []byte, n int, err error) (int, error) {
	c.stop = context.AfterFunc(c.ctx, c.abort)
	if c.limit >= 0 && !c.hdrAt.IsZero() {
		if !time.Now().Before(c.hdrAt) {
			return n, err
		}
		c.setReadDeadline(c.hdrAt)
		c.armed = true
	} else {
		c.setReadDeadline(time.Time{})
		c.armed = false
	}
	if n > 0 {
		return n, nil
	}
	return c.Read(p)
}

// setReadDeadline sets a read deadline other than a poll deadline, from the reading goroutine.
func (c *conn) setReadDeadline(t time.Time) {
	c.pollAt = time.Time{}
	_ = c.nc.SetReadDeadline(t)
}

// unwatch ends the round trip's cancellation watch, reporting false if the context ended and
// the connection is being closed for it.
func (c *conn) unwatch() bool {
	stop := c.stop
	c.stop, c.ctx = noStop, nil
	if stop == nil {
		return true
	}
	return stop()
}

// cancelPoll bounds how long a bodiless round trip waits before it watches its context with
// context.AfterFunc; maxPolledHead is the largest head written before that watch (a larger one
// could fill the socket buffer and block the write).
const (
	cancelPoll    = 50 * time.Millisecond
	maxPolledHead = 16 << 10
)

type countWriter struct{ c *conn }

func (w countWriter) Write(p []byte) (int, error) {
	n, err := w.c.nc.Write(p)
	w.c.nwrite += int64(n)
	return n, err
}

func (c *conn) close() {
	c.closeOnce.Do(func() { c.broken.Store(true); c.nc.Close() })
}

// abort is the request context ending: the connection is closed, which unblocks any read or write.
func (c *conn) abort() { c.close() }

// rtError is a failed round trip and whether it may be retried on a fresh connection.
type rtError struct {
	err   error
	retry bool
}

// roundTrip writes req and reads the final response on c. head, when not nil, is req's head
// already serialized (a request without a body): it goes out in one write.
func (c *conn) roundTrip(ctx context.Context, req *http.Request, head *headBuf, trace *httptrace.ClientTrace) (*http.Response, *rtError) {
	c.nread, c.nwrite = 0, 0
	timeout := c.t.opt.ResponseHeaderTimeout
	poll := ctx.Done() != nil && !hasBody(req) && (head == nil || len(head.b) <= maxPolledHead)
	c.stop, c.ctx = noStop, nil
	if poll {
		c.stop, c.ctx = nil, ctx
	} else if ctx.Done() != nil {
		c.stop = context.AfterFunc(ctx, c.abort)
	}
	var w *bodyWriter
	if hasBody(req) {
		c.pollAt = time.Time{} // the writer sets deadlines of its own
		if c.armed {
			_ = c.nc.SetReadDeadline(time.Time{}) // the last request's, left for this one to clear
			c.armed = false
		}
		w = c.startWriter(req, timeout, head)
	} else {
		var err error
		// A polling round trip's head goes out inside the wait for its answer (sendAndWait), which
		// the poll deadline bounds: set first. Not under a header deadline alone (no poll, or a
		// header timeout shorter than the poll): that deadline would run while a large head is
		// still going out, and bytes that came unasked before the wait would wake nobody and end
		// as ErrHeaderTimeout at it, where a read after the write reads them (slowRead reads
		// them once a poll deadline passes).
		waitSend := head != nil && poll && (timeout <= 0 || timeout > cancelPoll)
		if waitSend {
			c.armRead(poll, timeout)
		}
		if head != nil {
			n := 0
			if waitSend {
				n = c.sendAndWait(head.b)
				c.nwrite += int64(n)
			}
			if n < len(head.b) {
				// A full socket buffer or an error: written (or the error met) the usual way.
				n, err = c.nc.Write(head.b[n:])
				c.nwrite += int64(n)
			}
		} else if err = req.Write(c.bw); err == nil {
			err = c.bw.Flush()
		}
		if err != nil {
			c.unwatch()
			c.close()
			return nil, c.fail(ctx, req, nil, err)
		}
		if !waitSend {
			c.armRead(poll, timeout)
		}
	}

	c.limit = c.t.opt.MaxResponseHeaderBytes
	var resp *http.Response
	var err error
	for n1xx := 0; ; n1xx++ {
		resp, err = readResponse(c.br, req)
		if err != nil {
			break
		}
		code := resp.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			break
		}
		if n1xx == max1xx {
			err = errTooMany1xx
			break
		}
		// Relay first, then release the body: a proxy that passes the 100 on has then sent it
		// before its server could send its own on the first body read (one 100, not two).
		if trace != nil && trace.Got1xxResponse != nil {
			if err = trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				break
			}
		}
		if code == http.StatusContinue && w != nil {
			w.proceed(true)
		}
		c.limit = c.t.opt.MaxResponseHeaderBytes
	}
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		// Upgrades go to the fallback: a 101 here was not asked for, and what follows it is not HTTP.
		err = errUnaskedSwitch
	}
	c.limit = -1
	if w != nil {
		c.mu.Lock()
		c.awaitHeaders = false
		if timeout > 0 {
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		c.mu.Unlock()
	}
	if err != nil {
		c.unwatch()
		c.close()
		if w != nil {
			w.proceed(false)
		}
		return nil, c.fail(ctx, req, w, err)
	}
	closeHdr := false
	if head != nil {
		closeHdr = head.fl&flagClose != 0
	} else {
		closeHdr = hasClose(req.Header)
	}
	keep := !resp.Close && !req.Close && !closeHdr
	if w != nil {
		// http.Transport's rule: without a 100, send the body anyway unless the connection closes.
		w.proceed(keep)
	}
	var b *body
	if lb, ok := resp.Body.(*lengthBody); ok && lb.wrap != nil {
		b = lb.wrap // allocated with the response (fastResp)
	} else {
		b = new(body)
	}
	b.ctx, b.c, b.rc, b.w, b.keep = ctx, c, resp.Body, w, keep
	if resp.Body == http.NoBody {
		b.finish(true)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

func noStop() bool { return true }

// armRead sets the read deadline a bodiless round trip waits for its answer under: the poll
// deadline (kept from the last round trip when close enough, see pollAt), else the header
// timeout, else none (clearing one an earlier round trip left).
func (c *conn) armRead(poll bool, timeout time.Duration) {
	switch {
	case poll:
		now := c.start
		d := now.Add(cancelPoll)
		c.hdrAt = time.Time{}
		if timeout > 0 {
			c.hdrAt = now.Add(timeout)
			if c.hdrAt.Before(d) {
				d = c.hdrAt
			}
		}
		if at := c.pollAt; at.IsZero() || !at.After(now) || at.After(d) || d.Sub(at) > cancelPoll/5 {
			_ = c.nc.SetReadDeadline(d)
			c.pollAt = d
		}
		c.armed = true
	case timeout > 0:
		c.setReadDeadline(time.Now().Add(timeout))
		c.armed = true
	case c.armed:
		// A deadline left by an earlier round trip (a poll's, say) must not end this one.
		c.setReadDeadline(time.Time{})
		c.armed = false
	}
}

// fail maps a round-trip error: the context's cause when it ended, ErrHeaderTimeout for the header
// deadline, a request-body read error as itself (so a MaxBytesError stays a 413), and whether a
// retry on a fresh connection is safe (http.Transport's rules: a reused connection, no response
// byte, and a request that can be sent again).
func (c *conn) fail(ctx context.Context, req *http.Request, w *bodyWriter, err error) *rtError {
	if ctx.Err() != nil {
		return &rtError{err: context.Cause(ctx)}
	}
	if w != nil {
		select {
		case <-w.done:
			if w.bodyErr != nil {
				return &rtError{err: w.bodyErr}
			}
		default:
		}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &rtError{err: ErrHeaderTimeout}
	}
	retry := false
	if c.reused && c.nread == 0 {
		switch {
		case w == nil && c.nwrite == 0:
			retry = true // nothing was sent
		case w == nil:
			retry = idempotent(req)
		default:
			retry = req.GetBody != nil && idempotent(req)
		}
	}
	if errors.Is(err, io.EOF) && c.nread == 0 {
		err = errors.New("upstream closed the connection before answering")
	}
	return &rtError{err: fmt.Errorf("upstream: %w", err), retry: retry}
}

// bodyWriter sends a request with a body on its own goroutine, so the response can be read while
// the body is still going out.
type bodyWriter struct {
	done    chan struct{}
	err     error // the write's error (valid after done)
	bodyErr error // an error reading the request body (valid after done)
	cont    chan bool
	expect  bool
	sent    bool // proceed was called (reader side)
}

func (c *conn) startWriter(req *http.Request, timeout time.Duration, head *headBuf) *bodyWriter {
	w := &bodyWriter{done: make(chan struct{})}
	r2 := *req
	br := &bodyReader{r: req.Body, w: w}
	if req.ProtoAtLeast(1, 1) && expectsContinue(req.Header) {
		w.expect = true
		w.cont = make(chan bool, 1)
		br.wait = c.t.opt.ExpectContinueTimeout
	}
	r2.Body = br
	c.awaitHeaders = true
	go func() {
		var err error
		if head != nil {
			err = writeHeadBody(c.bw, head.b, br, req.ContentLength)
		} else if err = r2.Write(c.bw); err == nil {
			err = c.bw.Flush()
		}
		w.err = err
		if errors.Is(err, errSkipBody) {
			w.err = nil // the upstream answered without a 100 and closes: nothing more to send
		}
		if w.err == nil && timeout > 0 {
			c.mu.Lock()
			if c.awaitHeaders {
				_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
			}
			c.mu.Unlock()
		}
		close(w.done)
		if w.bodyErr != nil {
			// The upstream waits for the rest of a body that will not come.
			c.close()
		}
	}()
	return w
}

// proceed tells a writer waiting for "100 Continue" whether to send the body (once).
func (w *bodyWriter) proceed(send bool) {
	if w.expect && !w.sent {
		w.sent = true
		w.cont <- send
	}
}

// maxWriteWait is how long a response that ended before its request finished going out waits for
// the writer before giving the connection up (http.Transport's maxWriteWaitBeforeConnReuse).
const maxWriteWait = 50 * time.Millisecond

// finishedWithin reports whether the whole request went out without error, waiting up to d.
func (w *bodyWriter) finishedWithin(d time.Duration) bool {
	select {
	case <-w.done:
		return w.err == nil
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.done:
		return w.err == nil
	case <-t.C:
		return false
	}
}

// bodyReader is the request body as the writer reads it: it waits for 100 Continue when asked to
// and records read errors so they are reported as the request's, not the network's.
type bodyReader struct {
	r      io.ReadCloser
	w      *bodyWriter
	wait   time.Duration
	waited bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.wait > 0 && !b.waited {
		b.waited = true
		t := time.NewTimer(b.wait)
		select {
		case send := <-b.w.cont:
			t.Stop()
			if !send {
				return 0, errSkipBody
			}
		case <-t.C:
		}
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.w.bodyErr = err
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.r.Close() }

// body is the response body: the connection goes back to the pool when it has been read to its end
// and everyone agreed to keep it; on any other ending the connection is closed.
type body struct {
	ctx  context.Context
	c    *conn
	rc   io.ReadCloser
	w    *bodyWriter
	keep bool
	done atomic.Bool
	eof  bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	if b.done.Load() {
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
		b.finish(true)
	case err != nil:
		b.finish(false)
		if b.ctx.Err() != nil {
			err = context.Cause(b.ctx)
		}
	}
	return n, err
}

// Close ends the body. Before its end, the connection is closed rather than drained: draining
// could wait on a slow upstream.
func (b *body) Close() error {
	b.finish(b.eof)
	return nil
}

func (b *body) finish(eof bool) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	c := b.c
	reuse := c.unwatch() && eof && b.keep && !c.broken.Load() && c.br.Buffered() == 0
	if reuse && b.w != nil {
		reuse = b.w.finishedWithin(maxWriteWait)
	}
	if reuse {
		c.t.put(c)
	} else {
		c.close()
	}
}

// validate refuses what http.Transport refuses before writing.
func validate(req *http.Request) error {
	if req.URL.Host == "" {
		return errors.New("upstream: no Host in request URL")
	}
	if req.Method != "" && !validMethod(req.Method) {
		return fmt.Errorf("upstream: invalid method %q", req.Method)
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("upstream: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("upstream: invalid header field value for %q", k)
			}
		}
	}
	for k := range req.Trailer {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("upstream: invalid trailer field name %q", k)
		}
	}
	return nil
}

func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

func hasBody(req *http.Request) bool { return req.Body != nil && req.Body != http.NoBody }

func closeReqBody(req *http.Request) {
	if hasBody(req) {
		req.Body.Close()
	}
}

// idempotent is http.Transport's replayable-method rule.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}

func isUpgrade(h http.Header) bool {
	_, ok := h["Upgrade"]
	return ok && httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade")
}

func hasClose(h http.Header) bool {
	v, ok := h["Connection"]
	return ok && httpguts.HeaderValuesContainsToken(v, "close")
}

func expectsContinue(h http.Header) bool {
	v, ok := h["Expect"]
	return ok && len(v) > 0 && strings.EqualFold(strings.TrimSpace(v[0]), "100-continue")
}

// hostPort adds the default port to an http URL's host.
func hostPort(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		return host + ":80"
	}
	if strings.Count(host, ":") > 1 {
		return "[" + host + "]:80"
	}
	return host + ":80"
}
