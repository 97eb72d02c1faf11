package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/apierr"
	"github.com/keygate/keygate/internal/redact"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/policy"
)

// Store is what the management API needs of the key store.
type Store interface {
	CreateAPIKey(ctx context.Context, n keys.NewAPIKey) (keys.APIKey, error)
	ListAPIKeys(ctx context.Context, projectID int64) ([]keys.APIKey, error)
	GetAPIKey(ctx context.Context, projectID, id int64) (keys.APIKey, error)
	RevokeAPIKey(ctx context.Context, projectID, id int64) error
	CreateHMACKey(ctx context.Context, n keys.NewHMACKey) (keys.HMACKey, error)
	ListHMACKeys(ctx context.Context, projectID int64) ([]keys.HMACKey, error)
	DeleteHMACKey(ctx context.Context, projectID, id int64) error
	Settings(ctx context.Context, projectID int64) (keys.ProjectSettings, error)
	UpdateSettings(ctx context.Context, projectID int64, update func(*keys.ProjectSettings) error) (keys.ProjectSettings, error)
	RollAPIKey(ctx context.Context, projectID, id int64, newKey string, grace time.Duration) (keys.APIKey, error)
	SetDevelopmentAPIKey(ctx context.Context, projectID, id int64, key string) (keys.APIKey, error)
	RollHMACKey(ctx context.Context, projectID, id int64, newSecret string, grace time.Duration) (keys.HMACKey, error)
	SetDevelopmentHMACKey(ctx context.Context, projectID, id int64) (keys.HMACKey, error)
	keys.Auditor
}

// Handler serves docs/protocol.md §3's endpoints. It runs behind the gateway, which has already authenticated
// the caller and checked the role (admin; any valid key for api-key-info) and project; the handler
// checks the project again so it is safe on its own.
type Handler struct {
	store Store
	mux   *http.ServeMux
	log   *slog.Logger
	now   func() time.Time
	ops   Ops
}

var _ http.Handler = (*Handler)(nil)

// maxJSONBody bounds management request bodies.
const maxJSONBody = 64 << 10

// New builds the management handler.
func New(s Store, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{store: s, mux: http.NewServeMux(), log: log, now: time.Now}
	h.ops = Ops{Store: s, Log: log, Now: func() time.Time { return h.now() }}
	h.mux.HandleFunc("GET /v1/api/{projectId}/apikeys", h.project(h.listAPIKeys))
	h.mux.HandleFunc("POST /v1/api/{projectId}/apikeys", h.project(h.createAPIKey))
	h.mux.HandleFunc("DELETE /v1/api/{projectId}/apikeys/{id}", h.project(h.revokeAPIKey))
	h.mux.HandleFunc("POST /v1/api/{projectId}/apikeys/ingestiononly", h.project(h.createIngestionKey))
	h.mux.HandleFunc("DELETE /v1/api/{projectId}/apikeys/ingestiononly/{id}", h.project(h.revokeIngestionKey))
	h.mux.HandleFunc("GET /v1/api/{projectId}/hmackeys", h.project(h.listHMACKeys))
	h.mux.HandleFunc("POST /v1/api/{projectId}/hmackeys", h.project(h.createHMACKey))
	h.mux.HandleFunc("DELETE /v1/api/{projectId}/hmackeys/{id}", h.project(h.deleteHMACKey))
	h.mux.HandleFunc("GET /v1/api/{projectId}/devkeys", h.project(h.devKeys(true)))
	h.mux.HandleFunc("GET /v1/api/{projectId}/devkeys/hmac", h.project(h.devKeys(false)))
	h.mux.HandleFunc("GET /v1/api/{projectId}/keygate/settings", h.project(h.getSettings))
	h.mux.HandleFunc("POST /v1/api/{projectId}/keygate/settings", h.project(h.updateSettings))
	h.mux.HandleFunc("POST /v1/api/{projectId}/apikeys/{id}/roll", h.project(h.rollAPIKey))
	h.mux.HandleFunc("PUT /v1/api/{projectId}/apikeys/{id}", h.project(h.setDevAPIKey))
	h.mux.HandleFunc("POST /v1/api/{projectId}/hmackeys/{id}/roll", h.project(h.rollHMACKey))
	h.mux.HandleFunc("PUT /v1/api/{projectId}/hmackeys/{id}", h.project(h.setDevHMACKey))
	h.mux.HandleFunc("GET /v1/api/{projectId}/audit", h.project(h.listAudit))
	h.mux.HandleFunc("GET /v1/api/projects/api-key-info", h.apiKeyInfo)
	return h
}

// ServeHTTP implements http.Handler; unknown management paths get a JSON 404, and a method a path
// does not serve a JSON 405 with its Allow list (ServeMux's own 405 is plain text, and
// ServeMux.Handler reports it with the empty pattern of a 404).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern == "" {
		if allow := h.allowed(r); allow != "" {
			apierr.Write(w, apierr.MethodNotAllowed("method "+r.Method+" is not served on "+redact.Path(r.URL.Path), allow))
			return
		}
		apierr.Write(w, apierr.New(http.StatusNotFound, apierr.OutcomeNotFound, "no such key-management endpoint: "+r.Method+" "+redact.Path(r.URL.Path), nil))
		return
	}
	h.mux.ServeHTTP(w, r)
}

// allowed lists the methods the management API serves on r's path, as an Allow header does (HEAD
// with GET, which ServeMux serves alike); "" when it serves none there.
func (h *Handler) allowed(r *http.Request) string {
	var ms []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := *r
		probe.Method = m
		if _, pattern := h.mux.Handler(&probe); pattern != "" {
			ms = append(ms, m)
		}
	}
	return strings.Join(ms, ", ")
}

type projectHandler func(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64) error

// project asks the policy whether the caller may use this endpoint (the project the path names and
// the role's permission: the gateway's own decision, asked again so the handler is safe on its own)
// and renders the handler's error.
func (h *Handler) project(fn projectHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := keys.PrincipalFrom(r.Context())
		if !ok {
			apierr.Write(w, apierr.New(http.StatusUnauthorized, apierr.OutcomeUnauthorized, "missing x-api-key header", nil))
			return
		}
		route, err := policy.Match(policy.FaceStudio, r.Method, r.URL.Path)
		if err != nil || route.ProjectID <= 0 {
			apierr.Write(w, apierr.New(http.StatusBadRequest, apierr.OutcomeBadRequest, "project id must be a positive integer", nil))
			return
		}
		if err := policy.Allow(p, route); err != nil {
			h.Denied(r, p)
			apierr.Write(w, apierr.New(http.StatusForbidden, apierr.OutcomeDenied, err.Error(), nil))
			return
		}
		if err := fn(w, r, p, route.ProjectID); err != nil {
			h.fail(w, err)
		}
	}
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	var e *apierr.Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, keys.ErrNotFound):
		e = apierr.New(http.StatusNotFound, apierr.OutcomeNotFound, "no such key in this project", nil)
	case errors.Is(err, keys.ErrExists):
		// One answer whether the key is this project's or another's: "already exists" would tell
		// a project admin which key strings other projects use.
		e = apierr.New(http.StatusBadRequest, apierr.OutcomeBadRequest, msgKeyUnusable, nil)
	case errors.Is(err, keys.ErrInvalidKey), errors.Is(err, keys.ErrWeakHMACKey), errors.Is(err, keys.ErrWrongKey),
		errors.Is(err, keys.ErrBadCursor):
		e = apierr.New(http.StatusBadRequest, apierr.OutcomeBadRequest, err.Error(), nil)
	case errors.Is(err, keys.ErrSealed):
		h.log.Error("key management", "err", err)
		e = apierr.New(http.StatusServiceUnavailable, apierr.OutcomeUnavailable, "stored secrets cannot be decrypted with this gateway's master key", nil)
	default:
		h.log.Error("key management", "err", err)
		e = apierr.Unavailable("key store unavailable, try again shortly", err)
	}
	apierr.Write(w, e)
}

// msgKeyUnusable is the one refusal for a caller-supplied apiKey that is already in use anywhere.
const msgKeyUnusable = "this apiKey cannot be used: choose another one, or leave apiKey out to have one generated"

func badRequest(msg string) error {
	return apierr.New(http.StatusBadRequest, apierr.OutcomeBadRequest, msg, nil)
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	return json.NewEncoder(w).Encode(v)
}

// decode reads a bounded JSON body into v.
func decode(r *http.Request, v any) error {
	body := http.MaxBytesReader(nil, r.Body, maxJSONBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return apierr.TooLarge(maxJSONBody)
		case errors.Is(err, io.EOF):
			return badRequest("request body must be a JSON object")
		}
		return badRequest("request body is not valid JSON: " + jsonReason(err))
	}
	return nil
}

func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be a %s", te.Field, te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "malformed"
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("key id must be a positive integer")
	}
	return id, nil
}

func (h *Handler) listAPIKeys(w http.ResponseWriter, r *http.Request, _ keys.Principal, pid int64) error {
	list, err := h.store.ListAPIKeys(r.Context(), pid)
	if err != nil {
		return err
	}
	return writeJSON(w, NewListAPIKeysResponse(list, h.now()))
}

// CreateAPIKeyRequest is the body of POST apikeys.
type CreateAPIKeyRequest struct {
	Name             string `json:"name"`
	Role             string `json:"role"`
	IsDevelopmentKey bool   `json:"isDevelopmentKey"`
	APIKey           string `json:"apiKey,omitempty"`
	// TTL (seconds), when set, makes the key expire that long after its creation.
	TTL int64 `json:"ttl,omitempty"`
}

// maxTTL bounds ttl and grace (100 years), so the deadline arithmetic cannot overflow.
const maxTTL = 100 * 365 * 24 * 3600

func (h *Handler) create(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64, req CreateAPIKeyRequest) error {
	if strings.TrimSpace(req.Name) == "" {
		return badRequest("name is required")
	}
	role, err := keys.ParseRole(req.Role)
	if err != nil {
		return badRequest(err.Error())
	}
	if req.TTL < 0 || req.TTL > maxTTL {
		return badRequest(fmt.Sprintf("ttl must be a number of seconds between 1 and %d (leave it out for a key that never expires)", maxTTL))
	}
	ak, k, err := h.ops.CreateAPIKey(r.Context(), CallerOf(p, clientIP(r)), keys.NewAPIKey{ProjectID: pid, Name: req.Name, Role: role,
		IsDevelopmentKey: req.IsDevelopmentKey, Key: req.APIKey, TTL: time.Duration(req.TTL) * time.Second})
	if err != nil {
		return err
	}
	return writeJSON(w, CreatedResponse{Success: true, ID: ak.ID, APIKey: k})
}

func (h *Handler) createAPIKey(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64) error {
	var req CreateAPIKeyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	return h.create(w, r, p, pid, req)
}

func (h *Handler) createIngestionKey(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	return h.create(w, r, p, pid, CreateAPIKeyRequest{Name: req.Name, Role: keys.RoleIngestion.String()})
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64, onlyRole keys.Role) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := h.ops.RevokeAPIKey(r.Context(), CallerOf(p, clientIP(r)), pid, id, onlyRole); err != nil {
		return err
	}
	return writeJSON(w, struct {
		Success bool `json:"success"`
	}{true})
}

func (h *Handler) revokeAPIKey(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64) error {
	return h.revoke(w, r, p, pid, keys.RoleInvalid)
}

func (h *Handler) revokeIngestionKey(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64) error {
	return h.revoke(w, r, p, pid, keys.RoleIngestion)
}

func (h *Handler) listHMACKeys(w http.ResponseWriter, r *http.Request, _ keys.Principal, pid int64) error {
	list, err := h.store.ListHMACKeys(r.Context(), pid)
	if err != nil {
		return err
	}
	return writeJSON(w, NewListHMACKeysResponse(list))
}

func (h *Handler) createHMACKey(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64) error {
	var req struct {
		Name             string `json:"name"`
		HMACKey          string `json:"hmacKey"`
		IsDevelopmentKey bool   `json:"isDevelopmentKey"`
		// Devices is keygate's extension: bind the key to device names (docs/signatures.md).
		Devices []string `json:"devices"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	hk, err := h.ops.CreateHMACKey(r.Context(), CallerOf(p, clientIP(r)), keys.NewHMACKey{ProjectID: pid, Name: req.Name, Secret: req.HMACKey,
		IsDevelopmentKey: req.IsDevelopmentKey, Devices: req.Devices})
	if err != nil {
		return err
	}
	return writeJSON(w, CreatedResponse{Success: true, ID: hk.ID})
}

func (h *Handler) deleteHMACKey(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := h.ops.DeleteHMACKey(r.Context(), CallerOf(p, clientIP(r)), pid, id); err != nil {
		return err
	}
	return writeJSON(w, struct {
		Success bool `json:"success"`
	}{true})
}

func (h *Handler) devKeys(withAPI bool) projectHandler {
	return func(w http.ResponseWriter, r *http.Request, _ keys.Principal, pid int64) error {
		resp := DevKeysResponse{Success: true}
		if withAPI {
			list, err := h.store.ListAPIKeys(r.Context(), pid)
			if err != nil {
				return err
			}
			for _, k := range list {
				if k.IsDevelopmentKey && k.DevSecret != "" {
					s := k.DevSecret
					resp.APIKey = &s
				}
			}
		}
		hl, err := h.store.ListHMACKeys(r.Context(), pid)
		if err != nil {
			return err
		}
		for _, k := range hl {
			if k.IsDevelopmentKey {
				s := k.Secret
				resp.HMACKey = &s
			}
		}
		return writeJSON(w, resp)
	}
}

func (h *Handler) apiKeyInfo(w http.ResponseWriter, r *http.Request) {
	p, ok := keys.PrincipalFrom(r.Context())
	if !ok {
		apierr.Write(w, apierr.New(http.StatusUnauthorized, apierr.OutcomeUnauthorized, "missing x-api-key header", nil))
		return
	}
	_ = writeJSON(w, struct {
		Success   bool      `json:"success"`
		APIKeyID  int64     `json:"apiKeyId"`
		ProjectID int64     `json:"projectId"`
		Role      keys.Role `json:"role"`
		Name      string    `json:"name"`
		IsDev     bool      `json:"isDevelopmentKey"`
	}{true, p.KeyID, p.ProjectID, p.Role, p.Name, p.Dev})
}

func (h *Handler) getSettings(w http.ResponseWriter, r *http.Request, _ keys.Principal, pid int64) error {
	ps, err := h.store.Settings(r.Context(), pid)
	if err != nil {
		return err
	}
	return writeJSON(w, NewSettingsResponse(ps))
}

// UpdateSettingsRequest is the body of POST keygate/settings: fields left out keep their value.
type UpdateSettingsRequest struct {
	RequireSignatures      *bool `json:"requireSignatures"`
	RequireDeviceBoundKeys *bool `json:"requireDeviceBoundKeys"`
}

func (h *Handler) updateSettings(w http.ResponseWriter, r *http.Request, p keys.Principal, pid int64) error {
	var req UpdateSettingsRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ps, err := h.ops.UpdateSettings(r.Context(), CallerOf(p, clientIP(r)), pid, req.RequireSignatures, req.RequireDeviceBoundKeys)
	if err != nil {
		return err
	}
	return writeJSON(w, NewSettingsResponse(ps))
}
