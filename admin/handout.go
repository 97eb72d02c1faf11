package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/keygate/keygate/internal/apierr"
	"github.com/keygate/keygate/keys"
)

// ServiceTokenEnv names the variable that turns the development-key hand-out on.
const ServiceTokenEnv = "KEYGATE_SERVICE_TOKEN_FILE"

// MinServiceTokenLength is the shortest service token accepted: shorter ones refuse to start.
const MinServiceTokenLength = 32

// AuditDevKeyHandout is the audit action of a hand-out (and of a refused one).
const AuditDevKeyHandout = "devkey.handout"

// Hand-out outcomes, as logged and counted in keygate_devkey_handouts_total{outcome}.
const (
	HandoutOK           = "handed_out"
	HandoutNone         = "no_development_keys"
	HandoutUnauthorized = "unauthorized"
	HandoutRateLimited  = "rate_limited"
	HandoutBadRequest   = "bad_request"
	HandoutUnavailable  = "unavailable"
)

// ServiceToken is the bearer token the platform's services present to the ops listener, read from
// a file (a mounted Kubernetes Secret) and read again when the file changes, so a rotation needs no
// restart. Only its SHA-256 is kept: comparisons hash the presented token too, so they take the
// same time whatever its length.
type ServiceToken struct {
	path  string
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	sum     [32]byte
	checked time.Time
	modTime time.Time
	size    int64
}

// LoadServiceToken reads the token file. An unreadable file, or a token shorter than
// MinServiceTokenLength characters, is an error naming KEYGATE_SERVICE_TOKEN_FILE (never the token).
func LoadServiceToken(path string, log *slog.Logger) (*ServiceToken, error) {
	if log == nil {
		log = slog.Default()
	}
	t := &ServiceToken{path: path, log: log, every: time.Second, now: time.Now}
	fi, sum, err := readToken(path)
	if err != nil {
		return nil, err
	}
	t.sum, t.modTime, t.size, t.checked = sum, fi.ModTime(), fi.Size(), t.now()
	return t, nil
}

func readToken(path string) (os.FileInfo, [32]byte, error) {
	var sum [32]byte
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, sum, fmt.Errorf("%s: %w", ServiceTokenEnv, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, sum, fmt.Errorf("%s: %w", ServiceTokenEnv, err)
	}
	tok := bytes.TrimSpace(b)
	if len(tok) < MinServiceTokenLength {
		what := "too short"
		if len(tok) == 0 {
			what = "empty"
		}
		return nil, sum, fmt.Errorf("%s: the service token in %s is %s: it must be at least %d characters (e.g. openssl rand -hex 32)",
			ServiceTokenEnv, path, what, MinServiceTokenLength)
	}
	for _, c := range tok {
		if c <= ' ' || c > '~' {
			return nil, sum, fmt.Errorf("%s: the service token in %s must be printable ASCII without spaces", ServiceTokenEnv, path)
		}
	}
	return fi, sha256.Sum256(tok), nil
}

// refresh re-reads the file when its size or modification time changed (checked at most once per
// second). A rotated file that holds no valid token keeps the previous token, with an error logged:
// a broken rotation must not open the endpoint, and should not close it either.
func (t *ServiceToken) refresh() {
	now := t.now()
	if d := now.Sub(t.checked); d >= 0 && d < t.every { // a clock that went back re-checks too
		return
	}
	t.checked = now
	fi, err := os.Stat(t.path)
	if err != nil {
		t.log.Error("service token file unreadable; keeping the previous token", "err", err)
		return
	}
	if fi.ModTime().Equal(t.modTime) && fi.Size() == t.size {
		return
	}
	fi, sum, err := readToken(t.path)
	if err != nil {
		t.log.Error("service token file changed but holds no valid token; keeping the previous token", "err", err)
		return
	}
	t.sum, t.modTime, t.size = sum, fi.ModTime(), fi.Size()
	t.log.Info("service token reloaded", "file", t.path)
}

// Valid reports whether presented is the current token, in constant time.
func (t *ServiceToken) Valid(presented string) bool {
	got := sha256.Sum256([]byte(presented))
	t.mu.Lock()
	t.refresh()
	want := t.sum
	t.mu.Unlock()
	return presented != "" && subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// HandoutStore is what the hand-out reads: the project's keys, straight from the store (never a
// cache, so a moved development flag is seen at once on every replica), and the audit trail.
type HandoutStore interface {
	ListAPIKeys(ctx context.Context, projectID int64) ([]keys.APIKey, error)
	ListHMACKeys(ctx context.Context, projectID int64) ([]keys.HMACKey, error)
	keys.Auditor
}

// HandoutOptions configure a Handout.
type HandoutOptions struct {
	Store HandoutStore
	Token *ServiceToken
	// PerCaller limits requests per caller address (DefaultHandoutLimit when zero), so a leaked
	// token cannot enumerate every project quickly.
	PerCaller keys.Limit
	// Metrics registers keygate_devkey_handouts_total{outcome}; nil: not counted.
	Metrics prometheus.Registerer
	Log     *slog.Logger
	Now     func() time.Time
}

// DefaultHandoutLimit is the per-caller rate: a job runner fetches a key per deployment job; a
// thousand projects take a leaked token more than eight minutes.
var DefaultHandoutLimit = keys.Limit{Rate: 2, Period: time.Second, Burst: 20}

// Handout serves GET /internal/projects/{projectId}/devkeys on the ops listener: the development
// API key and HMAC key of a project, for the platform's job runner, which passes them to
// privileged deployment blocks (docs/deploy.md). Callers authenticate with the service token.
type Handout struct {
	opt      HandoutOptions
	limiters *lru.Cache[string, *rate.Limiter]
	count    *prometheus.CounterVec
}

var _ http.Handler = (*Handout)(nil)

// HandoutPattern is the ServeMux pattern of the endpoint.
const HandoutPattern = "GET /internal/projects/{projectId}/devkeys"

// NewHandout builds the endpoint.
func NewHandout(o HandoutOptions) (*Handout, error) {
	if o.Store == nil || o.Token == nil {
		return nil, errors.New("handout: a store and a service token are required")
	}
	if o.PerCaller.IsZero() {
		o.PerCaller = DefaultHandoutLimit
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	limiters, err := lru.New[string, *rate.Limiter](10000)
	if err != nil {
		return nil, err
	}
	h := &Handout{opt: o, limiters: limiters, count: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keygate_devkey_handouts_total",
		Help: "Requests for a project's development keys on the ops listener, by outcome.",
	}, []string{"outcome"})}
	for _, oc := range []string{HandoutOK, HandoutNone, HandoutUnauthorized, HandoutRateLimited, HandoutBadRequest, HandoutUnavailable} {
		h.count.WithLabelValues(oc)
	}
	if o.Metrics != nil {
		if err := o.Metrics.Register(h.count); err != nil {
			return nil, fmt.Errorf("handout metrics: %w", err)
		}
	}
	return h, nil
}

func callerOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *Handout) allow(caller string) (bool, time.Duration) {
	l, ok := h.limiters.Get(caller)
	if !ok {
		per := h.opt.PerCaller
		every := per.Period / time.Duration(max(per.Rate, 1))
		l = rate.NewLimiter(rate.Every(every), max(per.Burst, 1))
		if prev, found, _ := h.limiters.PeekOrAdd(caller, l); found {
			l = prev
		}
	}
	res := l.ReserveN(h.opt.Now(), 1)
	if d := res.DelayFrom(h.opt.Now()); d > 0 {
		res.CancelAt(h.opt.Now())
		return false, d
	}
	return true, 0
}

// bearer returns the token of an "Authorization: Bearer …" header ("" if there is none).
func bearer(r *http.Request) string {
	v := r.Header.Get("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// ServeHTTP implements http.Handler. The token is checked before the path is looked at, so a
// caller without it learns nothing about any project.
func (h *Handout) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	outcome, pid := h.serve(w, r, caller)
	h.count.WithLabelValues(outcome).Inc()
	h.opt.Log.Info("devkey handout", "project", pid, "caller", caller, "outcome", outcome)
	if pid > 0 && outcome != HandoutRateLimited && outcome != HandoutBadRequest {
		result := keys.OutcomeSuccess
		if outcome == HandoutUnauthorized {
			result = keys.OutcomeDenied
		}
		keys.RecordAudit(r.Context(), h.opt.Store, nil, pid, keys.AuditEvent{
			Action: AuditDevKeyHandout, Actor: keys.Actor{Name: "service token"},
			Target: keys.AuditTarget{Kind: "devkeys"}, IPAddress: caller, Outcome: result,
		})
	}
}

func (h *Handout) serve(w http.ResponseWriter, r *http.Request, caller string) (outcome string, pid int64) {
	// The project id is read only to account for the request; it is answered on only after the token.
	if id, err := strconv.ParseInt(r.PathValue("projectId"), 10, 64); err == nil && id > 0 && strconv.FormatInt(id, 10) == r.PathValue("projectId") {
		pid = id
	}
	if ok, wait := h.allow(caller); !ok {
		e := apierr.New(http.StatusTooManyRequests, apierr.OutcomeRateLimited, "too many development-key requests from this address, try again shortly", nil)
		e.RetryAfter = int(wait/time.Second) + 1
		apierr.Write(w, e)
		return HandoutRateLimited, pid
	}
	if !h.opt.Token.Valid(bearer(r)) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keygate"`)
		apierr.Write(w, apierr.New(http.StatusUnauthorized, apierr.OutcomeUnauthorized, "a valid service token is required (Authorization: Bearer …)", nil))
		return HandoutUnauthorized, pid
	}
	if pid == 0 {
		apierr.Write(w, apierr.New(http.StatusBadRequest, apierr.OutcomeBadRequest, "project id must be a positive integer", nil))
		return HandoutBadRequest, 0
	}
	api, hmac, err := h.devKeys(r.Context(), pid)
	if err != nil {
		h.opt.Log.Error("devkey handout: store", "project", pid, "err", err)
		apierr.Write(w, apierr.Unavailable("key store unavailable, try again shortly", err))
		return HandoutUnavailable, pid
	}
	resp := DevKeysResponse{Success: true}
	if api != nil && api.DevSecret != "" && !api.Expired(h.opt.Now()) {
		s := api.DevSecret
		resp.APIKey = &s
	}
	if hmac != nil {
		s := hmac.Secret
		resp.HMACKey = &s
	}
	if resp.APIKey == nil && resp.HMACKey == nil {
		apierr.Write(w, apierr.New(http.StatusNotFound, apierr.OutcomeNotFound, NoDevKeysMessage, nil))
		return HandoutNone, pid
	}
	_ = writeJSON(w, resp)
	return HandoutOK, pid
}

// devKeys reads the project's development keys from the store.
func (h *Handout) devKeys(ctx context.Context, pid int64) (api *keys.APIKey, hmac *keys.HMACKey, err error) {
	ak, err := h.opt.Store.ListAPIKeys(ctx, pid)
	if err != nil {
		return nil, nil, err
	}
	for i := range ak {
		if ak[i].IsDevelopmentKey {
			api = &ak[i]
		}
	}
	hk, err := h.opt.Store.ListHMACKeys(ctx, pid)
	if err != nil {
		return nil, nil, err
	}
	for i := range hk {
		if hk[i].IsDevelopmentKey {
			hmac = &hk[i]
		}
	}
	return api, hmac, nil
}
