package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/cache"
	"github.com/keygate/keygate/internal/accesslog"
	"github.com/keygate/keygate/internal/logbuf"
	"github.com/keygate/keygate/internal/tlsfiles"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/proxy"
	"github.com/keygate/keygate/remote"
	"github.com/keygate/keygate/verify"
)

// Options are what a Server needs besides its configuration: where its logs go and who wants to
// know when it is up.
type Options struct {
	// Log receives keygate's own log lines (slog.Default() when nil).
	Log *slog.Logger
	// LogOutput receives the access log (os.Stderr when nil).
	LogOutput io.Writer
	// Version is logged at start.
	Version string
	// OnReady, when set, is called with every listener's bound address ("studio", "ingestion",
	// "remote", "ops") once they all accept connections.
	OnReady func(addrs map[string]string)
}

// sharedState is what a store backed by Redis offers besides keys: its client, so the replay
// marks and the rate-limit buckets are shared by every replica. A store without it (the embedded
// one) gets the in-process versions. Checked by interface, so a new backend offers it by
// implementing the method.
type sharedState interface {
	Client() redis.UniversalClient
}

// eventSink is anything that keeps state derived from the store and must hear its announcements.
type eventSink interface {
	Apply(keys.Event)
}

// face is one listener of the gateway, built by New and started by Run.
type face struct {
	name, addr string
	handler    http.Handler
}

// Server is one running keygate: the store, the caches, the faces and the ops listener.
type Server struct {
	cfg       Config
	opt       Options
	log       *slog.Logger
	store     keys.Store
	usage     *keys.UsageRecorder
	reg       *prometheus.Registry
	remote    *remote.Face // nil when the remote face is off
	sinks     []eventSink
	faces     []face
	accessLog *logbuf.Writer // nil when the access log is off
	ready     *readiness
	handout   *admin.Handout // nil unless KEYGATE_SERVICE_TOKEN_FILE is set
	// tlsFiles are the certificate files kept current while running (faces' pair, upstream roots
	// and client pair); facesCert is nil without KEYGATE_TLS_CERT_FILE.
	tlsFiles  []tlsfiles.Checker
	facesCert *tlsfiles.Pair
}

// New opens the store and builds every part of a keygate from cfg (already validated by
// Config.Validate). Nothing listens until Run.
func New(cfg Config, opt Options) (*Server, error) {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.LogOutput == nil {
		opt.LogOutput = os.Stderr
	}
	store, err := cfg.Open()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, opt: opt, log: opt.Log, store: store, reg: prometheus.NewRegistry()}
	if err := s.build(); err != nil {
		if s.accessLog != nil {
			s.accessLog.Close()
		}
		store.Close()
		return nil, err
	}
	return s, nil
}

// build makes every part of s from its configuration; what it started (the access log's flusher)
// is stopped by New when it fails.
func (s *Server) build() error {
	cfg, opt, store, log := s.cfg, s.opt, s.store, s.log
	if cfg.MasterKey == "" {
		WarnPlaintext(log)
	}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := proxy.NewMetrics(s.reg)
	s.reg.MustRegister(buildInfo(opt.Version))
	resolver := cache.NewResolver(store, cache.Options{
		Size: cfg.CacheSize, TTL: cfg.CacheTTL, NegativeTTL: cfg.NegativeCacheTTL, Grace: cfg.CacheGrace,
	})
	proxy.RegisterCacheMetrics(s.reg, resolver)
	projects := cache.NewProjects(store, cache.Options{TTL: cfg.CacheTTL, Grace: cfg.CacheGrace, Size: 10000})
	s.sinks = []eventSink{resolver, projects}
	s.ready = newReadiness(s.reg, log, cfg.CacheTTL+cfg.CacheGrace)

	// Replay marks and rate-limit buckets: shared through Redis when the store offers it (with the
	// local versions as the fallback while Redis is unreachable), in-process otherwise.
	memGuard := verify.NewMemoryReplayGuard(0, nil)
	var guard verify.ReplayGuard = memGuard
	var engine limit.Engine = limit.NewLocal(0, nil)
	if shared, ok := store.(sharedState); ok {
		registerPoolStats(s.reg, shared.Client())
		guard = keys.NewRedisReplayGuard(shared.Client())
		engine = &limit.Fallback{Primary: limit.NewRedis(shared.Client()), Secondary: engine, OnFallback: metrics.LimiterFallback.Inc}
	}
	limiter := &proxy.RateLimits{
		Engine: engine, Projects: projects, Headers: cfg.RateLimitHeaders, Metrics: metrics,
		Limits: policy.Limits{
			IngestionKey: map[keys.Role]keys.Limit{
				keys.RoleAdmin: cfg.LimitAdmin.Limit, keys.RoleIngestionDeployment: cfg.LimitIngestionDeployment.Limit,
				keys.RoleIngestion: cfg.LimitIngestion.Limit, keys.RoleReadOnly: cfg.LimitReadOnly.Limit,
			},
			IngestionProject: cfg.LimitProject.Limit, IngestionDevice: cfg.LimitDevice.Limit, StudioKey: cfg.StudioLimit.Limit,
		},
	}
	ingest := proxy.NewIngest(proxy.IngestOptions{
		Mode: proxy.SignatureMode(cfg.SignatureMode), MaxClockSkew: cfg.MaxClockSkew, RequireIAT: cfg.RequireIAT,
		Projects: projects, Replay: guard, Fallback: memGuard, MaxFiles: cfg.MaxFiles, Metrics: metrics, Log: log,
	})
	s.usage = keys.NewUsageRecorder(store, cfg.LastUsedInterval, log)

	upTLS, err := s.loadTLS()
	if err != nil {
		return err
	}
	topt := proxy.TransportOptions{
		Kind: cfg.UpstreamTransport, DialTimeout: cfg.UpstreamDialTimeout, ResponseHeaderTimeout: cfg.UpstreamTimeout, MaxIdleConnsPerHost: cfg.UpstreamMaxIdleConns,
	}
	var remoteDialTLS func(ctx context.Context, network, addr string) (net.Conn, error)
	if upTLS != nil {
		topt.DialTLS = func(d func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
			return upTLS.Dialer(d, "http/1.1")
		}
		remoteDialTLS = upTLS.Dialer((&net.Dialer{Timeout: cfg.UpstreamDialTimeout, KeepAlive: 30 * time.Second}).DialContext, "http/1.1")
	}
	transport := proxy.NewTransport(topt)
	if t, ok := transport.(interface{ IdleConns() int }); ok {
		// The fast transport's pool: idle upstream connections are the only sockets a quiet keygate
		// holds besides its listeners and Redis's, so a leak shows against this figure.
		s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keygate_upstream_idle_connections",
			Help: "Idle keep-alive connections to the upstreams (fast transport).",
		}, func() float64 { return float64(t.IdleConns()) }))
	}
	var accessLog proxy.AccessLogger
	if cfg.AccessLog {
		// Batched: a write system call per request line was ~7% of the CPU under load.
		s.accessLog = logbuf.New(opt.LogOutput, 64<<10, 200*time.Millisecond)
		accessLog = accesslog.New(s.accessLog, cfg.LogFormat == "text")
	}
	mgmt := admin.New(store, log)
	if cfg.ServiceTokenFile != "" {
		tok, err := admin.LoadServiceToken(cfg.ServiceTokenFile, log)
		if err != nil {
			return ConfigErrorf("%v", err)
		}
		if s.handout, err = admin.NewHandout(admin.HandoutOptions{Store: store, Token: tok, Metrics: s.reg, Log: log}); err != nil {
			return err
		}
		log.Info("development-key hand-out on the ops listener", "path", "/internal/projects/{projectId}/devkeys")
	}
	for _, f := range []struct {
		name, listen, upstream string
		face                   policy.Face
	}{
		{"studio", cfg.StudioListen, cfg.StudioUpstream, policy.FaceStudio},
		{"ingestion", cfg.IngestionListen, cfg.IngestionUpstream, policy.FaceIngestion},
	} {
		if f.upstream == "" {
			log.Info("face off (no upstream)", "face", f.name)
			continue
		}
		up, err := url.Parse(f.upstream)
		if err != nil {
			return ConfigErrorf("%s upstream: %v", f.name, err)
		}
		opt := proxy.Options{
			Face: f.face, Upstream: up, Resolver: resolver, Usage: s.usage, Transport: transport,
			StripAPIKey: cfg.StripAPIKey, MaxBody: int64(cfg.MaxBody), BodyTimeout: cfg.BodyTimeout, Metrics: metrics, AccessLog: accessLog,
			Limiter: limiter, TrustedProxies: cfg.TrustedProxies,
		}
		metrics.InitFace(f.name, classLabels)
		if f.face == policy.FaceStudio {
			opt.Local, opt.Page = mgmt, admin.NewPage()
		} else {
			opt.Verifier = ingest
		}
		s.faces = append(s.faces, face{f.name, f.listen, proxy.New(opt)})
	}
	if cfg.RemoteUpstream == "" {
		log.Info("face off (no upstream)", "face", "remote")
	} else {
		up, err := url.Parse(cfg.RemoteUpstream)
		if err != nil {
			return ConfigErrorf("remote upstream: %v", err)
		}
		s.remote = remote.New(remote.Options{
			Upstream: up, Resolver: resolver, HelloTimeout: cfg.RemoteHelloTimeout, IdleTimeout: cfg.RemoteIdleTimeout,
			OneSessionPerDevice: cfg.RemoteOneSessionPerDevice, MaxSessionsPerKey: cfg.RemoteMaxSessionsPerKey,
			MaxSessionsPerProject: cfg.RemoteMaxSessionsPerProject, Metrics: remote.NewMetrics(s.reg), Log: log,
			DialTLS: remoteDialTLS,
		})
		s.sinks = append(s.sinks, s.remote)
		s.faces = append(s.faces, face{"remote", cfg.RemoteListen, s.remote})
	}
	return nil
}

// loadTLS loads the certificate files named by the configuration (an error names the variable),
// registers their expiry gauge, and returns the upstream side (nil when nothing is configured).
func (s *Server) loadTLS() (*tlsfiles.Client, error) {
	cfg, log := s.cfg, s.log
	if cfg.TLSCertFile != "" {
		p, err := tlsfiles.LoadPair(cfg.TLSCertFile, cfg.TLSKeyFile, "faces", log)
		if err != nil {
			return nil, ConfigErrorf("KEYGATE_TLS_CERT_FILE/KEYGATE_TLS_KEY_FILE: want a PEM certificate and its key: %v", err)
		}
		s.facesCert = p
		s.tlsFiles = append(s.tlsFiles, p)
		s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keygate_tls_certificate_expiry_timestamp_seconds", Help: "When the certificate in use expires (Unix time), by use: faces (serving) or upstream_client (mTLS).",
			ConstLabels: prometheus.Labels{"cert": "faces"},
		}, func() float64 { return float64(p.NotAfter().Unix()) }))
	}
	if cfg.UpstreamCAFile == "" && cfg.UpstreamClientCertFile == "" {
		return nil, nil
	}
	c := &tlsfiles.Client{}
	if cfg.UpstreamCAFile != "" {
		pool, err := tlsfiles.LoadPool(cfg.UpstreamCAFile, log)
		if err != nil {
			return nil, ConfigErrorf("KEYGATE_UPSTREAM_CA_FILE: want a PEM bundle of CA certificates: %v", err)
		}
		c.Roots = pool
		s.tlsFiles = append(s.tlsFiles, pool)
	}
	if cfg.UpstreamClientCertFile != "" {
		p, err := tlsfiles.LoadPair(cfg.UpstreamClientCertFile, cfg.UpstreamClientKeyFile, "upstream client", log)
		if err != nil {
			return nil, ConfigErrorf("KEYGATE_UPSTREAM_CLIENT_CERT_FILE/KEYGATE_UPSTREAM_CLIENT_KEY_FILE: want a PEM certificate and its key: %v", err)
		}
		c.Cert = p
		s.tlsFiles = append(s.tlsFiles, p)
		s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keygate_tls_certificate_expiry_timestamp_seconds", Help: "When the certificate in use expires (Unix time), by use: faces (serving) or upstream_client (mTLS).",
			ConstLabels: prometheus.Labels{"cert": "upstream_client"},
		}, func() float64 { return float64(p.NotAfter().Unix()) }))
	}
	return c, nil
}

// background is one goroutine of a running keygate, stopped on its own so the drain can order them.
type background struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func start(fn func(ctx context.Context)) *background {
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		fn(ctx)
	}()
	return b
}

// stop ends the goroutine and waits for it at most bound; it reports whether it ended in time.
func (b *background) stop(bound time.Duration) bool {
	b.cancel()
	select {
	case <-b.done:
		return true
	case <-time.After(bound):
		return false
	}
}

// running is what Run starts and drain stops.
type running struct {
	faces         []*http.Server
	ops           *http.Server
	subscription  *background
	checker       *background
	usageFlusher  *background
	tlsWatcher    *background // nil without certificate files
	announcements *announcements
}

// Run serves until ctx ends (SIGTERM or SIGINT), then drains (see drain) and closes the store. It
// returns an error only when keygate could not start.
func (s *Server) Run(ctx context.Context) error {
	defer s.closeStore(storeBound)
	r := &running{announcements: &announcements{}}
	r.usageFlusher = start(s.usage.Run)
	if len(s.tlsFiles) > 0 {
		r.tlsWatcher = start(func(ctx context.Context) { tlsfiles.Watch(ctx, s.tlsFiles...) })
	}
	live := make(chan struct{})
	r.subscription = start(func(ctx context.Context) { s.follow(ctx, r.announcements, live) })
	listening := &listeners{}
	r.checker = start(func(ctx context.Context) {
		s.ready.run(ctx, []dependency{
			{name: "listeners", check: listening},
			{name: "store", check: s.store, storeUp: true},
			{name: "announcements", check: r.announcements},
		})
	})

	// Listen only once announcements flow, so no request is answered from a cache that could miss a
	// revocation (bounded: with Redis down at start, listen anyway and stay unready).
	select {
	case <-live:
	case <-time.After(5 * time.Second):
		s.log.Warn("store announcements not live yet (is Redis reachable?): /readyz answers 503 until they are")
	case <-ctx.Done():
	}
	if ctx.Err() != nil {
		s.drain(r)
		return nil
	}

	addrs, err := s.listen(r)
	if err != nil {
		s.drain(r)
		return err
	}
	listening.up.Store(true)
	s.ready.recheck(2 * time.Second)
	s.log.Info("keygate started", "version", s.opt.Version, "store", s.cfg.Kind())
	if s.opt.OnReady != nil {
		s.opt.OnReady(addrs)
	}
	<-ctx.Done()
	s.drain(r)
	return nil
}

// follow applies the store's change announcements to every cache until ctx ends. The first event
// (a resync, sent once the subscription is live) closes live.
func (s *Server) follow(ctx context.Context, a *announcements, live chan<- struct{}) {
	first := true
	for e := range s.store.Subscribe(ctx) {
		if first {
			// The first event means announcements are flowing: only now can a revocation made
			// elsewhere reach this replica, so only now is it ready.
			first = false
			a.live.Store(true)
			close(live)
		}
		for _, sink := range s.sinks {
			sink.Apply(e)
		}
	}
}

// listen binds every face and the ops listener (ops last) and serves them. On an error nothing
// stays bound.
func (s *Server) listen(r *running) (map[string]string, error) {
	addrs := map[string]string{}
	all := append(append([]face(nil), s.faces...), face{"ops", s.cfg.OpsListen, s.opsHandler()})
	lns := make([]net.Listener, 0, len(all))
	for _, f := range all {
		ln, err := net.Listen("tcp", f.addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("%s face: listen on %s: %w", f.name, f.addr, err)
		}
		lns = append(lns, ln)
	}
	for i, f := range all {
		srv := &http.Server{
			Handler: f.handler, ReadHeaderTimeout: s.cfg.ReadHeaderTimeout, IdleTimeout: s.cfg.IdleTimeout,
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		if f.name == "ops" {
			r.ops = srv
		} else {
			r.faces = append(r.faces, srv)
		}
		tlsOn := s.cfg.tlsOn(f.name)
		if tlsOn {
			// TLS 1.2 minimum; ServeTLS offers HTTP/2 (h2) besides HTTP/1.1, except on the remote
			// face: websocket upgrades are HTTP/1.1.
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.facesCert.GetCertificate}
			if f.name == "remote" {
				srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
			}
		}
		addrs[f.name] = lns[i].Addr().String()
		go func(name string, ln net.Listener) {
			var err error
			if tlsOn {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("listener stopped", "face", name, "err", err)
			}
		}(f.name, lns[i])
		s.log.Info("listening", "face", f.name, "addr", lns[i].Addr().String(), "tls", tlsOn)
	}
	return addrs, nil
}

// Bounds of the drain steps after the faces' (KEYGATE_SHUTDOWN_TIMEOUT). Together they stay under
// 5 s, so keygate exits within the shutdown timeout plus 5 s whatever the store does.
const (
	backgroundBound = time.Second     // the subscription and the readiness checker
	flushBound      = 2 * time.Second // the usage flusher's last write (its own timeout is 2 s)
	opsBound        = time.Second     // the ops listener
	// storeBound caps closing the store: a Redis or Sentinel that hangs instead of refusing kept
	// the client's Close waiting for its own read timeouts (4.8 s seen), past the promise above.
	storeBound = 900 * time.Millisecond
)

// closeStore closes the store, waiting at most bound; a close that overruns is logged and left
// behind, since the process is about to exit and the store has nothing left to write.
func (s *Server) closeStore(bound time.Duration) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.store.Close()
	}()
	select {
	case <-done:
		return true
	case <-time.After(bound):
		s.log.Warn("store did not close in time; exiting without it", "bound", bound.String())
		return false
	}
}

// drain stops a running keygate. The order, each step bounded:
//
//  1. /readyz answers 503 "draining", so load balancers stop sending new requests here.
//  2. The faces stop accepting and finish their in-flight requests, for at most
//     KEYGATE_SHUTDOWN_TIMEOUT; websocket sessions, which http.Server.Shutdown does not track, are
//     closed meanwhile with "going away" so devices reconnect elsewhere. Whatever is still open at
//     the deadline is closed.
//  3. The store subscription and the readiness checker stop (no request needs them any more).
//  4. The usage flusher writes its last batch of last-used times (after the requests that made it).
//  5. The ops listener closes: it kept answering /readyz and /metrics until now.
//  6. The access log writer flushes its last lines; then Run closes the store.
//
// A step that overruns its bound is logged and left behind: exiting matters more than it.
func (s *Server) drain(r *running) {
	s.ready.draining.Store(true) // 1
	s.log.Info("shutting down: draining in-flight requests", "timeout", s.cfg.ShutdownTimeout.String())

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout) // 2
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range r.faces {
		wg.Add(1)
		go func(srv *http.Server) {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				s.log.Warn("shutdown did not finish in time; closing", "err", err)
				srv.Close()
			}
		}(srv)
	}
	if s.remote != nil {
		s.remote.Shutdown(ctx)
	}
	wg.Wait()

	for _, b := range []struct { // 3
		name string
		*background
	}{{"store subscription", r.subscription}, {"readiness checker", r.checker}, {"certificate watcher", r.tlsWatcher}} {
		if b.background == nil {
			continue
		}
		if !b.stop(backgroundBound) {
			s.log.Warn("background part did not stop in time", "part", b.name, "bound", backgroundBound.String())
		}
	}
	if !r.usageFlusher.stop(flushBound) { // 4
		s.log.Warn("last-used times not flushed in time", "bound", flushBound.String())
	}
	if r.ops != nil { // 5
		octx, ocancel := context.WithTimeout(context.Background(), opsBound)
		if err := r.ops.Shutdown(octx); err != nil {
			r.ops.Close()
		}
		ocancel()
	}
	s.log.Info("stopped")
	if s.accessLog != nil { // 6
		_ = s.accessLog.Close()
	}
}

// classLabels are the endpoint classes' metric labels, for the zero-valued series.
var classLabels = func() []string {
	out := make([]string, len(policy.Classes))
	for i, c := range policy.Classes {
		out[i] = c.Label()
	}
	return out
}()

// buildInfo is keygate_build_info{version,goversion} = 1, so dashboards can tell which build runs.
func buildInfo(version string) prometheus.Collector {
	if version == "" {
		version = "dev"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "keygate_build_info", Help: "Always 1; the labels say which keygate build and Go version run.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

// redisLogger sends go-redis's own log lines (reconnects, pool errors) through keygate's slog
// handler, so they are structured lines in the configured format instead of plain text.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, userinfo.ReplaceAllString(fmt.Sprintf(format, v...), "://[redacted]@"), "component", "go-redis")
}

// userinfo matches the credentials of a URL in a log line.
var userinfo = regexp.MustCompile(`://[^/@\s]*@`)

// SetRedisLogger routes go-redis's log output to log (process-wide: go-redis has one logger).
func SetRedisLogger(log *slog.Logger) { redis.SetLogger(redisLogger{log}) }

// registerPoolStats exposes the Redis client's connection pool statistics.
func registerPoolStats(reg prometheus.Registerer, c redis.UniversalClient) {
	stats := func() *redis.PoolStats {
		if ps, ok := c.(interface{ PoolStats() *redis.PoolStats }); ok {
			if s := ps.PoolStats(); s != nil {
				return s
			}
		}
		return &redis.PoolStats{}
	}
	counter := func(name, help string, f func(*redis.PoolStats) uint32) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(stats())) })
	}
	gauge := func(name, help string, f func(*redis.PoolStats) uint32) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f(stats())) })
	}
	reg.MustRegister(
		counter("keygate_redis_pool_hits_total", "Redis commands that found a free pooled connection.", func(s *redis.PoolStats) uint32 { return s.Hits }),
		counter("keygate_redis_pool_misses_total", "Redis commands that had to open a connection.", func(s *redis.PoolStats) uint32 { return s.Misses }),
		counter("keygate_redis_pool_timeouts_total", "Waits for a pooled Redis connection that timed out.", func(s *redis.PoolStats) uint32 { return s.Timeouts }),
		gauge("keygate_redis_pool_connections", "Redis connections in the pool (in use and idle).", func(s *redis.PoolStats) uint32 { return s.TotalConns }),
		gauge("keygate_redis_pool_idle_connections", "Idle Redis connections in the pool.", func(s *redis.PoolStats) uint32 { return s.IdleConns }),
	)
}
