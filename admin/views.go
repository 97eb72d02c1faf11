// Package admin serves the key-management API of docs/protocol.md §3 on the Studio face (apikeys, hmackeys,
// devkeys, api-key-info) from a keys.Store, in the exact JSON shapes the platform's clients expect.
package admin

import (
	"time"

	"github.com/keygate/keygate/keys"
)

// APIKeyView is one row of GET /v1/api/{projectId}/apikeys. APIKey is the display prefix followed by
// "..." — except for the development key, which docs/protocol.md §2.1 has the Studio list whole.
type APIKeyView struct {
	ID               int64     `json:"id"`
	APIKey           string    `json:"apiKey"`
	Name             string    `json:"name"`
	Role             keys.Role `json:"role"`
	RoleLabel        string    `json:"roleLabel"`
	IsDevelopmentKey bool      `json:"isDevelopmentKey"`
	Created          time.Time `json:"created"`
	// LastUsed is the last use seen by a gateway (batched, so up to KEYGATE_LAST_USED_INTERVAL old).
	LastUsed *LastUsedView `json:"lastUsed,omitempty"`
	// Expires is when the key stops working (ISO 8601); absent for keys that never expire.
	Expires *time.Time `json:"expires,omitempty"`
	// Expired is set once Expires has passed (the key is kept listed for the retention period).
	Expired bool `json:"expired,omitempty"`
	// RolledUntil is when the secret replaced by the last roll stops working (absent: it already has).
	RolledUntil *time.Time `json:"rolledUntil,omitempty"`
	// CreatedByUser is who created the key: the acting API key (keyId, name), or the CLI's OS user.
	CreatedByUser *keys.Actor `json:"createdByUser,omitempty"`
}

// LastUsedView is a key's last use: when, and from which client address.
type LastUsedView struct {
	Date      time.Time `json:"date"`
	IPAddress string    `json:"ipAddress,omitempty"`
}

// NewAPIKeyView renders a stored key for a listing at now.
func NewAPIKeyView(k keys.APIKey, now time.Time) APIKeyView {
	v := APIKeyView{
		ID: k.ID, APIKey: k.Prefix + "...", Name: k.Name, Role: k.Role, RoleLabel: k.Role.Label(),
		IsDevelopmentKey: k.IsDevelopmentKey, Created: k.Created, CreatedByUser: k.CreatedBy,
	}
	if k.IsDevelopmentKey && k.DevSecret != "" {
		v.APIKey = k.DevSecret
	}
	if !k.LastUsed.IsZero() {
		v.LastUsed = &LastUsedView{Date: k.LastUsed, IPAddress: k.LastUsedIP}
	}
	if !k.Expires.IsZero() {
		exp := k.Expires
		v.Expires, v.Expired = &exp, k.Expired(now)
	}
	if !k.RolledUntil.IsZero() && now.Before(k.RolledUntil) {
		ru := k.RolledUntil
		v.RolledUntil = &ru
	}
	return v
}

// HMACKeyView is one row of GET /v1/api/{projectId}/hmackeys. Devices (a keygate extension) is
// present only for keys bound to devices.
type HMACKeyView struct {
	ID               int64     `json:"id"`
	HMACKey          string    `json:"hmacKey"`
	Name             string    `json:"name"`
	IsDevelopmentKey bool      `json:"isDevelopmentKey"`
	Created          time.Time `json:"created"`
	Devices          []string  `json:"devices,omitempty"`
	// PreviousUntil is when the secret replaced by the last roll stops verifying (absent: it has).
	PreviousUntil *time.Time `json:"previousUntil,omitempty"`
}

// NewHMACKeyView renders a stored HMAC key.
func NewHMACKeyView(k keys.HMACKey) HMACKeyView {
	v := HMACKeyView{ID: k.ID, HMACKey: k.Secret, Name: k.Name, IsDevelopmentKey: k.IsDevelopmentKey, Created: k.Created, Devices: k.Devices}
	if k.Previous != "" {
		pu := k.PreviousUntil
		v.PreviousUntil = &pu
	}
	return v
}

// SettingsResponse is the answer of GET and POST /v1/api/{projectId}/keygate/settings (a keygate
// extension): the project's settings that the Keys page and scripts may change.
type SettingsResponse struct {
	Success                bool `json:"success"`
	RequireSignatures      bool `json:"requireSignatures"`
	RequireDeviceBoundKeys bool `json:"requireDeviceBoundKeys"`
}

// NewSettingsResponse renders a project's settings.
func NewSettingsResponse(ps keys.ProjectSettings) SettingsResponse {
	return SettingsResponse{Success: true, RequireSignatures: ps.RequireSignatures, RequireDeviceBoundKeys: ps.RequireDeviceBoundKeys}
}

// ListAPIKeysResponse is the answer of GET apikeys.
type ListAPIKeysResponse struct {
	Success bool         `json:"success"`
	APIKeys []APIKeyView `json:"apiKeys"`
}

// ListHMACKeysResponse is the answer of GET hmackeys.
type ListHMACKeysResponse struct {
	Success  bool          `json:"success"`
	HMACKeys []HMACKeyView `json:"hmacKeys"`
}

// CreatedResponse is the answer of POST apikeys (with the whole key, shown once) and POST hmackeys,
// and of the rolls (with the new secret: apiKey or hmacKey).
type CreatedResponse struct {
	Success bool   `json:"success"`
	ID      int64  `json:"id"`
	APIKey  string `json:"apiKey,omitempty"`
	HMACKey string `json:"hmacKey,omitempty"`
}

// AuditResponse is the answer of GET audit: events newest first; Next is the cursor for the next
// page (the before parameter), null on the last page.
type AuditResponse struct {
	Success bool              `json:"success"`
	Events  []keys.AuditEvent `json:"events"`
	Next    *string           `json:"next"`
}

// NewAuditResponse renders a page of audit events and the cursor of the next one ("" on the last).
func NewAuditResponse(events []keys.AuditEvent, next string) AuditResponse {
	resp := AuditResponse{Success: true, Events: events}
	if resp.Events == nil {
		resp.Events = []keys.AuditEvent{}
	}
	if next != "" {
		resp.Next = &next
	}
	return resp
}

// DevKeysResponse is the answer of GET devkeys and devkeys/hmac.
type DevKeysResponse struct {
	Success bool    `json:"success"`
	APIKey  *string `json:"apiKey,omitempty"`
	HMACKey *string `json:"hmacKey,omitempty"`
}

// NoDevKeysMessage is what the platform's tools print when a project has no development keys.
const NoDevKeysMessage = "You don't have any development keys set"

// NewListAPIKeysResponse renders a project's keys as GET apikeys answers them (and `keygate keys
// list --json` prints them).
func NewListAPIKeysResponse(list []keys.APIKey, now time.Time) ListAPIKeysResponse {
	views := make([]APIKeyView, 0, len(list))
	for _, k := range list {
		views = append(views, NewAPIKeyView(k, now))
	}
	return ListAPIKeysResponse{Success: true, APIKeys: views}
}

// NewListHMACKeysResponse renders a project's HMAC keys as GET hmackeys answers them.
func NewListHMACKeysResponse(list []keys.HMACKey) ListHMACKeysResponse {
	views := make([]HMACKeyView, 0, len(list))
	for _, k := range list {
		views = append(views, NewHMACKeyView(k))
	}
	return ListHMACKeysResponse{Success: true, HMACKeys: views}
}

// CreatedAPIKeyResponse is CreatedResponse with the new key's record, as `keygate keys create
// --json` prints it.
type CreatedAPIKeyResponse struct {
	CreatedResponse
	Name             string     `json:"name"`
	Role             keys.Role  `json:"role"`
	ProjectID        int64      `json:"projectId"`
	IsDevelopmentKey bool       `json:"isDevelopmentKey"`
	Expires          *time.Time `json:"expires,omitempty"`
}

// NewCreatedAPIKeyResponse renders a key just created, with the whole key (shown once).
func NewCreatedAPIKeyResponse(ak keys.APIKey, key string) CreatedAPIKeyResponse {
	r := CreatedAPIKeyResponse{CreatedResponse{Success: true, ID: ak.ID, APIKey: key}, ak.Name, ak.Role, ak.ProjectID, ak.IsDevelopmentKey, nil}
	if !ak.Expires.IsZero() {
		r.Expires = &ak.Expires
	}
	return r
}

// NewDevKeysResponse renders a project's development keys (nil: not set) as GET devkeys does.
func NewDevKeysResponse(api *keys.APIKey, hk *keys.HMACKey) DevKeysResponse {
	resp := DevKeysResponse{Success: true}
	if api != nil {
		resp.APIKey = &api.DevSecret
	}
	if hk != nil {
		resp.HMACKey = &hk.Secret
	}
	return resp
}

// CreatedHMACKeyResponse is an HMAC key just created, as `keygate hmac create --json` prints it.
type CreatedHMACKeyResponse struct {
	Success bool `json:"success"`
	HMACKeyView
}

// DeviceKeysResponse is what `keygate hmac create --devices-from --json` prints: every key made,
// and Success false when the store failed before the last one.
type DeviceKeysResponse struct {
	Success bool             `json:"success"`
	Keys    []keys.DeviceKey `json:"keys"`
}
