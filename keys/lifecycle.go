package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Lifecycle tunes how long a store keeps what is past its use. Zero values take the defaults.
type Lifecycle struct {
	// ExpiredRetention is how long an expired API key stays listed (as expired) before it is removed
	// (DefaultExpiredRetention).
	ExpiredRetention time.Duration
	// AuditRetention is how long audit events are kept (DefaultAuditRetention).
	AuditRetention time.Duration
}

// Defaults for Lifecycle.
const (
	DefaultExpiredRetention = 30 * 24 * time.Hour
	DefaultAuditRetention   = 90 * 24 * time.Hour
)

func (l Lifecycle) withDefaults() Lifecycle {
	if l.ExpiredRetention <= 0 {
		l.ExpiredRetention = DefaultExpiredRetention
	}
	if l.AuditRetention <= 0 {
		l.AuditRetention = DefaultAuditRetention
	}
	return l
}

// ParseDuration reads a lifetime as people write one: Go's forms ("24h", "90m", "1h30m") plus whole
// days ("30d"). It refuses negative values.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("invalid duration %q (want e.g. 30d, 24h or 90m)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 30d, 24h or 90m)", s)
	}
	return d, nil
}

// Audit actions.
const (
	AuditCreate         = "create"
	AuditRevoke         = "revoke"
	AuditDelete         = "delete"
	AuditRoll           = "roll"
	AuditSetDevelopment = "set_development_key"
	AuditSettings       = "update_settings"
	AuditLimit          = "update_limit"
)

// Audit outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeDenied  = "denied"
)

// Audit target kinds.
const (
	TargetAPIKey   = "apikey"
	TargetHMACKey  = "hmackey"
	TargetSettings = "settings"
	TargetAudit    = "audit"
)

// AuditTarget is what an audit event acted on.
type AuditTarget struct {
	Kind string `json:"kind"`
	ID   int64  `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// AuditEvent is one key-management action, kept per project so "who did this?" has an answer.
type AuditEvent struct {
	Time      time.Time   `json:"time"`
	Action    string      `json:"action"`
	Actor     Actor       `json:"actor"`
	Target    AuditTarget `json:"target"`
	IPAddress string      `json:"ipAddress,omitempty"`
	Outcome   string      `json:"outcome"`
	// Cursor is the event's position, for paging (ListAudit's before); not part of the event.
	Cursor string `json:"-"`
}

// Auditor is the part of a Store that keeps audit events.
type Auditor interface {
	// AppendAudit stores an event of a project (Time defaults to the store's clock) and drops the
	// project's events older than the audit retention.
	AppendAudit(ctx context.Context, projectID int64, e AuditEvent) error
	// ListAudit returns up to limit events of a project, newest first, older than the cursor before
	// ("" = from the newest). next is the cursor for the following page ("" at the end).
	ListAudit(ctx context.Context, projectID int64, limit int, before string) (events []AuditEvent, next string, err error)
}

// RecordAudit stores an event and writes it as one log line. A store failure is logged, not
// returned: the action it describes has already happened.
func RecordAudit(ctx context.Context, a Auditor, log *slog.Logger, projectID int64, e AuditEvent) {
	if log != nil {
		log.Info("audit", "project", projectID, "action", e.Action, "outcome", e.Outcome,
			"actor_key_id", e.Actor.KeyID, "actor", e.Actor.Name, "target_kind", e.Target.Kind, "target_id", e.Target.ID,
			"target", e.Target.Name, "ip", e.IPAddress)
	}
	if err := a.AppendAudit(context.WithoutCancel(ctx), projectID, e); err != nil && log != nil {
		log.Warn("audit event not stored", "project", projectID, "action", e.Action, "err", err)
	}
}

// parseCursor reads "<unix ms>-<seq>".
func parseCursor(s string) (ms, seq uint64, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, ErrBadCursor
	}
	if ms, err = strconv.ParseUint(a, 10, 64); err != nil {
		return 0, 0, ErrBadCursor
	}
	if seq, err = strconv.ParseUint(b, 10, 64); err != nil {
		return 0, 0, ErrBadCursor
	}
	return ms, seq, nil
}

// ErrBadCursor: a ListAudit cursor that no ListAudit returned.
var ErrBadCursor = errors.New("invalid audit cursor")
