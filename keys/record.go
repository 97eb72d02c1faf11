package keys

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// apiKeyRecord is an API key as both stores keep it. The hash is hex so records stay readable in
// redis-cli; DevSecret is sealed (see Sealer) and present only on the development key.
type apiKeyRecord struct {
	ID        int64     `json:"id"`
	ProjectID int64     `json:"project"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Dev       bool      `json:"dev,omitempty"`
	Hash      string    `json:"hash"`
	Prefix    string    `json:"prefix"`
	Created   time.Time `json:"created"`
	DevSecret string    `json:"devSecret,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
	// OldHash is the secret replaced by the last roll; it resolves until OldUntil.
	OldHash   string    `json:"oldHash,omitempty"`
	OldUntil  time.Time `json:"oldUntil,omitzero"`
	CreatedBy *Actor    `json:"createdBy,omitempty"`
}

type hmacRecord struct {
	ID        int64     `json:"id"`
	ProjectID int64     `json:"project"`
	Name      string    `json:"name"`
	Secret    string    `json:"secret"` // sealed
	Dev       bool      `json:"dev,omitempty"`
	Created   time.Time `json:"created"`
	// OldSecret (sealed like Secret) still verifies until OldUntil, after a roll.
	OldSecret string    `json:"oldSecret,omitempty"`
	OldUntil  time.Time `json:"oldUntil,omitzero"`
	Devices   []string  `json:"devices,omitempty"`
}

const (
	sealKindHMAC   = "hmac"
	sealKindDevKey = "apikey"
)

func newAPIKeyRecord(n NewAPIKey, id int64, now time.Time, s *Sealer) (apiKeyRecord, error) {
	r := apiKeyRecord{
		ID: id, ProjectID: n.ProjectID, Name: n.Name, Role: n.Role, Dev: n.IsDevelopmentKey,
		Hash: HashKey(n.Key).String(), Prefix: DisplayPrefix(n.Key), Created: now.UTC().Truncate(time.Millisecond),
		CreatedBy: n.CreatedBy,
	}
	if n.TTL > 0 {
		r.Expires = r.Created.Add(n.TTL).Truncate(time.Millisecond)
	}
	if n.IsDevelopmentKey {
		sealed, err := s.Seal(n.Key, sealKindDevKey, n.ProjectID, id)
		if err != nil {
			return r, err
		}
		r.DevSecret = sealed
	}
	return r, nil
}

func (r apiKeyRecord) apiKey(s *Sealer) (APIKey, error) {
	h, err := ParseHash(r.Hash)
	if err != nil {
		return APIKey{}, fmt.Errorf("api key %d: %w", r.ID, err)
	}
	k := APIKey{
		ID: r.ID, ProjectID: r.ProjectID, Name: r.Name, Role: r.Role, IsDevelopmentKey: r.Dev,
		Hash: h, Prefix: r.Prefix, Created: r.Created, Expires: r.Expires, CreatedBy: r.CreatedBy,
	}
	if r.OldHash != "" {
		k.RolledUntil = r.OldUntil
	}
	if r.Dev && r.DevSecret != "" {
		sec, err := s.Open(r.DevSecret, sealKindDevKey, r.ProjectID, r.ID)
		if err != nil {
			return APIKey{}, fmt.Errorf("development key %d: %w", r.ID, err)
		}
		k.DevSecret = sec
	}
	return k, nil
}

func (r apiKeyRecord) principal() Principal {
	return Principal{KeyID: r.ID, ProjectID: r.ProjectID, Role: r.Role, Dev: r.Dev, Name: r.Name, Expires: unixMilli(r.Expires)}
}

// principalFor is what the secret with hash h means: the current secret's principal, the rolled
// one's (with its grace deadline), or nothing (a secret past its grace).
func (r apiKeyRecord) principalFor(h Hash, now time.Time) (Principal, bool) {
	hs := h.String()
	switch {
	case hs == r.Hash:
		return r.principal(), true
	case hs == r.OldHash && now.Before(r.OldUntil):
		p := r.principal()
		p.GraceUntil = r.OldUntil.UnixMilli()
		return p, true
	}
	return Principal{}, false
}

// gone reports whether an expired key is past its retention and should be removed.
func (r apiKeyRecord) gone(now time.Time, retention time.Duration) bool {
	return !r.Expires.IsZero() && !now.Before(r.Expires.Add(retention))
}

// roll points the record at a new secret, keeping the old one for grace. It returns the hashes
// that stop resolving at once (the old one when grace is 0, and any older one still in grace).
func (r *apiKeyRecord) roll(newKey string, grace time.Duration, now time.Time, s *Sealer) ([]Hash, error) {
	var dead []Hash
	if r.OldHash != "" {
		if h, err := ParseHash(r.OldHash); err == nil {
			dead = append(dead, h)
		}
	}
	old := r.Hash
	r.Hash, r.Prefix = HashKey(newKey).String(), DisplayPrefix(newKey)
	r.OldHash, r.OldUntil = "", time.Time{}
	if grace > 0 {
		r.OldHash, r.OldUntil = old, now.UTC().Add(grace).Truncate(time.Millisecond)
	} else if h, err := ParseHash(old); err == nil {
		dead = append(dead, h)
	}
	if r.Dev {
		sealed, err := s.Seal(newKey, sealKindDevKey, r.ProjectID, r.ID)
		if err != nil {
			return nil, err
		}
		r.DevSecret = sealed
	}
	return dead, nil
}

// hashes are the secrets that may resolve to this record.
func (r apiKeyRecord) hashes() []Hash {
	var out []Hash
	for _, s := range []string{r.Hash, r.OldHash} {
		if h, err := ParseHash(s); err == nil {
			out = append(out, h)
		}
	}
	return out
}

func newHMACRecord(n NewHMACKey, id int64, now time.Time, s *Sealer) (hmacRecord, error) {
	sealed, err := s.Seal(n.Secret, sealKindHMAC, n.ProjectID, id)
	if err != nil {
		return hmacRecord{}, err
	}
	return hmacRecord{ID: id, ProjectID: n.ProjectID, Name: n.Name, Secret: sealed, Dev: n.IsDevelopmentKey,
		Created: now.UTC().Truncate(time.Millisecond), Devices: slices.Clone(n.Devices)}, nil
}

// hmacKey opens the record; the rolled secret is included only while it still verifies at now.
func (r hmacRecord) hmacKey(s *Sealer, now time.Time) (HMACKey, error) {
	sec, err := s.Open(r.Secret, sealKindHMAC, r.ProjectID, r.ID)
	if err != nil {
		return HMACKey{}, fmt.Errorf("hmac key %d: %w", r.ID, err)
	}
	k := HMACKey{ID: r.ID, ProjectID: r.ProjectID, Name: r.Name, Secret: sec, IsDevelopmentKey: r.Dev, Created: r.Created, Devices: r.Devices}
	if r.OldSecret != "" && now.Before(r.OldUntil) {
		if k.Previous, err = s.Open(r.OldSecret, sealKindHMAC, r.ProjectID, r.ID); err != nil {
			return HMACKey{}, fmt.Errorf("hmac key %d: %w", r.ID, err)
		}
		k.PreviousUntil = r.OldUntil
	}
	return k, nil
}

// roll replaces the secret, keeping the current one (still sealed) for grace.
func (r *hmacRecord) roll(newSecret string, grace time.Duration, now time.Time, s *Sealer) error {
	sealed, err := s.Seal(newSecret, sealKindHMAC, r.ProjectID, r.ID)
	if err != nil {
		return err
	}
	r.OldSecret, r.OldUntil = "", time.Time{}
	if grace > 0 {
		r.OldSecret, r.OldUntil = r.Secret, now.UTC().Add(grace).Truncate(time.Millisecond)
	}
	r.Secret = sealed
	return nil
}

func decode[T any](b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("decode record: %w", err)
	}
	return v, nil
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Records are plain structs of strings, numbers and times: marshalling cannot fail.
		panic(fmt.Sprintf("encode record: %v", err))
	}
	return b
}
