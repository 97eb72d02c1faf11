package keys

import (
	"context"
	"time"
)

// Store keeps API keys, HMAC keys and project settings. Two implementations: RedisStore (shared by
// many replicas) and BoltStore (the embedded default). Both pass the same conformance suite
// (store_test.go).
type Store interface {
	// CreateAPIKey stores a new key (its hash; see APIKey). When IsDevelopmentKey is set, the flag
	// moves off the project's previous development key in the same atomic step.
	CreateAPIKey(ctx context.Context, n NewAPIKey) (APIKey, error)
	// ListAPIKeys returns a project's keys, oldest first, with LastUsed filled in.
	ListAPIKeys(ctx context.Context, projectID int64) ([]APIKey, error)
	// GetAPIKey returns one key of a project, or ErrNotFound.
	GetAPIKey(ctx context.Context, projectID, id int64) (APIKey, error)
	// RevokeAPIKey deletes a key for good and announces it (EventRevoked). ErrNotFound if absent.
	RevokeAPIKey(ctx context.Context, projectID, id int64) error
	// LookupAPIKey resolves a key hash in one round trip. ErrNotFound when no live key has it.
	LookupAPIKey(ctx context.Context, h Hash) (Principal, error)
	// TouchAPIKeys records last-used times and addresses, batched (see UsageRecorder).
	TouchAPIKeys(ctx context.Context, used []Usage) error
	// RollAPIKey gives a key a new secret (newKey) under the same id, name, role and flags. The old
	// secret keeps resolving until grace has passed (0: refused at once, announced as revoked); a
	// secret still in grace from an earlier roll stops at once. ErrNotFound if absent, ErrExists if
	// newKey is in use.
	RollAPIKey(ctx context.Context, projectID, id int64, newKey string, grace time.Duration) (APIKey, error)
	// SetDevelopmentAPIKey makes an existing key the project's development key, moving the flag off
	// the previous one. key is the whole key: the store keeps only hashes, and the development key is
	// listed whole, so the caller must prove it has it (ErrWrongKey otherwise).
	SetDevelopmentAPIKey(ctx context.Context, projectID, id int64, key string) (APIKey, error)

	// CreateHMACKey stores a new HMAC key; the development flag moves like CreateAPIKey's.
	CreateHMACKey(ctx context.Context, n NewHMACKey) (HMACKey, error)
	// ListHMACKeys returns a project's HMAC keys with their secrets, oldest first.
	ListHMACKeys(ctx context.Context, projectID int64) ([]HMACKey, error)
	// DeleteHMACKey deletes one HMAC key. ErrNotFound if absent.
	DeleteHMACKey(ctx context.Context, projectID, id int64) error
	// RollHMACKey replaces an HMAC key's secret; the old one still verifies until grace has passed
	// (listed as Previous until then).
	RollHMACKey(ctx context.Context, projectID, id int64, newSecret string, grace time.Duration) (HMACKey, error)
	// SetDevelopmentHMACKey makes an existing HMAC key the project's development key.
	SetDevelopmentHMACKey(ctx context.Context, projectID, id int64) (HMACKey, error)

	// Auditor keeps the project's audit trail.
	Auditor
	// SetLifecycle sets the retention periods (call before use).
	SetLifecycle(Lifecycle)

	// Settings returns a project's settings (the zero value when none were set).
	Settings(ctx context.Context, projectID int64) (ProjectSettings, error)
	// UpdateSettings changes a project's settings atomically and announces it.
	UpdateSettings(ctx context.Context, projectID int64, update func(*ProjectSettings) error) (ProjectSettings, error)

	// Subscribe delivers change events until ctx ends. The first event is EventResync, sent once the
	// subscription is live (nothing published after it is missed), and another one follows whenever
	// events may have been lost (a dropped Redis connection).
	Subscribe(ctx context.Context) <-chan Event

	// Check reports whether the store can be reached (for /readyz).
	Check(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// Usage is one key's last use.
type Usage struct {
	ProjectID int64
	KeyID     int64
	At        time.Time
	// IP is the client address of that use ("" when unknown).
	IP string
}

// DevelopmentKeys returns the project's development API key (whole) and HMAC key, if set.
func DevelopmentKeys(ctx context.Context, s Store, projectID int64) (api *APIKey, hmac *HMACKey, err error) {
	ak, err := s.ListAPIKeys(ctx, projectID)
	if err != nil {
		return nil, nil, err
	}
	for i := range ak {
		if ak[i].IsDevelopmentKey {
			api = &ak[i]
		}
	}
	hk, err := s.ListHMACKeys(ctx, projectID)
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
