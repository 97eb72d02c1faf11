// Package remote is the remote-management face (docs/protocol.md §6): a device opens a websocket,
// names its API key in the first message (the hello), and keygate relays the session to the
// websocket upstream. A hello is identified and authorized by the gateway's own steps
// (proxy.Identify, proxy.Authorize, proxy.SetIdentity), so both faces judge a key alike.
package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keygate/keygate/internal/apierr"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/proxy"
)

// Options configure the remote-management face (docs/protocol.md §6).
type Options struct {
	// Upstream is the websocket server (ws:// or wss://).
	Upstream *url.URL
	Resolver proxy.Resolver
	// HelloTimeout is how long a device may take to send its hello (10s).
	HelloTimeout time.Duration
	// MaxHello bounds the hello message in bytes (64 KiB).
	MaxHello int64
	// IdleTimeout closes a session when the device sends nothing (not even a ping) for this long
	// (clients ping every 30 s). Zero: 2 minutes.
	IdleTimeout time.Duration
	// OneSessionPerDevice keeps one live session per (project, deviceId): a new hello replaces the
	// older session (the platform allows one; a reconnecting device's old socket is usually dead).
	OneSessionPerDevice bool
	// MaxSessionsPerKey and MaxSessionsPerProject bound concurrent sessions (0: no bound).
	MaxSessionsPerKey     int
	MaxSessionsPerProject int
	Metrics               *Metrics
	Log                   *slog.Logger
	// DialTLS, when set, makes the TLS connections to a wss:// upstream (extra roots and a client
	// certificate, KEYGATE_UPSTREAM_CA_FILE and _CLIENT_CERT_FILE); nil: the system roots.
	DialTLS func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Metrics are the remote face's series.
type Metrics struct {
	Sessions prometheus.Gauge
	Hellos   *prometheus.CounterVec
}

// NewMetrics registers the remote face's metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keygate_remote_sessions", Help: "Open remote-management sessions."}),
		Hellos: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_remote_hellos_total", Help: "Remote-management hellos by result (accepted, or why refused).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.Sessions, m.Hellos)
	return m
}

// Remote authenticates devices by the API key in their first websocket message, then relays the
// session to the upstream frame by frame. gorilla/websocket is used because keygate must see the
// first message and relay pings and pongs itself (libraries that answer pings internally would
// hide them from the upstream).
type Face struct {
	opt      Options
	upgrader websocket.Upgrader
	dialer   *websocket.Dialer

	mu         sync.Mutex
	byHash     map[keys.Hash]map[*session]struct{}
	byKey      map[int64]int
	byProject  map[int64]int
	byDevice   map[deviceKey]*session
	wg         sync.WaitGroup
	closing    bool
	allSession map[*session]struct{}
}

type deviceKey struct {
	project int64
	device  string
}

type session struct {
	device, upstream *websocket.Conn
	hash             keys.Hash
	p                keys.Principal
	deviceID         string
	once             sync.Once
}

// close ends both sides with a close frame carrying the reason the device logs.
func (s *session) close(code int, reason string) {
	s.once.Do(func() {
		deadline := time.Now().Add(time.Second)
		msg := websocket.FormatCloseMessage(code, reason)
		_ = s.device.WriteControl(websocket.CloseMessage, msg, deadline)
		if s.upstream != nil {
			_ = s.upstream.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, reason), deadline)
			s.upstream.Close()
		}
		s.device.Close()
	})
}

var _ http.Handler = (*Face)(nil)

// New builds the remote face.
func New(o Options) *Face {
	if o.HelloTimeout <= 0 {
		o.HelloTimeout = 10 * time.Second
	}
	if o.MaxHello <= 0 {
		o.MaxHello = 64 << 10
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	pool := &sync.Pool{}
	return &Face{
		opt: o,
		upgrader: websocket.Upgrader{
			ReadBufferSize: 1024, WriteBufferSize: 1024, WriteBufferPool: pool,
			// Devices authenticate in the first message, not with ambient credentials such as
			// cookies, so a cross-origin page gains nothing a script could not do directly.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		dialer: &websocket.Dialer{
			HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024, WriteBufferPool: pool,
			NetDialContext:    (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			NetDialTLSContext: o.DialTLS,
		},
		byHash: map[keys.Hash]map[*session]struct{}{}, byKey: map[int64]int{}, byProject: map[int64]int{},
		byDevice: map[deviceKey]*session{}, allSession: map[*session]struct{}{},
	}
}

func (rm *Face) count(result string) {
	if rm.opt.Metrics != nil {
		rm.opt.Metrics.Hellos.WithLabelValues(result).Inc()
	}
}

// refuse answers {"hello": false, "err": reason} in the session's encoding and closes.
func (rm *Face) refuse(c *websocket.Conn, msgType int, code int, result, reason string) {
	rm.count(result)
	deadline := time.Now().Add(2 * time.Second)
	_ = c.SetWriteDeadline(deadline)
	body := map[string]any{"hello": false, "err": reason}
	var b []byte
	if msgType == websocket.BinaryMessage {
		b, _ = cbor.Marshal(body)
	} else {
		b, _ = json.Marshal(body)
		msgType = websocket.TextMessage
	}
	_ = c.WriteMessage(msgType, b)
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline)
	c.Close()
	rm.opt.Log.Info("remote session refused", "result", result, "reason", reason)
}

// ServeHTTP upgrades the connection and runs the session.
func (rm *Face) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := proxy.RequestID(r.Header)
	w.Header()[proxy.HeaderRequestID] = []string{rid}
	if !websocket.IsWebSocketUpgrade(r) {
		proxy.RefuseBody(w, r) // answer at once, do not drain a body nobody will read
		apierr.Write(w, apierr.New(http.StatusBadRequest, apierr.OutcomeBadRequest, "the remote-management face speaks websocket only: open a websocket and send a hello", nil))
		return
	}
	dev, err := rm.upgrader.Upgrade(w, r, http.Header{proxy.HeaderRequestID: {rid}})
	if err != nil {
		return // the upgrader has answered
	}
	dev.SetReadLimit(rm.opt.MaxHello)
	_ = dev.SetReadDeadline(time.Now().Add(rm.opt.HelloTimeout))
	msgType, raw, err := dev.ReadMessage()
	if err != nil {
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			rm.refuse(dev, websocket.TextMessage, websocket.ClosePolicyViolation, "timeout", fmt.Sprintf("no hello within %s", rm.opt.HelloTimeout))
		case errors.Is(err, websocket.ErrReadLimit):
			rm.refuse(dev, websocket.TextMessage, websocket.CloseMessageTooBig, "too_large", fmt.Sprintf("hello larger than %d bytes", rm.opt.MaxHello))
		default:
			rm.count("disconnected")
			dev.Close()
		}
		return
	}
	h, err := parseHello(msgType == websocket.BinaryMessage, raw)
	if err != nil {
		// The reason names the problem (a duplicate or case-variant key) but never echoes a value.
		rm.refuse(dev, msgType, websocket.ClosePolicyViolation, "malformed", "the first message must be a hello: {\"hello\": {\"apiKey\": …}}; "+helloProblem(err))
		return
	}
	if h.APIKey == "" {
		rm.refuse(dev, msgType, websocket.ClosePolicyViolation, "unauthorized", "hello.apiKey is missing")
		return
	}
	p, err := proxy.Identify(r.Context(), rm.opt.Resolver, h.APIKey)
	if err == nil {
		err = proxy.Authorize(p, policy.Route{Face: policy.FaceRemote, Class: policy.ClassRemote})
	}
	if e := (*apierr.Error)(nil); errors.As(err, &e) {
		// The gateway's answer, as a close: retry later when the key store is away, else refused.
		code := websocket.ClosePolicyViolation
		if e.RetryAfter > 0 {
			code = websocket.CloseTryAgainLater
		}
		rm.refuse(dev, msgType, code, string(e.Outcome), e.Public)
		return
	}
	s := &session{device: dev, hash: keys.HashKey(h.APIKey), p: p, deviceID: h.DeviceID}
	if reason := rm.admit(s); reason != "" {
		rm.refuse(dev, msgType, websocket.ClosePolicyViolation, "limit", reason)
		return
	}
	defer rm.leave(s)

	hdr := http.Header{proxy.HeaderRequestID: {rid}}
	proxy.SetIdentity(hdr, p)
	if xff := r.RemoteAddr; xff != "" {
		if host, _, err := net.SplitHostPort(xff); err == nil {
			hdr.Set("X-Forwarded-For", host)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	up, resp, err := rm.dialer.DialContext(ctx, rm.opt.Upstream.String(), hdr)
	cancel()
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		rm.refuse(dev, msgType, websocket.CloseTryAgainLater, "upstream_error", "remote management is unavailable, try again shortly")
		rm.opt.Log.Warn("remote upstream dial failed", "err", err)
		return
	}
	s.upstream = up
	// Forward the hello unchanged, in the session's encoding.
	if err := up.WriteMessage(msgType, raw); err != nil {
		s.close(websocket.CloseTryAgainLater, "remote management is unavailable, try again shortly")
		return
	}
	rm.count("accepted")
	start := time.Now()
	rm.opt.Log.Info("remote session open", "project", p.ProjectID, "key_id", p.KeyID, "device", s.deviceID, "encoding", encodingName(msgType))
	if at, reason := keyDeadline(p); !at.IsZero() {
		// The key expires, or (a rolled secret) its grace ends, during the session: end it then, as a
		// revocation would, on every replica alike (no announcement is needed for a deadline).
		t := time.AfterFunc(time.Until(at), func() {
			rm.opt.Log.Info("remote session closed: "+reason, "project", p.ProjectID, "key_id", p.KeyID, "device", s.deviceID)
			s.close(websocket.ClosePolicyViolation, reason)
		})
		defer t.Stop()
	}
	dev.SetReadLimit(0)
	_ = dev.SetReadDeadline(time.Now().Add(rm.opt.IdleTimeout))
	why := rm.relay(s)
	s.close(websocket.CloseNormalClosure, "")
	rm.opt.Log.Info("remote session closed", "project", p.ProjectID, "key_id", p.KeyID, "device", s.deviceID, "duration", time.Since(start), "reason", why)
}

// keyDeadline is when a principal stops working (zero: never) and the close reason then.
func keyDeadline(p keys.Principal) (time.Time, string) {
	switch {
	case p.GraceUntil != 0 && (p.Expires == 0 || p.GraceUntil <= p.Expires):
		return time.UnixMilli(p.GraceUntil), "API key revoked"
	case p.Expires != 0:
		return time.UnixMilli(p.Expires), "API key expired"
	}
	return time.Time{}, ""
}

func encodingName(t int) string {
	if t == websocket.BinaryMessage {
		return "cbor"
	}
	return "json"
}

// relay copies frames both ways until either side closes. Pings, pongs and close frames are
// forwarded as they arrive; data frames stream through without buffering whole messages.
func (rm *Face) relay(s *session) string {
	dev, up := s.device, s.upstream
	deadline := func() time.Time { return time.Now().Add(5 * time.Second) }
	dev.SetPingHandler(func(data string) error {
		_ = dev.SetReadDeadline(time.Now().Add(rm.opt.IdleTimeout))
		return up.WriteControl(websocket.PingMessage, []byte(data), deadline())
	})
	dev.SetPongHandler(func(data string) error {
		_ = dev.SetReadDeadline(time.Now().Add(rm.opt.IdleTimeout))
		return up.WriteControl(websocket.PongMessage, []byte(data), deadline())
	})
	up.SetPingHandler(func(data string) error { return dev.WriteControl(websocket.PingMessage, []byte(data), deadline()) })
	up.SetPongHandler(func(data string) error { return dev.WriteControl(websocket.PongMessage, []byte(data), deadline()) })
	closeFwd := func(to *websocket.Conn) func(int, string) error {
		return func(code int, text string) error {
			msg := websocket.FormatCloseMessage(code, text)
			if code == websocket.CloseNoStatusReceived {
				msg = websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			}
			_ = to.WriteControl(websocket.CloseMessage, msg, deadline())
			return nil
		}
	}
	dev.SetCloseHandler(closeFwd(up))
	up.SetCloseHandler(closeFwd(dev))

	done := make(chan string, 2)
	pipe := func(from, to *websocket.Conn, name string, touch bool) {
		for {
			t, rd, err := from.NextReader()
			if err != nil {
				done <- name + ": " + closeReason(err)
				return
			}
			if touch {
				_ = from.SetReadDeadline(time.Now().Add(rm.opt.IdleTimeout))
			}
			wr, err := to.NextWriter(t)
			if err != nil {
				done <- name + ": write: " + err.Error()
				return
			}
			if _, err := io.Copy(wr, rd); err != nil {
				done <- name + ": copy: " + err.Error()
				return
			}
			if err := wr.Close(); err != nil {
				done <- name + ": flush: " + err.Error()
				return
			}
		}
	}
	go pipe(dev, up, "device", true)
	go pipe(up, dev, "upstream", false)
	why := <-done
	// Give the other direction a moment to deliver a close frame that is in flight.
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	return why
}

func closeReason(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("closed %d %s", ce.Code, ce.Text)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "idle timeout"
	}
	return err.Error()
}

// admit registers a session within the configured bounds; it returns a refusal reason or "".
func (rm *Face) admit(s *session) string {
	rm.mu.Lock()
	if rm.closing {
		rm.mu.Unlock()
		return "gateway is shutting down"
	}
	if n := rm.opt.MaxSessionsPerKey; n > 0 && rm.byKey[s.p.KeyID] >= n {
		rm.mu.Unlock()
		return fmt.Sprintf("too many open sessions for API key %d (limit %d)", s.p.KeyID, n)
	}
	if n := rm.opt.MaxSessionsPerProject; n > 0 && rm.byProject[s.p.ProjectID] >= n {
		rm.mu.Unlock()
		return fmt.Sprintf("too many open sessions for project %d (limit %d)", s.p.ProjectID, n)
	}
	var replaced *session
	if rm.opt.OneSessionPerDevice && s.deviceID != "" {
		dk := deviceKey{s.p.ProjectID, s.deviceID}
		replaced = rm.byDevice[dk]
		rm.byDevice[dk] = s
	}
	if rm.byHash[s.hash] == nil {
		rm.byHash[s.hash] = map[*session]struct{}{}
	}
	rm.byHash[s.hash][s] = struct{}{}
	rm.allSession[s] = struct{}{}
	rm.byKey[s.p.KeyID]++
	rm.byProject[s.p.ProjectID]++
	rm.wg.Add(1)
	rm.mu.Unlock()
	if rm.opt.Metrics != nil {
		rm.opt.Metrics.Sessions.Inc()
	}
	if replaced != nil {
		replaced.close(websocket.ClosePolicyViolation, "replaced by a newer session of this device")
	}
	return ""
}

func (rm *Face) leave(s *session) {
	rm.mu.Lock()
	if set := rm.byHash[s.hash]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(rm.byHash, s.hash)
		}
	}
	delete(rm.allSession, s)
	dk := deviceKey{s.p.ProjectID, s.deviceID}
	if rm.byDevice[dk] == s {
		delete(rm.byDevice, dk)
	}
	if rm.byKey[s.p.KeyID]--; rm.byKey[s.p.KeyID] <= 0 {
		delete(rm.byKey, s.p.KeyID)
	}
	if rm.byProject[s.p.ProjectID]--; rm.byProject[s.p.ProjectID] <= 0 {
		delete(rm.byProject, s.p.ProjectID)
	}
	rm.mu.Unlock()
	if rm.opt.Metrics != nil {
		rm.opt.Metrics.Sessions.Dec()
	}
	rm.wg.Done()
}

// Apply ends the open sessions of a revoked key (the store's announcements).
func (rm *Face) Apply(e keys.Event) {
	graceEnds := e.Kind == keys.EventKeyChanged && e.GraceUntil != 0
	if e.Kind != keys.EventRevoked && !graceEnds {
		return
	}
	rm.mu.Lock()
	var victims []*session
	for s := range rm.byHash[e.Hash] {
		victims = append(victims, s)
	}
	rm.mu.Unlock()
	if graceEnds {
		// The session's secret was replaced by a roll: it ends when the grace does.
		at := time.UnixMilli(e.GraceUntil)
		for _, s := range victims {
			time.AfterFunc(time.Until(at), func() {
				rm.opt.Log.Info("remote session closed: rolled key's grace ended", "project", s.p.ProjectID, "key_id", s.p.KeyID, "device", s.deviceID)
				s.close(websocket.ClosePolicyViolation, "API key revoked")
			})
		}
		return
	}
	for _, s := range victims {
		rm.opt.Log.Info("remote session closed: key revoked", "project", s.p.ProjectID, "key_id", s.p.KeyID, "device", s.deviceID)
		s.close(websocket.ClosePolicyViolation, "API key revoked")
	}
}

// Shutdown closes every session with "going away" (devices reconnect elsewhere) and waits for them.
func (rm *Face) Shutdown(ctx context.Context) {
	rm.mu.Lock()
	rm.closing = true
	var all []*session
	for s := range rm.allSession {
		all = append(all, s)
	}
	rm.mu.Unlock()
	for _, s := range all {
		s.close(websocket.CloseGoingAway, "gateway restarting")
	}
	done := make(chan struct{})
	go func() { rm.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Sessions is the number of open sessions.
func (rm *Face) Sessions() int {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return len(rm.allSession)
}
