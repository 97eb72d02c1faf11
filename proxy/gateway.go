// Package proxy is the gateway: an http.Handler that routes, identifies, authorizes, limits,
// verifies and forwards each request, in that order, and answers every refusal as one JSON shape.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/accesslog"
	"github.com/keygate/keygate/internal/apierr"
	"github.com/keygate/keygate/internal/redact"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/policy"
)

// Resolver turns an x-api-key value into a principal (cache.Resolver).
type Resolver interface {
	Resolve(ctx context.Context, key string) (keys.Principal, error)
}

// UsageRecorder records that a key was used, when and from which client address (keys.UsageRecorder).
type UsageRecorder interface {
	Touch(p keys.Principal, at time.Time, ip string)
}

// Limiter decides whether a request is within its rate limits. A nil Limiter allows everything.
type Limiter interface {
	// Allow returns the headers to add (RateLimit-*) and a non-nil *apierr.Error (429) when over a limit.
	Allow(ctx context.Context, r *http.Request, p keys.Principal, route policy.Route, h http.Header) error
	// AllowDevice checks the per-device limit once a verified sample has named its device.
	AllowDevice(ctx context.Context, p keys.Principal, device string, h http.Header) error
}

// BodyVerifier checks ingestion bodies before they are forwarded (signatures, replay, size).
type BodyVerifier interface {
	// VerifyIngest may replace r.Body with an equivalent reader over the same bytes; it returns the
	// verdict to forward, or a non-nil *apierr.Error to refuse.
	VerifyIngest(r *http.Request, p keys.Principal, route policy.Route) (Verdict, error)
}

// Verdict is the outcome of verifying an ingestion body.
type Verdict struct {
	// Signature is the X-Keygate-Signature value: valid, invalid or unsigned (or why it was refused).
	Signature string
	// Files lists each file's result for multipart uploads (X-Keygate-Signature-Files).
	Files []string
	// Device is the device_name of a verified sample, for the per-device rate limit.
	Device string
	// Release, when non-nil, forgets the replay marks this verdict recorded. The gateway calls it
	// only when the upstream certainly did not take the sample (the request failed before the
	// body's last byte was taken, or the upstream answered 5xx), so a device's retry is not refused
	// as a replay while a replay after a hang-up still is (docs/security.md, Replay marks).
	Release func()
}

// DeniedRecorder is implemented by a Local handler that keeps a record of refused key-management
// attempts (admin.Handler's audit trail): the gateway reports each refusal of its authorization step.
type DeniedRecorder interface {
	Denied(r *http.Request, p keys.Principal)
}

// AccessLogger writes one access-log line per request.
type AccessLogger interface {
	Log(r *accesslog.Record)
}

// Options configure one face's Gateway. Nil hooks are skipped.
type Options struct {
	// Face is which listener this is; it selects the route table.
	Face policy.Face
	// Upstream is where allowed requests go.
	Upstream *url.URL
	// Resolver identifies keys (required).
	Resolver Resolver
	// Local answers the key-management endpoints (admin.Handler); nil: they are forwarded upstream.
	Local http.Handler
	// Page serves the Keys web page (admin.Page); nil: /keys is not served.
	Page http.Handler
	// Usage records last-used times; nil: not recorded.
	Usage UsageRecorder
	// Limiter enforces rate limits; nil: no limits.
	Limiter Limiter
	// Verifier checks ingestion bodies; nil: bodies are forwarded unchecked.
	Verifier BodyVerifier
	// Transport reaches the upstream (NewTransport); nil: a default-tuned one.
	Transport http.RoundTripper
	// StripAPIKey removes x-api-key before forwarding. Default false: real backends may check it.
	StripAPIKey bool
	// MaxBody caps request bodies in bytes (413 beyond it); 0: no cap. A body without a declared
	// length is read up to the cap before anything is forwarded, so nothing reaches the upstream of a
	// body that turns out too large.
	MaxBody int64
	// BodyTimeout bounds reading a request body, from keygate's first read (after the key is checked)
	// to the last byte: 408 after it. 0: no deadline.
	BodyTimeout time.Duration
	// Metrics, when set, are updated per request.
	Metrics *Metrics
	// AccessLog, when set, gets one line per request (accesslog.Writer).
	AccessLog AccessLogger
	// TrustedProxies are the peers whose X-Forwarded-For is believed (KEYGATE_TRUSTED_PROXIES): a
	// request from one is attributed to the right-most address in the header that is not itself a
	// trusted proxy. Empty: the peer's address, whatever the header says.
	TrustedProxies []netip.Prefix
}

// Gateway is one face's handler.
type Gateway struct {
	opt   Options
	rp    *httputil.ReverseProxy
	face  string
	wpool sync.Pool
	// idents caches identity header values by key id (see identity).
	idents [256]atomic.Pointer[identityHeaders]
}

var _ http.Handler = (*Gateway)(nil)

// Identity headers keygate sets for the upstream; any client-sent header with this prefix is dropped.
const (
	HeaderProject   = "X-Keygate-Project"
	HeaderRole      = "X-Keygate-Role"
	HeaderKeyID     = "X-Keygate-Key-Id"
	HeaderDev       = "X-Keygate-Development-Key"
	HeaderSignature = "X-Keygate-Signature"
	identityPrefix  = "X-Keygate-"
	headerAPIKey    = "X-Api-Key"
	headerNosniff   = "X-Content-Type-Options"
	// HeaderRequestID carries the request's id: the client's when well-formed, else keygate's own;
	// forwarded upstream and returned on every answer.
	HeaderRequestID = "X-Request-Id"
)

// nosniff is the X-Content-Type-Options value, shared so setting it allocates nothing (a header
// slice of capacity one: an append elsewhere copies it).
var nosniff = []string{"nosniff"}

// New builds a Gateway.
func New(opt Options) *Gateway {
	if opt.Transport == nil {
		opt.Transport = NewTransport(TransportOptions{DialTimeout: 5 * time.Second, ResponseHeaderTimeout: 60 * time.Second})
	}
	g := &Gateway{opt: opt, face: opt.Face.String()}
	g.wpool.New = func() any { return &statusWriter{} }
	g.rp = &httputil.ReverseProxy{
		Rewrite: g.rewrite,
		ModifyResponse: func(res *http.Response) error {
			// handle set nosniff on the answer already (nosniff is its only value): the
			// upstream's copy would only duplicate it.
			delete(res.Header, headerNosniff)
			// The answer carries keygate's X-Request-Id (set before forwarding), not a second one.
			delete(res.Header, HeaderRequestID)
			// A 5xx says the upstream did not keep the sample: the device's retry is not a replay.
			if res.StatusCode >= 500 {
				if st, _ := res.Request.Context().Value(stateKey{}).(*state); st != nil && st.release != nil {
					st.release()
				}
			}
			return nil
		},
		Transport:    opt.Transport,
		BufferPool:   newBufferPool(),
		ErrorHandler: g.upstreamError,
		ErrorLog:     slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
	return g
}

// state is what the steps learned about a request, carried to Rewrite and the access log. Once
// forwarding starts it is also the request's context: it answers Value(stateKey{}) with itself and
// hands every other question to the context it wraps (Context), so carrying it to Rewrite,
// ModifyResponse and the error handler costs no context.WithValue.
type state struct {
	context.Context
	route     policy.Route
	principal keys.Principal
	path      string
	signature string
	files     string
	release   func()
	outcome   apierr.Outcome
	err       error
	// requestID is the X-Request-Id value set on the answer and forwarded (a one-element slice,
	// backed by ridBuf when keygate made the id).
	requestID []string
	ridBuf    [1]string
	// start is when keygate began serving the request.
	start time.Time
	// clientIP is what clientIP worked out (empty until asked).
	clientIP string
	// fwd backs the X-Forwarded-For and -Host values (setXForwarded).
	fwd [2]string
	// scrub: the client sent a header rewrite drops (checkHeaders saw it; most requests do not).
	scrub bool
	// body is the client's body once keygate started reading it (nil before, or without a body).
	body *clientBody
	// wrote is set once the upstream transport has taken the whole body (read it to its end): from
	// then on the upstream may have the sample, and its replay mark is kept whatever happens.
	wrote atomic.Bool
}

type stateKey struct{}

// Value implements context.Context.
func (st *state) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return st
	}
	return st.Context.Value(key)
}

// ServeHTTP runs the steps in order: route → identify → authorize → limit → verify → forward.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := g.wpool.Get().(*statusWriter)
	sw.reset(w)
	st := &state{start: start}
	st.requestID = requestID(r.Header, &st.ridBuf)
	w.Header()[HeaderRequestID] = st.requestID
	if ambiguousFraming(r) {
		w.Header()["Connection"] = connectionClose
	}
	declared, raw := hasBody(r), r.Body
	if err := g.handle(sw, r, st); err != nil {
		var e *apierr.Error
		if errors.As(err, &e) {
			st.outcome = e.Outcome
		}
		st.err = err
		if declared && (st.body == nil || !st.body.done.Load()) {
			refuseUnread(w, r, raw)
		}
		apierr.Write(sw, err)
	}
	if st.body != nil {
		st.body.detach()
	}
	g.finish(r, sw, st, start)
	sw.reset(nil)
	sw.rec = accesslog.Record{}
	g.wpool.Put(sw)
}

func (g *Gateway) handle(w http.ResponseWriter, r *http.Request, st *state) error {
	// 1. route: the request must be in the canonical form (docs/security.md), and the path is
	// judged exactly as it will be forwarded.
	scrub, err := checkHeaders(r.Header, g.face)
	if err != nil {
		st.path = r.URL.EscapedPath() // logged as received (keys redacted by the access log)
		return err
	}
	st.scrub = scrub
	if err := checkQuery(r.URL.RawQuery); err != nil {
		st.path = r.URL.EscapedPath()
		return err
	}
	path, err := policy.CanonicalPath(r.URL.EscapedPath())
	if err != nil {
		st.path = r.URL.EscapedPath()
		return g.routeError(err, r.Method, "")
	}
	st.path = path
	route, err := policy.Match(g.opt.Face, r.Method, path)
	if err != nil {
		return g.routeError(err, r.Method, path)
	}
	st.route = route
	if route.Public {
		if g.opt.Page == nil {
			return g.routeError(policy.ErrNoRoute, r.Method, path)
		}
		// The page's static files take no body; one sent anyway (slowly, without a key) would be
		// drained by net/http before the page's answer.
		if hasBody(r) {
			return apierr.New(http.StatusBadRequest, apierr.OutcomeBadRequest, "the Keys page takes no request body", nil)
		}
		st.outcome = apierr.OutcomePage
		g.opt.Page.ServeHTTP(w, r)
		return nil
	}

	// 2. identify.
	p, err := Identify(r.Context(), g.opt.Resolver, firstHeader(r.Header, headerAPIKey))
	if err != nil {
		return err
	}
	st.principal = p

	// 3. authorize.
	if err := Authorize(p, route); err != nil {
		if d, ok := g.opt.Local.(DeniedRecorder); ok && route.Local != policy.EndpointNone {
			d.Denied(r.WithContext(keys.WithClientIP(r.Context(), g.clientIP(r, st))), p)
		}
		return err
	}
	if g.opt.Usage != nil {
		g.opt.Usage.Touch(p, st.start, g.clientIP(r, st))
	}

	// 4. limit.
	if g.opt.Limiter != nil {
		if err := g.opt.Limiter.Allow(r.Context(), r, p, route, w.Header()); err != nil {
			return err
		}
	}

	// The body phase starts here, with the key checked: cap and deadline before the first read.
	if err := g.startBody(unwrap(w), r, st); err != nil {
		return err
	}

	st.Context = r.Context()
	var ctx context.Context = st
	if route.Local != policy.EndpointNone && g.opt.Local != nil {
		st.outcome = apierr.OutcomeLocal
		w.Header()[headerNosniff] = nosniff
		lr := r.WithContext(keys.WithClientIP(keys.WithPrincipal(ctx, p), g.clientIP(r, st)))
		lr.URL.Path, lr.URL.RawPath = path, ""
		g.opt.Local.ServeHTTP(w, lr)
		return nil
	}

	// 5. verify.
	if route.Ingest != "" && g.opt.Verifier != nil {
		v, err := g.opt.Verifier.VerifyIngest(r, p, route)
		st.signature = v.Signature
		if err != nil {
			if st.body != nil && st.body.cutShort() {
				return bodyTimeout()
			}
			return err
		}
		st.release = v.Release
		if len(v.Files) > 1 {
			st.files = strings.Join(v.Files, ",")
		}
		// The verified device_name is limited whatever X-Device-Id says (a client rotating that
		// header must not escape it); when the header names the same device it was counted already.
		if v.Device != "" && g.opt.Limiter != nil && firstHeader(r.Header, "X-Device-Id") != v.Device {
			if err := g.opt.Limiter.AllowDevice(r.Context(), p, v.Device, w.Header()); err != nil {
				if v.Release != nil {
					v.Release()
				}
				return err
			}
		}
	}

	// 6. forward. Every answer keygate relays says nosniff, so no browser sniffs a JSON answer
	// that echoes caller text into HTML or script. A body without a declared length is read to the
	// end (up to the cap) first, so a body over the cap sends nothing upstream.
	if r.ContentLength < 0 && g.opt.MaxBody > 0 && r.Body != nil && r.Body != http.NoBody {
		body, err := bufferBody(r)
		if err != nil {
			return bodyError(err, st)
		}
		replaceBody(r, body)
	}
	if st.release != nil && r.Body != nil && r.Body != http.NoBody {
		r.Body = &sentBody{ReadCloser: r.Body, st: st, size: r.ContentLength}
	}
	st.outcome = apierr.OutcomeForwarded
	w.Header()[headerNosniff] = nosniff
	g.rp.ServeHTTP(w, r.WithContext(ctx))
	return nil
}

// ClientIP is the address keygate attributes a request to: the peer's address (keygate is the edge;
// it trusts no forwarding header). It does not allocate: the host is a substring of RemoteAddr.
func ClientIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// clientIP is ClientIP, or with trusted proxies configured the address X-Forwarded-For names;
// worked out once per request (st caches it).
func (g *Gateway) clientIP(r *http.Request, st *state) string {
	if st.clientIP != "" {
		return st.clientIP
	}
	ip := ClientIP(r)
	if len(g.opt.TrustedProxies) > 0 {
		ip = ForwardedClientIP(ip, r.Header["X-Forwarded-For"], g.opt.TrustedProxies)
	}
	st.clientIP = ip
	return ip
}

// ForwardedClientIP walks X-Forwarded-For from the right while each hop is a trusted proxy and
// returns the first address that is not (or the left-most, if all are). A peer that is not
// trusted, or a malformed entry, ends the walk: nothing further left can be believed.
func ForwardedClientIP(peer string, xff []string, trusted []netip.Prefix) string {
	addr, err := netip.ParseAddr(peer)
	if err != nil || !inPrefixes(addr.Unmap(), trusted) {
		return peer
	}
	ip := peer
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for line != "" {
			j := strings.LastIndexByte(line, ',')
			hop := strings.TrimSpace(line[j+1:])
			if j < 0 {
				line = ""
			} else {
				line = line[:j]
			}
			a, err := netip.ParseAddr(hop)
			if err != nil {
				return ip
			}
			ip = hop
			if !inPrefixes(a.Unmap(), trusted) {
				return ip
			}
		}
	}
	return ip
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// maxRequestID bounds a client-supplied X-Request-Id (longer ones are replaced).
const maxRequestID = 128

var (
	// ridPrefix makes generated ids unique across replicas and restarts; ridSeq within this one.
	ridPrefix [16]byte
	ridSeq    atomic.Uint64
)

func init() {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		binary.BigEndian.PutUint64(b[:], uint64(time.Now().UnixNano()))
	}
	hex.Encode(ridPrefix[:], b[:])
}

// requestID returns the X-Request-Id to use, as a header value slice of capacity one: the
// client's own (its slice reused, no allocation) when it is 1–128 visible ASCII characters,
// else a new id (32 hex digits: a per-process random prefix and a counter).
func requestID(h http.Header, buf *[1]string) []string {
	if v := h[HeaderRequestID]; len(v) > 0 && validRequestID(v[0]) {
		return v[:1:1]
	}
	var b [32]byte
	copy(b[:16], ridPrefix[:])
	n := ridSeq.Add(1)
	for i := 31; i >= 16; i-- {
		b[i] = hexDigits[n&0xf]
		n >>= 4
	}
	buf[0] = string(b[:])
	return buf[:]
}

const hexDigits = "0123456789abcdef"

// RequestID is the X-Request-Id for a request with headers h (the client's when well-formed, else
// a new one), for faces other than the gateway's (the remote face).
func RequestID(h http.Header) string {
	var buf [1]string
	return requestID(h, &buf)[0]
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestID {
		return false
	}
	// A key sent as the request id would be echoed, forwarded and logged.
	if strings.Contains(s, "ei_") && redact.Path(s) != s {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// firstHeader reads a header by its canonical name without allocating.
func firstHeader(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// rewrite builds the outbound request: upstream URL, canonical path, identity headers set by
// keygate only. It changes only Out, so a client's Connection header cannot strip what is set here.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	st, _ := pr.In.Context().Value(stateKey{}).(*state)
	u := g.opt.Upstream
	out := pr.Out
	out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
	out.Host = ""
	if st != nil {
		out.URL.Path = joinPath(u.Path, st.path)
	}
	out.URL.RawPath = ""
	out.URL.RawQuery = pr.In.URL.RawQuery
	setXForwarded(pr, st)
	// Request trailers arrive after the judgement, and some servers merge them into the headers:
	// none is forwarded (clients of the platform send none).
	out.Trailer = nil
	h := out.Header
	if st == nil || st.scrub {
		for name := range h {
			if dropped(name) {
				delete(h, name)
			}
		}
	}
	if g.opt.StripAPIKey {
		delete(h, headerAPIKey)
	}
	if st == nil {
		return
	}
	h[HeaderRequestID] = st.requestID
	id := g.identity(st.principal)
	h[HeaderProject], h[HeaderRole], h[HeaderKeyID] = id.vals[0:1:1], id.vals[1:2:2], id.vals[2:3:3]
	if st.principal.Dev {
		h[HeaderDev] = headerTrue
	}
	if st.signature != "" {
		h[HeaderSignature] = []string{st.signature}
	}
	if st.files != "" {
		h[HeaderSignature+"-Files"] = []string{st.files}
	}
}

// Shared X-Forwarded-Proto values (never modified in place).
var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

// setXForwarded sets X-Forwarded-For, -Host and -Proto exactly as ProxyRequest.SetXForwarded does
// (ReverseProxy has removed any the client sent before Rewrite: the peer is the only hop), but
// without Header.Set's canonicalizing of constant names and with the values' slices in the
// request's state instead of three allocations (tested against SetXForwarded).
func setXForwarded(pr *httputil.ProxyRequest, st *state) {
	if st == nil {
		pr.SetXForwarded()
		return
	}
	h, in := pr.Out.Header, pr.In
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		st.fwd[0] = ip
		h["X-Forwarded-For"] = st.fwd[0:1:1]
	} else {
		delete(h, "X-Forwarded-For")
	}
	st.fwd[1] = in.Host
	h["X-Forwarded-Host"] = st.fwd[1:2:2]
	if in.TLS == nil {
		h["X-Forwarded-Proto"] = protoHTTP
	} else {
		h["X-Forwarded-Proto"] = protoHTTPS
	}
}

// headerTrue is a shared header value: header values set here are never modified in place.
var headerTrue = []string{"true"}

// identityHeaders are one principal's identity header values, built once and shared read-only by
// every request of that key (no per-request allocation for them).
type identityHeaders struct {
	keyID, project int64
	role           keys.Role
	vals           []string // project, role, key id
}

// identity returns p's header values from a small direct-mapped cache keyed by key id; a
// collision or a changed principal just builds them again.
func (g *Gateway) identity(p keys.Principal) *identityHeaders {
	slot := &g.idents[uint64(p.KeyID)%uint64(len(g.idents))]
	if id := slot.Load(); id != nil && id.keyID == p.KeyID && id.project == p.ProjectID && id.role == p.Role {
		return id
	}
	id := &identityHeaders{keyID: p.KeyID, project: p.ProjectID, role: p.Role,
		vals: []string{strconv.FormatInt(p.ProjectID, 10), p.Role.String(), strconv.FormatInt(p.KeyID, 10)}}
	slot.Store(id)
	return id
}

func joinPath(base, p string) string {
	if base == "" || base == "/" {
		return p
	}
	return strings.TrimSuffix(base, "/") + p
}

// upstreamError answers when the upstream could not be reached or did not answer in time.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	st, _ := r.Context().Value(stateKey{}).(*state)
	var e *apierr.Error
	var mbe *http.MaxBytesError
	var ne interface{ Timeout() bool }
	switch {
	case st != nil && st.body != nil && st.body.cutShort():
		// Checked first: the failed read also cancelled the request's context.
		e = bodyTimeout()
	case errors.As(err, &mbe):
		e = apierr.TooLarge(mbe.Limit)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody is left to answer.
		if st != nil {
			st.outcome, st.err = apierr.OutcomeClientClosed, err
			st.releaseIfNotSent()
		}
		return
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		e = apierr.New(http.StatusGatewayTimeout, apierr.OutcomeUpstreamTimeout, "upstream did not answer in time", err)
	default:
		e = apierr.New(http.StatusBadGateway, apierr.OutcomeUpstreamError, "upstream is unavailable", err)
	}
	if st != nil {
		st.outcome, st.err = e.Outcome, err
		st.releaseIfNotSent()
	}
	apierr.Write(w, e)
}

// releaseIfNotSent forgets the request's replay marks only if the upstream certainly did not
// receive the whole request (the transport never took the body's last byte: no connection, a
// refused dial, a write that failed part way). Once the upstream may have taken the sample, hanging up, a timeout or a
// lost answer keep the marks: a replay must not be accepted because the client stopped listening.
func (st *state) releaseIfNotSent() {
	if st.release != nil && !st.wrote.Load() {
		st.release()
	}
}

// unwrap returns net/http's own ResponseWriter beneath keygate's statusWriter.
func unwrap(w http.ResponseWriter) http.ResponseWriter {
	if s, ok := w.(*statusWriter); ok {
		return s.ResponseWriter
	}
	return w
}

func (g *Gateway) finish(r *http.Request, sw *statusWriter, st *state, start time.Time) {
	d := time.Since(start)
	class := "none"
	if st.route.Class != 0 {
		class = st.route.Class.Label()
	}
	code := CodeClass(sw.status)
	if st.outcome == apierr.OutcomeClientClosed {
		code = "4xx" // nobody was answered: counted as the client's doing (nginx's 499)
	}
	if m := g.opt.Metrics; m != nil {
		s := m.series(g.face, class, st.outcome, code)
		s.requests.Inc()
		s.duration.Observe(d.Seconds())
	}
	if l := g.opt.AccessLog; l != nil {
		rec := &sw.rec
		*rec = accesslog.Record{
			Time: start.Add(d), Face: g.face, Method: r.Method, Path: st.path, Outcome: string(st.outcome), Class: class,
			Signature: st.signature, Status: sw.status, KeyID: st.principal.KeyID, Project: st.principal.ProjectID,
			Duration: d, BytesOut: sw.bytes, BytesIn: r.ContentLength,
			RequestID: st.requestID[0], ClientIP: g.clientIP(r, st), UserAgent: firstHeader(r.Header, "User-Agent"),
		}
		if st.err != nil {
			rec.Error = st.err.Error()
		}
		l.Log(rec)
	}
}

// statusWriter records the status and size of a response for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
	// rec is the request's access-log record, pooled with the writer.
	rec accesslog.Record
}

func (s *statusWriter) reset(w http.ResponseWriter) {
	s.ResponseWriter, s.status, s.bytes, s.wrote = w, http.StatusOK, 0, false
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote && code >= 200 {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Flush lets streamed responses through (ReverseProxy flushes via ResponseController).
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
