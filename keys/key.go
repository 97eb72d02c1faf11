// Package keys owns keygate's credentials: API keys (stored only as SHA-256 hashes), HMAC keys
// (stored so they can be used, encrypted when a master key is configured), the roles, the Principal a
// key resolves to, and the Store that keeps them — in Redis or in an embedded bbolt file.
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound: no such key (never created, revoked, or deleted).
	ErrNotFound = errors.New("not found")
	// ErrInvalidKey: a caller-supplied key does not have the API key form.
	ErrInvalidKey = errors.New("invalid key")
	// ErrExists: a caller-supplied key is already in use.
	ErrExists = errors.New("key already exists")
	// ErrLocked: the embedded store's file is held by another process.
	ErrLocked = errors.New("data file in use by another keygate process")
	// ErrWrongKey: the whole key given to prove possession (making a key the development key) does
	// not belong to the key named.
	ErrWrongKey = errors.New("the key given is not this key")
	// ErrWeakHMACKey: a caller-supplied HMAC key is too short to be safe.
	ErrWeakHMACKey = errors.New("weak hmac key")
)

const (
	// KeyPrefix starts every API key.
	KeyPrefix = "ei_"
	// MinKeyLength is the shortest caller-supplied key accepted (docs/protocol.md §2.1).
	MinKeyLength = 32
	// MaxKeyLength bounds what is hashed and stored; longer header values are refused unread.
	MaxKeyLength = 256
	// displayChars is how many characters after "ei_" a listing shows.
	displayChars = 8
)

// Hash is the SHA-256 of an API key: what the store keeps and what lookups use.
type Hash [32]byte

// String is the lowercase hex of the hash (safe to log: it cannot be turned back into the key).
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// HashKey hashes an API key for storage and lookup.
func HashKey(key string) Hash {
	// Copying into a stack buffer avoids the heap allocation of []byte(key) on the hot path.
	if len(key) <= MaxKeyLength {
		var buf [MaxKeyLength]byte
		n := copy(buf[:], key)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(key))
}

// ParseHash reads a hash written by Hash.String.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("parse hash: want 64 hex characters, got %d", len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("parse hash: %w", err)
	}
	return h, nil
}

// GenerateAPIKey returns a new key: "ei_" and 64 lowercase hex characters from crypto/rand.
func GenerateAPIKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate api key: %w", err)
	}
	return KeyPrefix + hex.EncodeToString(b[:]), nil
}

// MinHMACKeyBytes is the least strength accepted for a caller-supplied HMAC key: 16 bytes, that is
// 32 hex characters when the key is written in hex (the platform's form), 16 characters otherwise.
const MinHMACKeyBytes = 16

// GenerateHMACKey returns 32 random bytes as 64 lowercase hex characters.
func GenerateHMACKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate hmac key: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// LooksLikeAPIKey is the cheap shape check done before any hashing or lookup: "ei_", at least
// MinKeyLength and at most MaxKeyLength printable ASCII characters, no comma (a comma makes the
// x-api-key header a list, which the gateway refuses: docs/security.md).
func LooksLikeAPIKey(s string) bool {
	if len(s) < MinKeyLength || len(s) > MaxKeyLength || !strings.HasPrefix(s, KeyPrefix) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == ',' {
			return false
		}
	}
	return true
}

// ValidateAPIKey explains why a caller-supplied key is refused. The error never contains the key.
func ValidateAPIKey(s string) error {
	switch {
	case !strings.HasPrefix(s, KeyPrefix):
		return fmt.Errorf("%w: an API key must start with %q", ErrInvalidKey, KeyPrefix)
	case len(s) < MinKeyLength:
		return fmt.Errorf("%w: an API key must be at least %d characters long", ErrInvalidKey, MinKeyLength)
	case !LooksLikeAPIKey(s):
		return fmt.Errorf("%w: an API key must be at most %d printable ASCII characters without spaces or commas", ErrInvalidKey, MaxKeyLength)
	}
	return nil
}

// DisplayPrefix is the recognisable part a listing shows: "ei_" and the next 8 characters.
func DisplayPrefix(key string) string {
	n := len(KeyPrefix) + displayChars
	if len(key) < n {
		n = len(key)
	}
	return key[:n]
}

// ValidateHMACStrength refuses a caller-supplied HMAC key shorter than MinHMACKeyBytes of key
// material: a hex key counts half a byte per character. The error never contains the key.
func ValidateHMACStrength(s string) error {
	strength := len(s)
	if isHex(s) {
		strength = len(s) / 2
	}
	if strength < MinHMACKeyBytes {
		return fmt.Errorf("%w: an HMAC key must have at least %d bytes (%d hex characters)",
			ErrWeakHMACKey, MinHMACKeyBytes, 2*MinHMACKeyBytes)
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// APIKey is a stored API key. Nothing in it can give the key back except DevSecret, which is kept
// (sealed) only while the key is its project's development key, because docs/protocol.md §2.1 has the Studio list
// the development key whole and CLI tooling fetch it.
type APIKey struct {
	ID               int64     `json:"id"`
	ProjectID        int64     `json:"projectId"`
	Name             string    `json:"name"`
	Role             Role      `json:"role"`
	IsDevelopmentKey bool      `json:"isDevelopmentKey"`
	Hash             Hash      `json:"-"`
	Prefix           string    `json:"prefix"`
	Created          time.Time `json:"created"`
	LastUsed         time.Time `json:"lastUsed,omitzero"`
	// LastUsedIP is the client address of the last use (empty when unknown).
	LastUsedIP string `json:"lastUsedIp,omitempty"`
	// Expires is when the key stops working (zero: never). An expired key is still listed for the
	// store's retention period, then removed.
	Expires time.Time `json:"expires,omitzero"`
	// RolledUntil is when the secret replaced by the last roll stops working (zero: none works).
	RolledUntil time.Time `json:"rolledUntil,omitzero"`
	// CreatedBy is who created the key (nil for keys created before this was recorded).
	CreatedBy *Actor `json:"createdBy,omitempty"`
	// DevSecret is the whole key, only for the development key (empty otherwise).
	DevSecret string `json:"-"`
}

// Principal returns what the key means to the gateway.
func (k APIKey) Principal() Principal {
	return Principal{KeyID: k.ID, ProjectID: k.ProjectID, Role: k.Role, Dev: k.IsDevelopmentKey, Name: k.Name,
		Expires: unixMilli(k.Expires)}
}

// Expired reports whether the key has expired at now.
func (k APIKey) Expired(now time.Time) bool { return !k.Expires.IsZero() && !now.Before(k.Expires) }

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Actor is who did something: an API key (KeyID > 0) or a CLI user (KeyID 0, Name the OS user).
type Actor struct {
	KeyID int64  `json:"keyId"`
	Name  string `json:"name"`
}

// NewAPIKey is what a caller gives to create an API key.
type NewAPIKey struct {
	ProjectID        int64
	Name             string
	Role             Role
	IsDevelopmentKey bool
	// Key is the whole key, generated by Generate or supplied by the caller; the store keeps its hash.
	Key string
	// TTL, when positive, makes the key expire that long after it is created (by the store's clock).
	TTL time.Duration
	// CreatedBy is recorded with the key and shown in listings.
	CreatedBy *Actor
}

// Validate checks the request before anything is stored.
func (n NewAPIKey) Validate() error {
	if n.ProjectID <= 0 {
		return fmt.Errorf("project id must be a positive integer")
	}
	if strings.TrimSpace(n.Name) == "" {
		return fmt.Errorf("name is required")
	}
	if len(n.Name) > 200 {
		return fmt.Errorf("name is longer than 200 characters")
	}
	if !n.Role.Valid() {
		return fmt.Errorf("role is required (admin, ingestion_deployment, ingestiononly or readonly)")
	}
	if n.TTL < 0 {
		return fmt.Errorf("ttl must not be negative")
	}
	return ValidateAPIKey(n.Key)
}

// HMACKey is a project's HMAC key, used to verify signed samples. Secret is the plain key.
type HMACKey struct {
	ID               int64     `json:"id"`
	ProjectID        int64     `json:"projectId"`
	Name             string    `json:"name"`
	Secret           string    `json:"hmacKey"`
	IsDevelopmentKey bool      `json:"isDevelopmentKey"`
	Created          time.Time `json:"created"`
	// Previous is the secret replaced by the last roll, kept while it still verifies (until
	// PreviousUntil); empty otherwise.
	Previous      string    `json:"-"`
	PreviousUntil time.Time `json:"previousUntil,omitzero"`
	// Devices binds the key to the devices it may sign for (see MatchDevice); empty means any
	// device, as before bindings existed.
	Devices []string `json:"devices,omitempty"`
}

// Bound reports whether the key is bound to devices.
func (k HMACKey) Bound() bool { return len(k.Devices) > 0 }

// ValidFor reports whether the key may sign samples of the named device.
func (k HMACKey) ValidFor(device string) bool {
	if !k.Bound() {
		return true
	}
	for _, p := range k.Devices {
		if MatchDevice(p, device) {
			return true
		}
	}
	return false
}

// NewHMACKey is what a caller gives to create an HMAC key.
type NewHMACKey struct {
	ProjectID        int64
	Name             string
	Secret           string
	IsDevelopmentKey bool
	// Devices optionally binds the key to device names (exact, or a prefix ending in '*').
	Devices []string
}

// Validate checks the request before anything is stored.
func (n NewHMACKey) Validate() error {
	if n.ProjectID <= 0 {
		return fmt.Errorf("project id must be a positive integer")
	}
	if strings.TrimSpace(n.Name) == "" {
		return fmt.Errorf("name is required")
	}
	if n.Secret == "" {
		return fmt.Errorf("hmac key is required")
	}
	if len(n.Secret) > 1024 {
		return fmt.Errorf("hmac key is longer than 1024 bytes")
	}
	if len(n.Devices) > MaxDevicesPerKey {
		return fmt.Errorf("an hmac key may be bound to at most %d device names", MaxDevicesPerKey)
	}
	seen := make(map[string]bool, len(n.Devices))
	for _, d := range n.Devices {
		if err := ValidateDevicePattern(d); err != nil {
			return err
		}
		if seen[d] {
			return fmt.Errorf("device %q is listed twice", d)
		}
		seen[d] = true
	}
	return nil
}

const (
	// MaxDevicesPerKey bounds one key's binding: a fleet gets one key per device, not one key
	// listing the fleet.
	MaxDevicesPerKey = 1000
	// MaxDeviceNameLength bounds a device name or prefix in a binding.
	MaxDeviceNameLength = 256
)

// ValidateDevicePattern checks one entry of a binding: a device name, or a prefix followed by a
// single trailing '*' ("line-3-*"). A lone "*" is refused: it would bind the key to every device,
// which is what an unbound key already is, and would satisfy requireDeviceBoundKeys in name only.
func ValidateDevicePattern(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("a device name must not be empty")
	case len(p) > MaxDeviceNameLength:
		return fmt.Errorf("a device name is longer than %d bytes", MaxDeviceNameLength)
	case p == "*":
		return fmt.Errorf(`a device binding of "*" alone matches every device: leave devices out for an unbound key`)
	case strings.Contains(strings.TrimSuffix(p, "*"), "*"):
		return fmt.Errorf("device %q: '*' is allowed only at the end, for a prefix", p)
	}
	for _, r := range p {
		if r < ' ' || r == 0x7f || r == utf8.RuneError {
			return fmt.Errorf("device %q contains a control character or invalid UTF-8", p)
		}
	}
	return nil
}

// MatchDevice reports whether a device name matches one binding entry: equal to it, or, for an
// entry ending in '*', starting with what precedes the '*'. Names are compared byte for byte.
func MatchDevice(pattern, name string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return pattern == name
}

// Principal is what a resolved API key means: who is calling, for which project, with which role.
// The two deadlines are absolute (unix milliseconds, 0 = none) so that whoever holds a principal — a
// replica's cache included — refuses it on time by comparing with its clock, without asking the store.
type Principal struct {
	KeyID     int64  `json:"keyId"`
	ProjectID int64  `json:"projectId"`
	Role      Role   `json:"role"`
	Dev       bool   `json:"dev"`
	Name      string `json:"name"`
	// Expires is when the key expires (refused as "API key expired").
	Expires int64 `json:"expires,omitempty"`
	// GraceUntil is set when the secret was replaced by a roll: it works until then, and is refused
	// like a revoked key afterwards.
	GraceUntil int64 `json:"graceUntil,omitempty"`
}

// Usable says whether the principal still works at now (unix ms): ok, or refused as expired, or
// refused as revoked (a rolled secret past its grace).
func (p *Principal) Usable(nowMs int64) (ok, expired bool) {
	if p.GraceUntil != 0 && nowMs >= p.GraceUntil {
		return false, false
	}
	if p.Expires != 0 && nowMs >= p.Expires {
		return false, true
	}
	return true, false
}

// Limit is a rate: Rate events per Period, bursting to Burst. The zero Limit means "not set".
type Limit struct {
	Rate   int           `json:"rate"`
	Period time.Duration `json:"period"`
	Burst  int           `json:"burst"`
}

// IsZero reports whether the limit is unset.
func (l Limit) IsZero() bool { return l.Rate == 0 && l.Burst == 0 }

// ProjectSettings are per-project options kept in the store.
type ProjectSettings struct {
	// RequireSignatures refuses unsigned ingestion files for the project.
	RequireSignatures bool `json:"requireSignatures"`
	// Limit overrides the role default for the whole project (all keys together).
	Limit Limit `json:"limit,omitzero"`
	// KeyLimits override the role default per API key id.
	KeyLimits map[int64]Limit `json:"keyLimits,omitempty"`
	// RequireDeviceBoundKeys refuses samples signed with an HMAC key that is not bound to devices,
	// so one opened device's key cannot sign for the rest of the fleet (docs/signatures.md).
	RequireDeviceBoundKeys bool `json:"requireDeviceBoundKeys"`
}

// SetLimit overrides the project's limit, or one key's when keyID > 0. A zero l clears the
// override instead.
func (ps *ProjectSettings) SetLimit(keyID int64, l Limit) {
	switch {
	case keyID <= 0:
		ps.Limit = l
	case l.IsZero():
		delete(ps.KeyLimits, keyID)
	default:
		if ps.KeyLimits == nil {
			ps.KeyLimits = map[int64]Limit{}
		}
		ps.KeyLimits[keyID] = l
	}
}

// EventKind says what changed.
type EventKind uint8

// Event kinds announced by a Store.
const (
	// EventResync: announcements may have been missed (a subscription was (re)established); drop everything cached.
	EventResync EventKind = iota
	// EventRevoked: an API key was revoked; Hash says which.
	EventRevoked
	// EventKeyChanged: an API key's principal changed (the development flag moved); Hash says which.
	EventKeyChanged
	// EventHMACChanged: a project's HMAC keys changed. HMACKeyID names the key when the change was
	// the deletion of that one key (caches drop it and keep the rest); 0 means "read them again".
	EventHMACChanged
	// EventSettingsChanged: a project's settings changed.
	EventSettingsChanged
)

// Event is a change announced to every subscriber (every gateway replica).
type Event struct {
	Kind      EventKind
	ProjectID int64
	Hash      Hash
	HMACKeyID int64
	// GraceUntil (unix ms), on EventKeyChanged, says Hash is a secret replaced by a roll that stops
	// working then: whoever holds a session opened with it (remote management) ends it then.
	GraceUntil int64
}
