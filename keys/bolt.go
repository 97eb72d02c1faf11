package keys

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// BoltStore is the embedded default: one bbolt file under the data directory. bbolt admits one
// process at a time, so while a server runs, keys are managed through its HTTP API.
type BoltStore struct {
	db     *bolt.DB
	sealer *Sealer
	events *broker
	now    func() time.Time
}

var (
	bktAPIKeys  = []byte("apikeys")  // project(8) id(8) -> apiKeyRecord
	bktIndex    = []byte("index")    // hash(32) -> project(8) id(8)
	bktLastUsed = []byte("lastused") // project(8) id(8) -> unix ms
	bktHMAC     = []byte("hmackeys") // project(8) id(8) -> hmacRecord
	bktSettings = []byte("settings") // project(8) -> ProjectSettings
)

// DataFileName is the bbolt file inside the data directory.
const DataFileName = "keygate.db"

// OpenBolt opens (creating if needed) dir/keygate.db. If another process holds the file it fails
// within lockWait with ErrLocked instead of hanging.
func OpenBolt(dir string, sealer *Sealer, lockWait time.Duration) (*BoltStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open data dir: %w", err)
	}
	path := filepath.Join(dir, DataFileName)
	if lockWait <= 0 {
		lockWait = 200 * time.Millisecond
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is held by another process (is `keygate serve` running? manage keys through its HTTP API, or stop it)", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktAPIKeys, bktIndex, bktLastUsed, bktHMAC, bktSettings} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return &BoltStore{db: db, sealer: sealer, events: newBroker(), now: time.Now}, nil
}

var _ Store = (*BoltStore)(nil)

func pk(projectID int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(projectID))
	return b[:]
}

func pik(projectID, id int64) []byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(projectID))
	binary.BigEndian.PutUint64(b[8:], uint64(id))
	return b[:]
}

// CreateAPIKey implements Store.
func (s *BoltStore) CreateAPIKey(_ context.Context, n NewAPIKey) (APIKey, error) {
	if err := n.Validate(); err != nil {
		return APIKey{}, err
	}
	var rec apiKeyRecord
	var moved []Hash
	err := s.db.Update(func(tx *bolt.Tx) error {
		ab, ix := tx.Bucket(bktAPIKeys), tx.Bucket(bktIndex)
		h := HashKey(n.Key)
		if ix.Get(h[:]) != nil {
			return ErrExists
		}
		seq, err := ab.NextSequence()
		if err != nil {
			return err
		}
		rec, err = newAPIKeyRecord(n, int64(seq), s.now(), s.sealer)
		if err != nil {
			return err
		}
		if n.IsDevelopmentKey {
			c := ab.Cursor()
			prefix := pk(n.ProjectID)
			for k, v := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, v = c.Next() {
				old, err := decode[apiKeyRecord](v)
				if err != nil {
					return err
				}
				if old.Dev {
					old.Dev, old.DevSecret = false, ""
					if err := ab.Put(append([]byte(nil), k...), encode(old)); err != nil {
						return err
					}
					if oh, err := ParseHash(old.Hash); err == nil {
						moved = append(moved, oh)
					}
				}
			}
		}
		if err := ab.Put(pik(n.ProjectID, rec.ID), encode(rec)); err != nil {
			return err
		}
		return ix.Put(h[:], pik(n.ProjectID, rec.ID))
	})
	if err != nil {
		return APIKey{}, fmt.Errorf("create api key: %w", err)
	}
	// The new key too: a replica may hold it as a definite miss (negative cache) from before.
	for _, h := range append(moved, HashKey(n.Key)) {
		s.events.publish(Event{Kind: EventKeyChanged, ProjectID: n.ProjectID, Hash: h})
	}
	return rec.apiKey(s.sealer)
}

// ListAPIKeys implements Store.
func (s *BoltStore) ListAPIKeys(_ context.Context, projectID int64) ([]APIKey, error) {
	var out []APIKey
	err := s.db.View(func(tx *bolt.Tx) error {
		lu := tx.Bucket(bktLastUsed)
		c := tx.Bucket(bktAPIKeys).Cursor()
		prefix := pk(projectID)
		for k, v := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, v = c.Next() {
			rec, err := decode[apiKeyRecord](v)
			if err != nil {
				return err
			}
			ak, err := rec.apiKey(s.sealer)
			if err != nil {
				return err
			}
			if b := lu.Get(k); len(b) == 8 {
				ak.LastUsed = time.UnixMilli(int64(binary.BigEndian.Uint64(b))).UTC()
			}
			out = append(out, ak)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return out, nil
}

// GetAPIKey implements Store.
func (s *BoltStore) GetAPIKey(_ context.Context, projectID, id int64) (APIKey, error) {
	var ak APIKey
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktAPIKeys).Get(pik(projectID, id))
		if v == nil {
			return ErrNotFound
		}
		rec, err := decode[apiKeyRecord](v)
		if err != nil {
			return err
		}
		ak, err = rec.apiKey(s.sealer)
		if b := tx.Bucket(bktLastUsed).Get(pik(projectID, id)); len(b) == 8 {
			ak.LastUsed = time.UnixMilli(int64(binary.BigEndian.Uint64(b))).UTC()
		}
		return err
	})
	if err != nil {
		return APIKey{}, fmt.Errorf("get api key %d: %w", id, err)
	}
	return ak, nil
}

// RevokeAPIKey implements Store.
func (s *BoltStore) RevokeAPIKey(_ context.Context, projectID, id int64) error {
	var h Hash
	err := s.db.Update(func(tx *bolt.Tx) error {
		ab := tx.Bucket(bktAPIKeys)
		k := pik(projectID, id)
		v := ab.Get(k)
		if v == nil {
			return ErrNotFound
		}
		rec, err := decode[apiKeyRecord](v)
		if err != nil {
			return err
		}
		if h, err = ParseHash(rec.Hash); err != nil {
			return err
		}
		if err := tx.Bucket(bktIndex).Delete(h[:]); err != nil {
			return err
		}
		if err := tx.Bucket(bktLastUsed).Delete(k); err != nil {
			return err
		}
		return ab.Delete(k)
	})
	if err != nil {
		return fmt.Errorf("revoke api key %d: %w", id, err)
	}
	s.events.publish(Event{Kind: EventRevoked, ProjectID: projectID, Hash: h})
	return nil
}

// LookupAPIKey implements Store.
func (s *BoltStore) LookupAPIKey(_ context.Context, h Hash) (Principal, error) {
	var p Principal
	err := s.db.View(func(tx *bolt.Tx) error {
		ref := tx.Bucket(bktIndex).Get(h[:])
		if ref == nil {
			return ErrNotFound
		}
		v := tx.Bucket(bktAPIKeys).Get(ref)
		if v == nil {
			return ErrNotFound
		}
		rec, err := decode[apiKeyRecord](v)
		p = rec.principal()
		return err
	})
	if err != nil {
		return Principal{}, fmt.Errorf("lookup api key: %w", err)
	}
	return p, nil
}

// TouchAPIKeys implements Store. Keys revoked since they were used are skipped.
func (s *BoltStore) TouchAPIKeys(_ context.Context, used []Usage) error {
	if len(used) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		ab, lu := tx.Bucket(bktAPIKeys), tx.Bucket(bktLastUsed)
		for _, u := range used {
			k := pik(u.ProjectID, u.KeyID)
			if ab.Get(k) == nil {
				continue
			}
			if old := lu.Get(k); len(old) == 8 && int64(binary.BigEndian.Uint64(old)) >= u.At.UnixMilli() {
				continue
			}
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(u.At.UnixMilli()))
			if err := lu.Put(k, b[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record last use: %w", err)
	}
	return nil
}

// CreateHMACKey implements Store.
func (s *BoltStore) CreateHMACKey(_ context.Context, n NewHMACKey) (HMACKey, error) {
	if err := n.Validate(); err != nil {
		return HMACKey{}, err
	}
	var rec hmacRecord
	err := s.db.Update(func(tx *bolt.Tx) error {
		hb := tx.Bucket(bktHMAC)
		seq, err := hb.NextSequence()
		if err != nil {
			return err
		}
		if rec, err = newHMACRecord(n, int64(seq), s.now(), s.sealer); err != nil {
			return err
		}
		if n.IsDevelopmentKey {
			c := hb.Cursor()
			prefix := pk(n.ProjectID)
			for k, v := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, v = c.Next() {
				old, err := decode[hmacRecord](v)
				if err != nil {
					return err
				}
				if old.Dev {
					old.Dev = false
					if err := hb.Put(append([]byte(nil), k...), encode(old)); err != nil {
						return err
					}
				}
			}
		}
		return hb.Put(pik(n.ProjectID, rec.ID), encode(rec))
	})
	if err != nil {
		return HMACKey{}, fmt.Errorf("create hmac key: %w", err)
	}
	s.events.publish(Event{Kind: EventHMACChanged, ProjectID: n.ProjectID})
	return rec.hmacKey(s.sealer)
}

// ListHMACKeys implements Store.
func (s *BoltStore) ListHMACKeys(_ context.Context, projectID int64) ([]HMACKey, error) {
	var out []HMACKey
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktHMAC).Cursor()
		prefix := pk(projectID)
		for k, v := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, v = c.Next() {
			rec, err := decode[hmacRecord](v)
			if err != nil {
				return err
			}
			hk, err := rec.hmacKey(s.sealer)
			if err != nil {
				return err
			}
			out = append(out, hk)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list hmac keys: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// DeleteHMACKey implements Store.
func (s *BoltStore) DeleteHMACKey(_ context.Context, projectID, id int64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		hb := tx.Bucket(bktHMAC)
		k := pik(projectID, id)
		if hb.Get(k) == nil {
			return ErrNotFound
		}
		return hb.Delete(k)
	})
	if err != nil {
		return fmt.Errorf("delete hmac key %d: %w", id, err)
	}
	s.events.publish(Event{Kind: EventHMACChanged, ProjectID: projectID})
	return nil
}

// Settings implements Store.
func (s *BoltStore) Settings(_ context.Context, projectID int64) (ProjectSettings, error) {
	var ps ProjectSettings
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktSettings).Get(pk(projectID))
		if v == nil {
			return nil
		}
		var err error
		ps, err = decode[ProjectSettings](v)
		return err
	})
	if err != nil {
		return ProjectSettings{}, fmt.Errorf("project settings: %w", err)
	}
	return ps, nil
}

// UpdateSettings implements Store.
func (s *BoltStore) UpdateSettings(_ context.Context, projectID int64, update func(*ProjectSettings) error) (ProjectSettings, error) {
	var ps ProjectSettings
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktSettings)
		if v := b.Get(pk(projectID)); v != nil {
			var err error
			if ps, err = decode[ProjectSettings](v); err != nil {
				return err
			}
		}
		if err := update(&ps); err != nil {
			return err
		}
		return b.Put(pk(projectID), encode(ps))
	})
	if err != nil {
		return ProjectSettings{}, fmt.Errorf("update project settings: %w", err)
	}
	s.events.publish(Event{Kind: EventSettingsChanged, ProjectID: projectID})
	return ps, nil
}

// Subscribe implements Store.
func (s *BoltStore) Subscribe(ctx context.Context) <-chan Event { return s.events.subscribe(ctx) }

// Check implements Store: the file is open for as long as the store is.
func (s *BoltStore) Check(context.Context) error { return nil }

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }
