package proxy

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keygate/keygate/cache"
	"github.com/keygate/keygate/internal/apierr"
)

// Metrics are the gateway's Prometheus series. One Metrics is shared by all faces of a process.
type Metrics struct {
	// Requests counts requests by face, endpoint class, outcome (forwarded, local, unauthorized,
	// denied, unavailable, not_found, bad_request, too_large, rate_limited, bad_signature, replayed,
	// upstream_error, upstream_timeout) and code, the answer's status class (1xx…5xx): an upstream
	// 5xx is outcome="forwarded",code="5xx".
	Requests *prometheus.CounterVec
	// Duration is the time from the first byte read to the handler's return, by face and class.
	Duration *prometheus.HistogramVec
	// Signatures counts ingestion files by verification result (valid, invalid, unsigned, replayed,
	// too_large, malformed, stale, wrong_device, unbound_key).
	Signatures *prometheus.CounterVec
	// RateLimited counts 429s by scope (key, project, device); LimiterFallback counts decisions taken
	// by the local limiter because Redis could not be reached.
	RateLimited     *prometheus.CounterVec
	LimiterFallback prometheus.Counter
	// ReplayFallback counts replay checks made in memory because Redis was unreachable.
	ReplayFallback prometheus.Counter

	// children holds the per-request series resolved once per (face, class, outcome, code):
	// WithLabelValues hashes and validates its labels and locks the vector on every call. The map
	// is copied on a miss (a handful of times per process) and read without a lock.
	children atomic.Pointer[map[seriesKey]series]
	mu       sync.Mutex
}

type seriesKey struct {
	face, class string
	outcome     apierr.Outcome
	code        string
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// series returns the request counter of one (face, class, outcome, code) and the duration
// histogram of its (face, class).
func (m *Metrics) series(face, class string, outcome apierr.Outcome, code string) series {
	k := seriesKey{face, class, outcome, code}
	if cur := m.children.Load(); cur != nil {
		if s, ok := (*cur)[k]; ok {
			return s
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.children.Load()
	if old != nil {
		if s, ok := (*old)[k]; ok {
			return s
		}
	}
	next := make(map[seriesKey]series, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	s := series{m.Requests.WithLabelValues(face, class, string(outcome), code), m.Duration.WithLabelValues(face, class)}
	next[k] = s
	m.children.Store(&next)
	return s
}

func lenOf(m *map[seriesKey]series) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// NewMetrics registers the gateway's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_requests_total", Help: "Requests by face, endpoint class, outcome and status class (code: 2xx, 4xx, 5xx...).",
		}, []string{"face", "class", "outcome", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keygate_request_duration_seconds", Help: "Request handling time (including the upstream) by face and class.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"face", "class"}),
		Signatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_signature_results_total", Help: "Ingestion files by signature verification result.",
		}, []string{"result"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_rate_limited_total", Help: "Requests refused by a rate limit, by the limit's scope.",
		}, []string{"scope"}),
		LimiterFallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keygate_rate_limit_fallback_total", Help: "Rate-limit decisions made locally because Redis was unreachable.",
		}),
		ReplayFallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keygate_replay_guard_fallback_total", Help: "Replay checks made in this replica's memory because Redis was unreachable.",
		}),
	}
	reg.MustRegister(m.Requests, m.Duration, m.Signatures, m.RateLimited, m.LimiterFallback, m.ReplayFallback)
	return m
}

// RegisterCacheMetrics exposes a resolver's counters.
func RegisterCacheMetrics(reg prometheus.Registerer, r *cache.Resolver) {
	counter := func(name, help string, f func(cache.StatsSnapshot) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(r.Snapshot())) })
	}
	reg.MustRegister(
		counter("keygate_cache_hits_total", "Keys resolved from the cache.", func(s cache.StatsSnapshot) uint64 { return s.Hits }),
		counter("keygate_cache_misses_total", "Keys looked up in the store.", func(s cache.StatsSnapshot) uint64 { return s.Misses }),
		counter("keygate_cache_negative_hits_total", "Unknown keys refused from the negative cache.", func(s cache.StatsSnapshot) uint64 { return s.NegativeHits }),
		counter("keygate_cache_stale_total", "Cached keys served past their TTL because the store was failing.", func(s cache.StatsSnapshot) uint64 { return s.Stale }),
		counter("keygate_cache_unavailable_total", "Lookups that failed because the store was unavailable.", func(s cache.StatsSnapshot) uint64 { return s.Unavailable }),
		counter("keygate_cache_invalidations_total", "Cache entries dropped by revocations and resyncs.", func(s cache.StatsSnapshot) uint64 { return s.Invalidations }),
		counter("keygate_cache_malformed_total", "x-api-key values refused without a lookup (wrong form).", func(s cache.StatsSnapshot) uint64 { return s.Malformed }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keygate_cache_entries", Help: "Principals in the cache."}, func() float64 { return float64(r.Len()) }),
	)
}

// codeClasses are the values of the code label, indexed by status/100.
var codeClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// CodeClass is the code label of an HTTP status: "2xx" for 200…299, and so on; "other" outside
// 100…599, so the label stays bounded whatever an upstream answers.
func CodeClass(status int) string {
	if c := status / 100; c >= 1 && c <= 5 {
		return codeClasses[c]
	}
	return codeClasses[0]
}

// knownOutcomes are the refusals a gateway renders, with the status class each is answered with.
var knownOutcomes = []struct {
	outcome apierr.Outcome
	code    string
}{
	{apierr.OutcomeUnauthorized, "4xx"}, {apierr.OutcomeDenied, "4xx"}, {apierr.OutcomeUnavailable, "5xx"},
	{apierr.OutcomeRateLimited, "4xx"}, {apierr.OutcomeTooLarge, "4xx"}, {apierr.OutcomeBodyTimeout, "4xx"},
	{apierr.OutcomeBadSignature, "4xx"}, {apierr.OutcomeReplayed, "4xx"}, {apierr.OutcomeUpstreamError, "5xx"},
	{apierr.OutcomeUpstreamTimeout, "5xx"}, {apierr.OutcomeClientClosed, "4xx"},
}

// InitFace creates the zero-valued keygate_requests_total series of one face for every class and
// the outcomes and codes it can produce, so rate() and alerts see a series before its first event.
func (m *Metrics) InitFace(face string, classes []string) {
	for _, o := range []apierr.Outcome{apierr.OutcomeNotFound, apierr.OutcomeBadRequest, apierr.OutcomeBadMethod} {
		m.Requests.WithLabelValues(face, "none", string(o), "4xx")
	}
	for _, class := range classes {
		for _, code := range codeClasses[2:] {
			m.Requests.WithLabelValues(face, class, string(apierr.OutcomeForwarded), code)
			m.Requests.WithLabelValues(face, class, string(apierr.OutcomeLocal), code)
		}
		for _, o := range knownOutcomes {
			m.Requests.WithLabelValues(face, class, string(o.outcome), o.code)
		}
		m.Duration.WithLabelValues(face, class)
	}
}
