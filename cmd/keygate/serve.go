package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/cache"
	"github.com/keygate/keygate/internal/accesslog"
	"github.com/keygate/keygate/internal/logbuf"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/policy"
	"github.com/keygate/keygate/proxy"
	"github.com/keygate/keygate/verify"
)

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, usagef("KEYGATE_LOG_LEVEL: want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

func newLogger(c ServeConfig, w io.Writer) *slog.Logger {
	lvl, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("serve")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadServeConfig()
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	slog.SetDefault(log)
	return serve(ctx, cfg, log, stderr, nil)
}

// server is one running keygate: the store, the cache, the faces and the ops listener.
type server struct {
	cfg      ServeConfig
	log      *slog.Logger
	store    keys.Store
	resolver *cache.Resolver
	usage    *keys.UsageRecorder
	reg      *prometheus.Registry
	metrics  *proxy.Metrics
	servers  []*http.Server
	draining atomic.Bool
	// subscribed is set once the store's change announcements are live.
	subscribed atomic.Bool
}

// serve runs until ctx ends (SIGTERM/SIGINT), then drains. ready, when set, is called with the
// bound addresses once every listener accepts connections.
func serve(ctx context.Context, cfg ServeConfig, log *slog.Logger, logOut io.Writer, ready func(map[string]string)) error {
	store, err := cfg.open()
	if err != nil {
		return err
	}
	defer store.Close()
	if cfg.MasterKey == "" {
		warnPlaintext(log)
	}
	s := &server{cfg: cfg, log: log, store: store, reg: prometheus.NewRegistry()}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = proxy.NewMetrics(s.reg)
	s.resolver = cache.NewResolver(store, cache.Options{
		Size: cfg.CacheSize, TTL: cfg.CacheTTL, NegativeTTL: cfg.NegativeCacheTTL, Grace: cfg.CacheGrace,
	})
	proxy.RegisterCacheMetrics(s.reg, s.resolver)
	projects := cache.NewProjects(store, cache.Options{TTL: cfg.CacheTTL, Grace: cfg.CacheGrace, Size: 10000})
	memGuard := verify.NewMemoryReplayGuard(0, nil)
	var guard verify.ReplayGuard = memGuard
	if rs, ok := store.(*keys.RedisStore); ok {
		guard = keys.NewRedisReplayGuard(rs)
	}
	var engine limit.Engine = limit.NewLocal(0, nil)
	if rs, ok := store.(*keys.RedisStore); ok {
		engine = &limit.Fallback{Primary: limit.NewRedis(rs.Client()), Secondary: engine, OnFallback: s.metrics.LimiterFallback.Inc}
	}
	limiter := &proxy.RateLimits{
		Engine: engine, Projects: projects, Headers: cfg.RateLimitHeaders, Metrics: s.metrics,
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
		Projects: projects, Replay: guard, Fallback: memGuard, MaxFiles: cfg.MaxFiles, Metrics: s.metrics, Log: log,
	})
	s.usage = keys.NewUsageRecorder(store, cfg.LastUsedInterval, log)

	var remote *proxy.Remote
	if cfg.RemoteUpstream != "" {
		up, _ := url.Parse(cfg.RemoteUpstream)
		remote = proxy.NewRemote(proxy.RemoteOptions{
			Upstream: up, Resolver: s.resolver, HelloTimeout: cfg.RemoteHelloTimeout, IdleTimeout: cfg.RemoteIdleTimeout,
			OneSessionPerDevice: cfg.RemoteOneSessionPerDevice, MaxSessionsPerKey: cfg.RemoteMaxSessionsPerKey,
			MaxSessionsPerProject: cfg.RemoteMaxSessionsPerProject, Metrics: proxy.NewRemoteMetrics(s.reg), Log: log,
		})
	}

	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); s.usage.Run(runCtx) }()
	live := make(chan struct{})
	go func() {
		defer bg.Done()
		first := true
		for e := range store.Subscribe(runCtx) {
			if first {
				// The first event means announcements are flowing: only now can a revocation made
				// elsewhere reach this replica, so only now is it ready.
				first = false
				s.subscribed.Store(true)
				close(live)
			}
			s.resolver.Apply(e)
			projects.Apply(e)
			if remote != nil {
				remote.Apply(e)
			}
		}
	}()

	// Listen only once announcements flow, so no request is answered from a cache that could miss a
	// revocation (bounded: with Redis down at start, listen anyway and stay unready).
	select {
	case <-live:
	case <-time.After(5 * time.Second):
		log.Warn("store announcements not live yet (is Redis reachable?): /readyz answers 503 until they are")
	case <-ctx.Done():
	}

	addrs := map[string]string{}
	listen := func(name, addr string, h http.Handler) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s face: listen on %s: %w", name, addr, err)
		}
		srv := &http.Server{
			Handler: h, ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: cfg.IdleTimeout,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		s.servers = append(s.servers, srv)
		addrs[name] = ln.Addr().String()
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("listener stopped", "face", name, "err", err)
			}
		}()
		log.Info("listening", "face", name, "addr", ln.Addr().String())
		return nil
	}
	closeAll := func() {
		for _, srv := range s.servers {
			srv.Close()
		}
	}
	transport := proxy.NewTransport(proxy.TransportOptions{
		DialTimeout: cfg.UpstreamDialTimeout, ResponseHeaderTimeout: cfg.UpstreamTimeout, MaxIdleConnsPerHost: cfg.UpstreamMaxIdleConns,
	})
	var accessLog proxy.AccessLogger
	if cfg.AccessLog {
		// Batched: a write system call per request line was ~7% of the CPU under load.
		lb := logbuf.New(logOut, 64<<10, 200*time.Millisecond)
		defer lb.Close()
		accessLog = accesslog.New(lb, cfg.LogFormat == "text")
	}
	mgmt := admin.New(store, log)
	faces := []struct {
		name, listen, upstream string
		face                   policy.Face
	}{
		{"studio", cfg.StudioListen, cfg.StudioUpstream, policy.FaceStudio},
		{"ingestion", cfg.IngestionListen, cfg.IngestionUpstream, policy.FaceIngestion},
	}
	for _, f := range faces {
		if f.upstream == "" {
			log.Info("face off (no upstream)", "face", f.name)
			continue
		}
		up, _ := url.Parse(f.upstream)
		opt := proxy.Options{
			Face: f.face, Upstream: up, Resolver: s.resolver, Usage: s.usage, Transport: transport,
			StripAPIKey: cfg.StripAPIKey, MaxBody: int64(cfg.MaxBody), Metrics: s.metrics, AccessLog: accessLog,
			Limiter: limiter,
		}
		if f.face == policy.FaceStudio {
			opt.Local, opt.Page = mgmt, admin.NewPage()
		} else {
			opt.Verifier = ingest
		}
		if err := listen(f.name, f.listen, proxy.New(opt)); err != nil {
			closeAll()
			return err
		}
	}
	if remote != nil {
		if err := listen("remote", cfg.RemoteListen, remote); err != nil {
			closeAll()
			return err
		}
	} else {
		log.Info("face off (no upstream)", "face", "remote")
	}
	if err := listen("ops", cfg.OpsListen, s.opsHandler()); err != nil {
		closeAll()
		return err
	}
	log.Info("keygate started", "version", versionString(), "store", storeKind(cfg.StoreConfig))
	if ready != nil {
		ready(addrs)
	}

	<-ctx.Done()
	// Drain: /readyz fails first so load balancers stop sending, then in-flight requests finish.
	s.draining.Store(true)
	log.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// The faces drain first; the ops listener (last in s.servers) stays up meanwhile, answering
	// /readyz with 503, and goes last.
	faceServers, ops := s.servers[:len(s.servers)-1], s.servers[len(s.servers)-1]
	var wg sync.WaitGroup
	for _, srv := range faceServers {
		wg.Add(1)
		go func(srv *http.Server) {
			defer wg.Done()
			if err := srv.Shutdown(sctx); err != nil {
				log.Warn("shutdown did not finish in time; closing", "err", err)
				srv.Close()
			}
		}(srv)
	}
	if remote != nil {
		// Hijacked websocket connections are not drained by Shutdown: close them with "going away".
		remote.Shutdown(sctx)
	}
	wg.Wait()
	_ = ops.Shutdown(sctx)
	cancelRun()
	bg.Wait()
	log.Info("stopped")
	return nil
}

func storeKind(c StoreConfig) string {
	if c.RedisURL != "" {
		return "redis"
	}
	return "embedded"
}

func (s *server) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "draining"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if !s.subscribed.Load() {
			writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "store": "change announcements not subscribed yet"})
			return
		}
		if err := s.store.Check(ctx); err != nil {
			writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "store": redactURL(err.Error())})
			return
		}
		writeStatus(w, http.StatusOK, map[string]any{"status": "ready", "store": storeKind(s.cfg.StoreConfig)})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// redactURL keeps credentials out of readiness answers.
func redactURL(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		return "unreachable"
	}
	return s
}

func writeStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
