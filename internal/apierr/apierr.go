// Package apierr is keygate's one error shape: a status, a public message, and the renderer that
// writes {"success": false, "error": "..."} (docs/protocol.md §3.1) for the gateway and the management API alike.
package apierr

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Outcome is what became of a request, in one word: the access log's outcome field and the
// keygate_requests_total outcome label. A closed set, so dashboards and alerts can list every value
// and a typo is a compile error rather than a new series.
type Outcome string

// The outcomes. Forwarded, Local and Page are answers; ClientClosed is a client that hung up; the
// rest are refusals, each rendered with its status by Write.
const (
	OutcomeForwarded       Outcome = "forwarded"
	OutcomeLocal           Outcome = "local"
	OutcomePage            Outcome = "page"
	OutcomeClientClosed    Outcome = "client_closed"
	OutcomeUnauthorized    Outcome = "unauthorized"
	OutcomeDenied          Outcome = "denied"
	OutcomeUnavailable     Outcome = "unavailable"
	OutcomeRateLimited     Outcome = "rate_limited"
	OutcomeTooLarge        Outcome = "too_large"
	OutcomeBodyTimeout     Outcome = "body_timeout"
	OutcomeBadSignature    Outcome = "bad_signature"
	OutcomeReplayed        Outcome = "replayed"
	OutcomeUpstreamError   Outcome = "upstream_error"
	OutcomeUpstreamTimeout Outcome = "upstream_timeout"
	OutcomeNotFound        Outcome = "not_found"
	OutcomeBadRequest      Outcome = "bad_request"
	OutcomeBadMethod       Outcome = "bad_method"
	OutcomeError           Outcome = "error"
)

// Error is a refusal with its HTTP status, built where the decision is made and rendered in one
// place (Write). Public is what the client sees; Err (for logs) is never shown to it.
type Error struct {
	Status     int
	Public     string
	Err        error
	RetryAfter int // seconds; 0 = no Retry-After header
	// Allow lists the methods a 405's target serves: RFC 9110 §15.5.6 requires an Allow header on
	// every 405 ("" = none, for other statuses).
	Allow string
	// Outcome is the short word for logs and metrics (OutcomeDenied, OutcomeUnauthorized, ...).
	Outcome Outcome
}

// Error implements error (for logs; clients see Public only).
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Public + ": " + e.Err.Error()
	}
	return e.Public
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// New builds an Error.
func New(status int, outcome Outcome, public string, err error) *Error {
	return &Error{Status: status, Public: public, Err: err, Outcome: outcome}
}

// ErrorBody is the JSON shape of every error keygate answers (docs/protocol.md §3.1).
type ErrorBody struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
}

// Write renders err as {"success": false, "error": "..."} with its status. Errors that are not
// an *Error are internal: 500 with a generic message (their text may hold details not for clients).
func Write(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = New(http.StatusInternalServerError, OutcomeError, "internal error", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.Allow != "" {
		h.Set("Allow", e.Allow)
	}
	w.WriteHeader(e.Status)
	b, _ := json.Marshal(ErrorBody{Success: false, Error: e.Public})
	b = append(b, '\n')
	_, _ = w.Write(b)
}

// RetryUnavailable is the Retry-After, in seconds, of every 503 keygate answers because a
// dependency is unreachable (key store, replay guard, rate limiter): one value, so every client
// backs off alike whichever dependency is away.
const RetryUnavailable = 2

// Unavailable is the 503 for an unreachable dependency, with Retry-After; public names which, and
// err (for logs) says why.
func Unavailable(public string, err error) *Error {
	e := New(http.StatusServiceUnavailable, OutcomeUnavailable, public, err)
	e.RetryAfter = RetryUnavailable
	return e
}

// MethodNotAllowed is the 405 for a method its target does not serve, with the Allow list RFC 9110
// requires (allow: "GET, HEAD", say).
func MethodNotAllowed(public, allow string) *Error {
	e := New(http.StatusMethodNotAllowed, OutcomeBadMethod, public, nil)
	e.Allow = allow
	return e
}

// TooLarge is the 413 for a request body over limit bytes.
func TooLarge(limit int64) *Error {
	return New(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "request body is larger than the limit of "+strconv.FormatInt(limit, 10)+" bytes", nil)
}
