package keys

import (
	"encoding/json"
	"fmt"
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
}

type hmacRecord struct {
	ID        int64     `json:"id"`
	ProjectID int64     `json:"project"`
	Name      string    `json:"name"`
	Secret    string    `json:"secret"` // sealed
	Dev       bool      `json:"dev,omitempty"`
	Created   time.Time `json:"created"`
}

const (
	sealKindHMAC   = "hmac"
	sealKindDevKey = "apikey"
)

func newAPIKeyRecord(n NewAPIKey, id int64, now time.Time, s *Sealer) (apiKeyRecord, error) {
	r := apiKeyRecord{
		ID: id, ProjectID: n.ProjectID, Name: n.Name, Role: n.Role, Dev: n.IsDevelopmentKey,
		Hash: HashKey(n.Key).String(), Prefix: DisplayPrefix(n.Key), Created: now.UTC().Truncate(time.Millisecond),
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
		Hash: h, Prefix: r.Prefix, Created: r.Created,
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
	return Principal{KeyID: r.ID, ProjectID: r.ProjectID, Role: r.Role, Dev: r.Dev, Name: r.Name}
}

func newHMACRecord(n NewHMACKey, id int64, now time.Time, s *Sealer) (hmacRecord, error) {
	sealed, err := s.Seal(n.Secret, sealKindHMAC, n.ProjectID, id)
	if err != nil {
		return hmacRecord{}, err
	}
	return hmacRecord{ID: id, ProjectID: n.ProjectID, Name: n.Name, Secret: sealed, Dev: n.IsDevelopmentKey,
		Created: now.UTC().Truncate(time.Millisecond)}, nil
}

func (r hmacRecord) hmacKey(s *Sealer) (HMACKey, error) {
	sec, err := s.Open(r.Secret, sealKindHMAC, r.ProjectID, r.ID)
	if err != nil {
		return HMACKey{}, fmt.Errorf("hmac key %d: %w", r.ID, err)
	}
	return HMACKey{ID: r.ID, ProjectID: r.ProjectID, Name: r.Name, Secret: sec, IsDevelopmentKey: r.Dev, Created: r.Created}, nil
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
