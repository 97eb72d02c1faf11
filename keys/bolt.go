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
	life   Lifecycle
}

var (
	bktAPIKeys  = []byte("apikeys")  // project(8) id(8) -> apiKeyRecord
	bktIndex    = []byte("index")    // hash(32) -> project(8) id(8)
	bktLastUsed = []byte("lastused") // project(8) id(8) -> unix ms
	bktHMAC     = []byte("hmackeys") // project(8) id(8) -> hmacRecord
	bktSettings = []byte("settings") // project(8) -> ProjectSettings
	bktAudit    = []byte("audit")    // project(8) unix ms(8) seq(8) -> AuditEvent
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
		for _, b := range [][]byte{bktAPIKeys, bktIndex, bktLastUsed, bktHMAC, bktSettings, bktAudit} {
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
	return &BoltStore{db: db, sealer: sealer, events: newBroker(), now: time.Now, life: Lifecycle{}.withDefaults()}, nil
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

// SetLifecycle implements Store.
func (s *BoltStore) SetLifecycle(l Lifecycle) { s.life = l.withDefaults() }

// lastUsed decodes a lastused value: unix ms (8 bytes) then the client address.
func lastUsed(ak *APIKey, b []byte) {
	if len(b) >= 8 {
		ak.LastUsed = time.UnixMilli(int64(binary.BigEndian.Uint64(b))).UTC()
		ak.LastUsedIP = string(b[8:])
	}
}

// ListAPIKeys implements Store. Expired keys past the retention are removed on the way.
func (s *BoltStore) ListAPIKeys(_ context.Context, projectID int64) ([]APIKey, error) {
	var out []APIKey
	var gone []int64
	now := s.now()
	err := s.db.View(func(tx *bolt.Tx) error {
		lu := tx.Bucket(bktLastUsed)
		c := tx.Bucket(bktAPIKeys).Cursor()
		prefix := pk(projectID)
		for k, v := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, v = c.Next() {
			rec, err := decode[apiKeyRecord](v)
			if err != nil {
				return err
			}
			if rec.gone(now, s.life.ExpiredRetention) {
				gone = append(gone, rec.ID)
				continue
			}
			ak, err := rec.apiKey(s.sealer)
			if err != nil {
				return err
			}
			lastUsed(&ak, lu.Get(k))
			out = append(out, ak)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	for _, id := range gone {
		// Best effort: a failure leaves the record for the next listing.
		_ = s.RevokeAPIKey(context.Background(), projectID, id)
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
		if rec.gone(s.now(), s.life.ExpiredRetention) {
			return ErrNotFound
		}
		ak, err = rec.apiKey(s.sealer)
		lastUsed(&ak, tx.Bucket(bktLastUsed).Get(pik(projectID, id)))
		return err
	})
	if err != nil {
		return APIKey{}, fmt.Errorf("get api key %d: %w", id, err)
	}
	return ak, nil
}

// RevokeAPIKey implements Store.
func (s *BoltStore) RevokeAPIKey(_ context.Context, projectID, id int64) error {
	var hs []Hash
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
		hs = rec.hashes()
		for _, h := range hs {
			if err := tx.Bucket(bktIndex).Delete(h[:]); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bktLastUsed).Delete(k); err != nil {
			return err
		}
		return ab.Delete(k)
	})
	if err != nil {
		return fmt.Errorf("revoke api key %d: %w", id, err)
	}
	for _, h := range hs {
		s.events.publish(Event{Kind: EventRevoked, ProjectID: projectID, Hash: h})
	}
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
		if err != nil {
			return err
		}
		now := s.now()
		var ok bool
		if p, ok = rec.principalFor(h, now); !ok || rec.gone(now, s.life.ExpiredRetention) {
			return ErrNotFound
		}
		return nil
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
			if old := lu.Get(k); len(old) >= 8 && int64(binary.BigEndian.Uint64(old)) >= u.At.UnixMilli() {
				continue
			}
			b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(u.IP)), uint64(u.At.UnixMilli()))
			if err := lu.Put(k, append(b, u.IP...)); err != nil {
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
	return rec.hmacKey(s.sealer, s.now())
}

// ListHMACKeys implements Store.
func (s *BoltStore) ListHMACKeys(_ context.Context, projectID int64) ([]HMACKey, error) {
	var out []HMACKey
	now := s.now()
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktHMAC).Cursor()
		prefix := pk(projectID)
		for k, v := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, v = c.Next() {
			rec, err := decode[hmacRecord](v)
			if err != nil {
				return err
			}
			hk, err := rec.hmacKey(s.sealer, now)
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
	s.events.publish(Event{Kind: EventHMACChanged, ProjectID: projectID, HMACKeyID: id})
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

// clearDevAPI takes the development flag (and kept secret) off a project's API keys but except,
// returning the hashes whose principal changed.
func clearDevAPI(ab *bolt.Bucket, projectID, except int64) ([]Hash, error) {
	var moved []Hash
	c := ab.Cursor()
	prefix := pk(projectID)
	for k, v := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, v = c.Next() {
		old, err := decode[apiKeyRecord](v)
		if err != nil {
			return nil, err
		}
		if old.Dev && old.ID != except {
			old.Dev, old.DevSecret = false, ""
			if err := ab.Put(append([]byte(nil), k...), encode(old)); err != nil {
				return nil, err
			}
			moved = append(moved, old.hashes()...)
		}
	}
	return moved, nil
}

func clearDevHMAC(hb *bolt.Bucket, projectID, except int64) error {
	c := hb.Cursor()
	prefix := pk(projectID)
	for k, v := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, v = c.Next() {
		old, err := decode[hmacRecord](v)
		if err != nil {
			return err
		}
		if old.Dev && old.ID != except {
			old.Dev = false
			if err := hb.Put(append([]byte(nil), k...), encode(old)); err != nil {
				return err
			}
		}
	}
	return nil
}

// RollAPIKey implements Store.
func (s *BoltStore) RollAPIKey(_ context.Context, projectID, id int64, newKey string, grace time.Duration) (APIKey, error) {
	if err := ValidateAPIKey(newKey); err != nil {
		return APIKey{}, err
	}
	var rec apiKeyRecord
	var dead, changed []Hash
	err := s.db.Update(func(tx *bolt.Tx) error {
		ab, ix := tx.Bucket(bktAPIKeys), tx.Bucket(bktIndex)
		k := pik(projectID, id)
		v := ab.Get(k)
		if v == nil {
			return ErrNotFound
		}
		var err error
		if rec, err = decode[apiKeyRecord](v); err != nil {
			return err
		}
		nh := HashKey(newKey)
		if ix.Get(nh[:]) != nil {
			return ErrExists
		}
		if dead, err = rec.roll(newKey, grace, s.now(), s.sealer); err != nil {
			return err
		}
		for _, h := range dead {
			if err := ix.Delete(h[:]); err != nil {
				return err
			}
		}
		changed = []Hash{nh}
		if err := ix.Put(nh[:], k); err != nil {
			return err
		}
		return ab.Put(k, encode(rec))
	})
	if err != nil {
		return APIKey{}, fmt.Errorf("roll api key %d: %w", id, err)
	}
	for _, h := range dead {
		s.events.publish(Event{Kind: EventRevoked, ProjectID: projectID, Hash: h})
	}
	for _, h := range changed {
		s.events.publish(Event{Kind: EventKeyChanged, ProjectID: projectID, Hash: h})
	}
	if oh, err := ParseHash(rec.OldHash); err == nil {
		s.events.publish(Event{Kind: EventKeyChanged, ProjectID: projectID, Hash: oh, GraceUntil: rec.OldUntil.UnixMilli()})
	}
	return rec.apiKey(s.sealer)
}

// SetDevelopmentAPIKey implements Store.
func (s *BoltStore) SetDevelopmentAPIKey(_ context.Context, projectID, id int64, key string) (APIKey, error) {
	var rec apiKeyRecord
	var moved []Hash
	err := s.db.Update(func(tx *bolt.Tx) error {
		ab := tx.Bucket(bktAPIKeys)
		k := pik(projectID, id)
		v := ab.Get(k)
		if v == nil {
			return ErrNotFound
		}
		var err error
		if rec, err = decode[apiKeyRecord](v); err != nil {
			return err
		}
		if HashKey(key).String() != rec.Hash {
			return ErrWrongKey
		}
		if moved, err = clearDevAPI(ab, projectID, id); err != nil {
			return err
		}
		if rec.Dev {
			return nil
		}
		if rec.DevSecret, err = s.sealer.Seal(key, sealKindDevKey, projectID, id); err != nil {
			return err
		}
		rec.Dev = true
		moved = append(moved, rec.hashes()...)
		return ab.Put(k, encode(rec))
	})
	if err != nil {
		return APIKey{}, fmt.Errorf("set development key %d: %w", id, err)
	}
	for _, h := range moved {
		s.events.publish(Event{Kind: EventKeyChanged, ProjectID: projectID, Hash: h})
	}
	return rec.apiKey(s.sealer)
}

// RollHMACKey implements Store.
func (s *BoltStore) RollHMACKey(_ context.Context, projectID, id int64, newSecret string, grace time.Duration) (HMACKey, error) {
	rec, err := s.changeHMAC(projectID, id, func(_ *bolt.Bucket, rec *hmacRecord) error {
		return rec.roll(newSecret, grace, s.now(), s.sealer)
	})
	if err != nil {
		return HMACKey{}, fmt.Errorf("roll hmac key %d: %w", id, err)
	}
	return rec.hmacKey(s.sealer, s.now())
}

// SetDevelopmentHMACKey implements Store.
func (s *BoltStore) SetDevelopmentHMACKey(_ context.Context, projectID, id int64) (HMACKey, error) {
	rec, err := s.changeHMAC(projectID, id, func(hb *bolt.Bucket, rec *hmacRecord) error {
		if err := clearDevHMAC(hb, projectID, id); err != nil {
			return err
		}
		rec.Dev = true
		return nil
	})
	if err != nil {
		return HMACKey{}, fmt.Errorf("set development hmac key %d: %w", id, err)
	}
	return rec.hmacKey(s.sealer, s.now())
}

// changeHMAC reads one HMAC key's record, lets change edit it (and the bucket) in the same
// transaction, writes it back and announces the change: the read-modify-write every edit of an
// existing HMAC key shares.
func (s *BoltStore) changeHMAC(projectID, id int64, change func(hb *bolt.Bucket, rec *hmacRecord) error) (hmacRecord, error) {
	var rec hmacRecord
	err := s.db.Update(func(tx *bolt.Tx) error {
		hb := tx.Bucket(bktHMAC)
		k := pik(projectID, id)
		v := hb.Get(k)
		if v == nil {
			return ErrNotFound
		}
		var err error
		if rec, err = decode[hmacRecord](v); err != nil {
			return err
		}
		if err := change(hb, &rec); err != nil {
			return err
		}
		return hb.Put(k, encode(rec))
	})
	if err != nil {
		return hmacRecord{}, err
	}
	s.events.publish(Event{Kind: EventHMACChanged, ProjectID: projectID})
	return rec, nil
}

func auditKey(projectID int64, ms, seq uint64) []byte {
	b := make([]byte, 0, 24)
	b = binary.BigEndian.AppendUint64(b, uint64(projectID))
	b = binary.BigEndian.AppendUint64(b, ms)
	return binary.BigEndian.AppendUint64(b, seq)
}

// AppendAudit implements Store.
func (s *BoltStore) AppendAudit(_ context.Context, projectID int64, e AuditEvent) error {
	now := s.now()
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC().Truncate(time.Millisecond)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktAudit)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		// Retention: the project's events are in time order, so the old ones are a prefix.
		cutoff := auditKey(projectID, uint64(now.Add(-s.life.AuditRetention).UnixMilli()), 0)
		c := b.Cursor()
		prefix := pk(projectID)
		for k, _ := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix) && string(k) < string(cutoff); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return b.Put(auditKey(projectID, uint64(e.Time.UnixMilli()), seq), encode(e))
	})
	if err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	return nil
}

// ListAudit implements Store.
func (s *BoltStore) ListAudit(_ context.Context, projectID int64, limit int, before string) ([]AuditEvent, string, error) {
	start := auditKey(projectID+1, 0, 0) // just past the project's last event
	if before != "" {
		ms, seq, err := parseCursor(before)
		if err != nil {
			return nil, "", err
		}
		start = auditKey(projectID, ms, seq)
	}
	if limit <= 0 {
		limit = 50
	}
	var out []AuditEvent
	next := ""
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktAudit).Cursor()
		k, _ := c.Seek(start)
		var v []byte
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		prefix := pk(projectID)
		cutoff := uint64(s.now().Add(-s.life.AuditRetention).UnixMilli())
		for ; k != nil && string(k[:8]) == string(prefix) && binary.BigEndian.Uint64(k[8:16]) >= cutoff; k, v = c.Prev() {
			if len(out) == limit {
				next = out[len(out)-1].Cursor
				return nil
			}
			e, err := decode[AuditEvent](v)
			if err != nil {
				return err
			}
			e.Cursor = fmt.Sprintf("%d-%d", binary.BigEndian.Uint64(k[8:16]), binary.BigEndian.Uint64(k[16:24]))
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	return out, next, nil
}
