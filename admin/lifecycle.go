package admin

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
)

// clientIP is the address a request is attributed to: the gateway's (its access log's client_ip,
// which honours KEYGATE_TRUSTED_PROXIES, and a key's last use), else the peer's.
func clientIP(r *http.Request) string {
	if ip, ok := keys.ClientIPFrom(r.Context()); ok {
		return ip
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// audit records a successful key-management action of the principal p.
func (h *Handler) audit(r *http.Request, p keys.Principal, pid int64, action string, target keys.AuditTarget) {
	keys.RecordAudit(r.Context(), h.store, h.log, pid, keys.AuditEvent{
		Time: h.now(), Action: action, Actor: keys.Actor{KeyID: p.KeyID, Name: p.Name}, Target: target,
		IPAddress: clientIP(r), Outcome: keys.OutcomeSuccess,
	})
}

// Denied records a refused key-management attempt in the audit trail of the project the path
// names. The gateway calls it when its authorization step refuses a key-management endpoint, so the
// refusal is recorded whichever of the two checks made it.
func (h *Handler) Denied(r *http.Request, p keys.Principal) {
	pid, action, target, ok := describe(r)
	if !ok {
		return
	}
	keys.RecordAudit(r.Context(), h.store, h.log, pid, keys.AuditEvent{
		Time: h.now(), Action: action, Actor: keys.Actor{KeyID: p.KeyID, Name: p.Name}, Target: target,
		IPAddress: clientIP(r), Outcome: keys.OutcomeDenied,
	})
}

// describe names the action a key-management request attempts, from its method and path
// (/v1/api/{pid}/{apikeys|hmackeys|devkeys|audit}[/{id}[/roll]]).
func describe(r *http.Request) (pid int64, action string, target keys.AuditTarget, ok bool) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 4 || parts[0] != "v1" || parts[1] != "api" {
		return 0, "", target, false
	}
	pid, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || pid <= 0 {
		return 0, "", target, false
	}
	switch parts[3] {
	case "apikeys":
		target.Kind = keys.TargetAPIKey
	case "hmackeys":
		target.Kind = keys.TargetHMACKey
	case "devkeys":
		target.Kind = "devkeys"
	case "audit":
		target.Kind = keys.TargetAudit
	case "keygate":
		target.Kind = keys.TargetSettings
	default:
		return 0, "", target, false
	}
	rest := parts[4:]
	if len(rest) > 0 && rest[0] == "ingestiononly" {
		rest = rest[1:]
	}
	if len(rest) > 0 {
		target.ID, _ = strconv.ParseInt(rest[0], 10, 64)
	}
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		action = "read"
	case target.Kind == keys.TargetSettings && r.Method == http.MethodPost:
		action = keys.AuditSettings
	case r.Method == http.MethodPost && len(rest) == 2 && rest[1] == "roll":
		action = keys.AuditRoll
	case r.Method == http.MethodPost:
		action = keys.AuditCreate
	case r.Method == http.MethodPut:
		action = keys.AuditSetDevelopment
	case r.Method == http.MethodDelete && target.Kind == keys.TargetHMACKey:
		action = keys.AuditDelete
	case r.Method == http.MethodDelete:
		action = keys.AuditRevoke
	default:
		action = strings.ToLower(r.Method)
	}
	return pid, action, target, true
}

// RollRequest is the body of POST apikeys/{id}/roll and hmackeys/{id}/roll.
type RollRequest struct {
	// Grace is how many seconds the old secret keeps working (0: it stops at once, for a leak).
	Grace int64 `json:"grace"`
	// HMACKey, for an HMAC key roll, is the new secret (default: 32 random bytes, generated).
	HMACKey string `json:"hmacKey,omitempty"`
}

func readRoll(r *http.Request) (RollRequest, time.Duration, error) {
	var req RollRequest
	if err := decode(r, &req); err != nil {
		return req, 0, err
	}
	if req.Grace < 0 || req.Grace > maxTTL {
		return req, 0, badRequest(fmt.Sprintf("grace must be a number of seconds between 0 and %d", maxTTL))
	}
	return req, time.Duration(req.Grace) * time.Second, nil
}

func (h *Handler) rollAPIKey(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	_, grace, err := readRoll(r)
	if err != nil {
		return err
	}
	ak, k, err := h.ops.RollAPIKey(r.Context(), CallerOf(p, clientIP(r)), pid, id, grace)
	if err != nil {
		return err
	}
	return writeJSON(w, CreatedResponse{Success: true, ID: ak.ID, APIKey: k})
}

func (h *Handler) rollHMACKey(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	req, grace, err := readRoll(r)
	if err != nil {
		return err
	}
	hk, secret, err := h.ops.RollHMACKey(r.Context(), CallerOf(p, clientIP(r)), pid, id, req.HMACKey, grace)
	if err != nil {
		return err
	}
	return writeJSON(w, CreatedResponse{Success: true, ID: hk.ID, HMACKey: secret})
}

// SetDevelopmentRequest is the body of PUT apikeys/{id} and hmackeys/{id}: it makes an existing key
// the project's development key. For an API key, APIKey is the whole key: keygate keeps only its
// hash, and the development key is listed whole, so the caller proves it has it.
type SetDevelopmentRequest struct {
	IsDevelopmentKey bool   `json:"isDevelopmentKey"`
	APIKey           string `json:"apiKey,omitempty"`
}

func readSetDev(r *http.Request) (SetDevelopmentRequest, error) {
	var req SetDevelopmentRequest
	if err := decode(r, &req); err != nil {
		return req, err
	}
	if !req.IsDevelopmentKey {
		return req, badRequest(`only {"isDevelopmentKey": true} can be set: the flag moves when another key becomes the development key`)
	}
	return req, nil
}

func (h *Handler) setDevAPIKey(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	req, err := readSetDev(r)
	if err != nil {
		return err
	}
	if req.APIKey == "" {
		return badRequest("apiKey (the whole key) is required: keygate keeps only a hash of it, and the development key is listed whole")
	}
	ak, err := h.store.SetDevelopmentAPIKey(r.Context(), pid, id, req.APIKey)
	if err != nil {
		return err
	}
	h.audit(r, p, pid, keys.AuditSetDevelopment, keys.AuditTarget{Kind: keys.TargetAPIKey, ID: id, Name: ak.Name})
	return writeJSON(w, struct {
		Success bool `json:"success"`
	}{true})
}

func (h *Handler) setDevHMACKey(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := readSetDev(r); err != nil {
		return err
	}
	hk, err := h.store.SetDevelopmentHMACKey(r.Context(), pid, id)
	if err != nil {
		return err
	}
	h.audit(r, p, pid, keys.AuditSetDevelopment, keys.AuditTarget{Kind: keys.TargetHMACKey, ID: id, Name: hk.Name})
	return writeJSON(w, struct {
		Success bool `json:"success"`
	}{true})
}

// maxAuditPage bounds one page of the audit trail.
const maxAuditPage = 1000

func (h *Handler) listAudit(w http.ResponseWriter, r *http.Request, _ keys.Principal, pid int64) error {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditPage {
			return badRequest(fmt.Sprintf("limit must be a number between 1 and %d", maxAuditPage))
		}
		limit = n
	}
	events, next, err := h.store.ListAudit(r.Context(), pid, limit, q.Get("before"))
	if err != nil {
		return err
	}
	resp := NewAuditResponse(events, next)
	return writeJSON(w, resp)
}
