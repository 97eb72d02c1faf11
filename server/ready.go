package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keygate/keygate/admin"
)

// Checker is one dependency's readiness: nil when it can do its part now. The store, the change
// announcements and the listeners each implement it; the readiness checker asks them in the
// background, never in a probe's request.
type Checker interface {
	Check(ctx context.Context) error
}

// announcements is the store subscription's readiness: live once the first event arrived, which
// the store sends only when nothing published afterwards can be missed.
type announcements struct{ live atomic.Bool }

// Check implements Checker.
func (a *announcements) Check(context.Context) error {
	if !a.live.Load() {
		return errors.New("change announcements not live yet")
	}
	return nil
}

// listeners is the faces' readiness: up once every listener accepts connections.
type listeners struct{ up atomic.Bool }

// Check implements Checker.
func (l *listeners) Check(context.Context) error {
	if !l.up.Load() {
		return errors.New("listeners not up yet")
	}
	return nil
}

// dependency is one Checker the readiness checker asks.
type dependency struct {
	name  string
	check Checker
	// storeUp: this dependency's state is the keygate_store_up gauge.
	storeUp bool
}

// How often the dependencies are asked, and how long one answer may take. A check that overruns
// counts as a failure: a store that slow is degraded.
const (
	checkInterval = 250 * time.Millisecond
	checkTimeout  = 500 * time.Millisecond
)

// readiness is what /readyz answers, kept by a background checker so the probe itself never dials
// anything and answers at once.
//
// Ready needs every dependency to have passed once since start (listeners up, the store reached,
// announcements live). After that a failing dependency makes keygate "degraded", still 200: cached
// keys keep working for KEYGATE_CACHE_TTL + KEYGATE_CACHE_GRACE after the store was last reached,
// and taking every replica out of the Service during a store blip would turn it into a total outage.
// Past that bound no cached key is left to serve and /readyz says 503, as it does while draining.
type readiness struct {
	log      *slog.Logger
	grace    time.Duration
	storeUp  prometheus.Gauge
	draining atomic.Bool
	state    atomic.Pointer[readyState]
	// kick asks run for a round now; run closes the channel it receives when the round is done.
	kick chan chan struct{}
	now  func() time.Time // the clock (time.Now; tests move it)
}

// readyState is one round of checks.
type readyState struct {
	ready   bool      // every dependency has passed once since start
	waiting string    // before ready: what is still missing
	failing []string  // after ready: what fails now ("store: …")
	since   time.Time // when the oldest current failure began
}

func newReadiness(reg prometheus.Registerer, log *slog.Logger, grace time.Duration) *readiness {
	r := &readiness{log: log, grace: grace, kick: make(chan chan struct{}), now: time.Now, storeUp: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "keygate_store_up", Help: "1 while the key store answers the readiness checker, 0 while it does not.",
	})}
	reg.MustRegister(r.storeUp)
	return r
}

// run asks every dependency every checkInterval until ctx ends, and logs each one going down and
// coming back.
func (r *readiness) run(ctx context.Context, deps []dependency) {
	var done chan struct{} // a recheck waiting for this round
	passed := make([]bool, len(deps))
	down := make([]time.Time, len(deps)) // zero while up
	tick := time.NewTicker(checkInterval)
	defer tick.Stop()
	for {
		st := &readyState{ready: true}
		for i, d := range deps {
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			err := d.check.Check(cctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			now := r.now()
			switch {
			case err == nil && !down[i].IsZero():
				r.log.Info(d.name+" reachable again", "dependency", d.name, "down_for", now.Sub(down[i]).Round(time.Millisecond).String())
				down[i] = time.Time{}
			case err != nil && passed[i] && down[i].IsZero():
				down[i] = now
				r.log.Warn(d.name+" unreachable: serving cached keys", "dependency", d.name, "err", redactURL(err.Error()))
			}
			passed[i] = passed[i] || err == nil
			if d.storeUp {
				r.storeUp.Set(map[bool]float64{true: 1, false: 0}[err == nil])
			}
			switch {
			case !passed[i]:
				st.ready = false
				if st.waiting == "" {
					st.waiting = d.name + ": " + redactURL(err.Error())
				}
			case err != nil:
				st.failing = append(st.failing, d.name+": "+redactURL(err.Error()))
				if st.since.IsZero() || down[i].Before(st.since) {
					st.since = down[i]
				}
			}
		}
		r.state.Store(st)
		if done != nil {
			close(done)
			done = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case done = <-r.kick:
		}
	}
}

// recheck runs a round of checks now and waits for it, at most bound (Run calls it once the
// listeners are up, so /readyz says so from the first request).
func (r *readiness) recheck(bound time.Duration) {
	done := make(chan struct{})
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case r.kick <- done:
	case <-timer.C:
		return
	}
	select {
	case <-done:
	case <-timer.C:
	}
}

// ServeHTTP answers /readyz from the last round of checks.
func (r *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if r.draining.Load() {
		writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "draining"})
		return
	}
	st := r.state.Load()
	switch {
	case st == nil:
		writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "waiting": "first check"})
	case !st.ready:
		writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "waiting": st.waiting})
	case len(st.failing) == 0:
		writeStatus(w, http.StatusOK, map[string]any{"status": "ready"})
	case r.now().Sub(st.since) <= r.grace:
		writeStatus(w, http.StatusOK, map[string]any{"status": "degraded", "failing": st.failing, "since": st.since.UTC().Format(time.RFC3339)})
	default:
		writeStatus(w, http.StatusServiceUnavailable, map[string]any{
			"status": "unavailable", "failing": st.failing, "since": st.since.UTC().Format(time.RFC3339),
			"reason": "cached keys expired (KEYGATE_CACHE_TTL + KEYGATE_CACHE_GRACE)",
		})
	}
}

// opsHandler serves /healthz, /readyz, /metrics and, when enabled, /debug/pprof/.
func (s *Server) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.Handle("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	if s.handout != nil {
		mux.Handle(admin.HandoutPattern, s.handout)
	}
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	// nosniff on every answer here too (docs/security.md), /metrics and pprof included.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

// redactURL keeps credentials out of readiness answers and logs.
func redactURL(s string) string {
	if strings.Contains(s, "@") {
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
