package keys

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps keys in Redis so every replica shares them. Layout (one project's records share
// the hash tag {p<id>}, so Redis Cluster keeps them in one slot and transactions over them work):
//
//	kg:{p<pid>}:apikeys   HASH  id -> apiKeyRecord (JSON)
//	kg:{p<pid>}:lastused  HASH  id -> "unix ms|client address"
//	kg:{p<pid>}:hmackeys  HASH  id -> hmacRecord (JSON, secret sealed)
//	kg:{p<pid>}:settings  STRING ProjectSettings (JSON)
//	kg:{p<pid>}:audit     STREAM audit events (field "e": AuditEvent JSON), trimmed by MINID
//	kg:{p<pid>}:<scope>:<id>  rate-limit buckets (LimitKey)
//	kg:{p<pid>}:seen:<sig>   replay marks (seenKey)
//	kg:apikey:<sha256>    STRING the principal: what a lookup reads, in one GET. A rolled secret's
//	                      record carries its grace deadline and has Redis expire it then (PXAT);
//	                      an expiring key's expires with it once its listing retention is over.
//	kg:seq                INCR  id sequence
//
// Changes are announced on the pub/sub channel kg:events.
type RedisStore struct {
	rdb    redis.UniversalClient
	sealer *Sealer
	now    func() time.Time
	life   Lifecycle
}

// EventsChannel is the pub/sub channel on which changes are announced.
const EventsChannel = "kg:events"

var _ Store = (*RedisStore)(nil)

// NewRedisStore uses an existing client (standalone, Sentinel or Cluster).
func NewRedisStore(rdb redis.UniversalClient, sealer *Sealer) *RedisStore {
	return &RedisStore{rdb: rdb, sealer: sealer, now: time.Now, life: Lifecycle{}.withDefaults()}
}

// Client is the underlying Redis client, shared with the rate limiter and the replay guard.
func (s *RedisStore) Client() redis.UniversalClient { return s.rdb }

// NewRedisClient builds a client from KEYGATE_REDIS_URL:
//
//	redis://[user:pass@]host:port[/db][?opts]          standalone (rediss:// for TLS)
//	redis+sentinel://[user:pass@]s1:26379?master_name=mymaster&addr=s2:26379[&opts]   Sentinel
//	redis+cluster://[user:pass@]n1:6379?addr=n2:6379&addr=n3:6379[&opts]             Cluster
//
// (rediss+sentinel:// and rediss+cluster:// use TLS.) Options are go-redis's URL query options, e.g.
// dial_timeout=2s, read_timeout=1s, pool_size=50. Commands honour their context's deadline
// (go-redis's ContextTimeoutEnabled): the readiness probe's 500 ms and a lookup's 2 s bound a
// hung Redis, instead of go-redis's read timeout of several seconds.
func NewRedisClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: invalid URL")
	}
	scheme, mode, _ := strings.Cut(u.Scheme, "+")
	if scheme != "redis" && scheme != "rediss" {
		return nil, fmt.Errorf("redis url: scheme must be redis, rediss, redis+sentinel or redis+cluster, got %q", u.Scheme)
	}
	u.Scheme = scheme
	switch mode {
	case "":
		o, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", redactErr(err))
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClient(o), nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis sentinel url: %w", redactErr(err))
		}
		if o.MasterName == "" {
			return nil, fmt.Errorf("redis sentinel url: master_name=... is required")
		}
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), nil
	case "cluster":
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis cluster url: %w", redactErr(err))
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), nil
	}
	return nil, fmt.Errorf("redis url: unknown mode %q (want sentinel or cluster)", mode)
}

// redactErr drops error texts that could quote the URL (and so a password).
func redactErr(err error) error {
	if strings.Contains(err.Error(), "@") {
		return errors.New("invalid URL")
	}
	return err
}

// LimitKey is where a rate limiter keeps the bucket of one scope (key, project, device, …) of
// project pid: in the project's hash slot, beside its keys, so the layout is spelled only here.
func LimitKey(pid int64, scope, id string) string {
	return "kg:{p" + strconv.FormatInt(pid, 10) + "}:" + scope + ":" + id // one concatenation: the hot path
}

func projKey(pid int64, what string) string {
	return "kg:{p" + strconv.FormatInt(pid, 10) + "}:" + what
}

func indexKey(h Hash) string { return "kg:apikey:" + h.String() }

// indexRecord is what a lookup reads: a principal, nothing secret.
type indexRecord struct {
	ID         int64  `json:"id"`
	ProjectID  int64  `json:"project"`
	Name       string `json:"name"`
	Role       Role   `json:"role"`
	Dev        bool   `json:"dev,omitempty"`
	Expires    int64  `json:"exp,omitempty"`
	GraceUntil int64  `json:"grace,omitempty"`
}

func indexOf(r apiKeyRecord) []byte {
	return encode(indexRecord{ID: r.ID, ProjectID: r.ProjectID, Name: r.Name, Role: r.Role, Dev: r.Dev, Expires: unixMilli(r.Expires)})
}

// indexOfOld is the lookup record of the secret a roll replaced (it carries the grace deadline).
func indexOfOld(r apiKeyRecord) []byte {
	return encode(indexRecord{ID: r.ID, ProjectID: r.ProjectID, Name: r.Name, Role: r.Role, Dev: r.Dev, Expires: unixMilli(r.Expires),
		GraceUntil: unixMilli(r.OldUntil)})
}

// indexDeadline is when Redis may drop the current secret's lookup record: never for a key without
// expiry, else once the expired key's retention is over.
func (s *RedisStore) indexDeadline(r apiKeyRecord) time.Time {
	if r.Expires.IsZero() {
		return time.Time{}
	}
	return r.Expires.Add(s.life.ExpiredRetention)
}

// SetLifecycle implements Store.
func (s *RedisStore) SetLifecycle(l Lifecycle) { s.life = l.withDefaults() }

// refreshIndex rewrites the lookup records of a record whose principal changed, only where they
// still exist (so a concurrent revoke is never undone) and keeping their expiry.
func (s *RedisStore) refreshIndex(ctx context.Context, r apiKeyRecord) ([]Hash, error) {
	var out []Hash
	if h, err := ParseHash(r.Hash); err == nil {
		if err := s.rdb.SetArgs(ctx, indexKey(h), indexOf(r), redis.SetArgs{Mode: "XX", KeepTTL: true}).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		out = append(out, h)
	}
	if h, err := ParseHash(r.OldHash); err == nil {
		if err := s.rdb.SetArgs(ctx, indexKey(h), indexOfOld(r), redis.SetArgs{Mode: "XX", KeepTTL: true}).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func (s *RedisStore) publish(ctx context.Context, e Event) error {
	msg := ""
	pid := strconv.FormatInt(e.ProjectID, 10)
	switch e.Kind {
	case EventRevoked:
		msg = "r:" + pid + ":" + e.Hash.String()
	case EventKeyChanged:
		msg = "k:" + pid + ":" + e.Hash.String()
		if e.GraceUntil != 0 {
			// "g" carries the grace's end; replicas that do not know "g" still get the "k" above.
			if err := s.rdb.Publish(ctx, EventsChannel, msg).Err(); err != nil {
				return fmt.Errorf("announce change: %w", err)
			}
			msg = "g:" + pid + ":" + e.Hash.String() + ":" + strconv.FormatInt(e.GraceUntil, 10)
		}
	case EventHMACChanged:
		msg = "h:" + pid
		if e.HMACKeyID != 0 {
			msg += ":" + strconv.FormatInt(e.HMACKeyID, 10)
		}
	case EventSettingsChanged:
		msg = "s:" + pid
	default:
		return nil
	}
	if err := s.rdb.Publish(ctx, EventsChannel, msg).Err(); err != nil {
		return fmt.Errorf("announce change: %w", err)
	}
	return nil
}

func parseEvent(msg string) (Event, bool) {
	parts := strings.Split(msg, ":")
	if len(parts) < 2 {
		return Event{}, false
	}
	pid, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return Event{}, false
	}
	e := Event{ProjectID: pid}
	switch parts[0] {
	case "g":
		if len(parts) != 4 {
			return Event{}, false
		}
		h, err := ParseHash(parts[2])
		until, uerr := strconv.ParseInt(parts[3], 10, 64)
		if err != nil || uerr != nil || until <= 0 {
			return Event{}, false
		}
		e.Kind, e.Hash, e.GraceUntil = EventKeyChanged, h, until
	case "r", "k":
		if len(parts) != 3 {
			return Event{}, false
		}
		h, err := ParseHash(parts[2])
		if err != nil {
			return Event{}, false
		}
		e.Hash = h
		e.Kind = EventRevoked
		if parts[0] == "k" {
			e.Kind = EventKeyChanged
		}
	case "h":
		e.Kind = EventHMACChanged
		if len(parts) == 3 {
			id, err := strconv.ParseInt(parts[2], 10, 64)
			if err != nil || id <= 0 {
				return Event{}, false
			}
			e.HMACKeyID = id
		}
	case "s":
		e.Kind = EventSettingsChanged
	default:
		return Event{}, false
	}
	return e, true
}

// txRetries bounds optimistic-transaction retries under contention.
const txRetries = 50

// watchTx runs fn in a WATCH/MULTI/EXEC transaction over keys of one project, retrying on conflict.
func (s *RedisStore) watchTx(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	for i := 0; i < txRetries; i++ {
		err := s.rdb.Watch(ctx, fn, keys...)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return fmt.Errorf("transaction: too much contention")
}

// CreateAPIKey implements Store.
func (s *RedisStore) CreateAPIKey(ctx context.Context, n NewAPIKey) (APIKey, error) {
	if err := n.Validate(); err != nil {
		return APIKey{}, err
	}
	id, err := s.rdb.Incr(ctx, "kg:seq").Result()
	if err != nil {
		return APIKey{}, fmt.Errorf("create api key: %w", err)
	}
	rec, err := newAPIKeyRecord(n, id, s.now(), s.sealer)
	if err != nil {
		return APIKey{}, fmt.Errorf("create api key: %w", err)
	}
	h := HashKey(n.Key)
	var ttl time.Duration
	if d := s.indexDeadline(rec); !d.IsZero() {
		ttl = d.Sub(s.now())
	}
	// Reserve the hash first: it is the uniqueness check, and a key must never have two records.
	ok, err := s.rdb.SetNX(ctx, indexKey(h), indexOf(rec), ttl).Result()
	if err != nil {
		return APIKey{}, fmt.Errorf("create api key: %w", err)
	}
	if !ok {
		return APIKey{}, fmt.Errorf("create api key: %w", ErrExists)
	}
	hashKey := projKey(n.ProjectID, "apikeys")
	var moved []apiKeyRecord
	err = s.watchTx(ctx, func(tx *redis.Tx) error {
		moved = moved[:0]
		var updates []any
		if n.IsDevelopmentKey {
			all, err := tx.HGetAll(ctx, hashKey).Result()
			if err != nil {
				return err
			}
			for f, v := range all {
				old, err := decode[apiKeyRecord]([]byte(v))
				if err != nil {
					return err
				}
				if old.Dev {
					old.Dev, old.DevSecret = false, ""
					moved = append(moved, old)
					updates = append(updates, f, encode(old))
				}
			}
		}
		updates = append(updates, strconv.FormatInt(id, 10), encode(rec))
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, hashKey, updates...)
			return nil
		})
		return err
	}, hashKey)
	if err != nil {
		s.rdb.Del(context.WithoutCancel(ctx), indexKey(h))
		return APIKey{}, fmt.Errorf("create api key: %w", err)
	}
	for _, old := range moved {
		hs, err := s.refreshIndex(ctx, old)
		if err != nil {
			return APIKey{}, fmt.Errorf("create api key: move development flag: %w", err)
		}
		for _, oh := range hs {
			_ = s.publish(ctx, Event{Kind: EventKeyChanged, ProjectID: n.ProjectID, Hash: oh})
		}
	}
	// The new key too: a replica may hold it as a definite miss (negative cache) from before.
	_ = s.publish(ctx, Event{Kind: EventKeyChanged, ProjectID: n.ProjectID, Hash: h})
	return rec.apiKey(s.sealer)
}

func (s *RedisStore) lastUsed(ctx context.Context, pid int64) (map[string]string, error) {
	m, err := s.rdb.HGetAll(ctx, projKey(pid, "lastused")).Result()
	if err != nil {
		return nil, err
	}
	return m, nil
}

func withLastUsed(ak *APIKey, lu map[string]string) {
	if v, ok := lu[strconv.FormatInt(ak.ID, 10)]; ok {
		msStr, ip, _ := strings.Cut(v, "|")
		if ms, err := strconv.ParseInt(msStr, 10, 64); err == nil {
			ak.LastUsed, ak.LastUsedIP = time.UnixMilli(ms).UTC(), ip
		}
	}
}

// ListAPIKeys implements Store.
func (s *RedisStore) ListAPIKeys(ctx context.Context, projectID int64) ([]APIKey, error) {
	all, err := s.rdb.HGetAll(ctx, projKey(projectID, "apikeys")).Result()
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	lu, err := s.lastUsed(ctx, projectID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	out := make([]APIKey, 0, len(all))
	now := s.now()
	for _, v := range all {
		rec, err := decode[apiKeyRecord]([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		if rec.gone(now, s.life.ExpiredRetention) {
			// Past its retention: removed on the way (best effort; the next listing retries).
			_ = s.RevokeAPIKey(ctx, projectID, rec.ID)
			continue
		}
		ak, err := rec.apiKey(s.sealer)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		withLastUsed(&ak, lu)
		out = append(out, ak)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// GetAPIKey implements Store.
func (s *RedisStore) GetAPIKey(ctx context.Context, projectID, id int64) (APIKey, error) {
	v, err := s.rdb.HGet(ctx, projKey(projectID, "apikeys"), strconv.FormatInt(id, 10)).Result()
	if errors.Is(err, redis.Nil) {
		return APIKey{}, fmt.Errorf("get api key %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("get api key %d: %w", id, err)
	}
	rec, err := decode[apiKeyRecord]([]byte(v))
	if err != nil {
		return APIKey{}, fmt.Errorf("get api key %d: %w", id, err)
	}
	if rec.gone(s.now(), s.life.ExpiredRetention) {
		return APIKey{}, fmt.Errorf("get api key %d: %w", id, ErrNotFound)
	}
	ak, err := rec.apiKey(s.sealer)
	if err != nil {
		return APIKey{}, err
	}
	if lu, err := s.lastUsed(ctx, projectID); err == nil {
		withLastUsed(&ak, lu)
	}
	return ak, nil
}

// RevokeAPIKey implements Store. The lookup record goes first, so the key stops resolving before it
// stops being listed, never the other way round.
func (s *RedisStore) RevokeAPIKey(ctx context.Context, projectID, id int64) error {
	field := strconv.FormatInt(id, 10)
	hashKey := projKey(projectID, "apikeys")
	v, err := s.rdb.HGet(ctx, hashKey, field).Result()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("revoke api key %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("revoke api key %d: %w", id, err)
	}
	rec, err := decode[apiKeyRecord]([]byte(v))
	if err != nil {
		return fmt.Errorf("revoke api key %d: %w", id, err)
	}
	hs := rec.hashes()
	for _, h := range hs {
		if err := s.rdb.Del(ctx, indexKey(h)).Err(); err != nil {
			return fmt.Errorf("revoke api key %d: %w", id, err)
		}
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, hashKey, field)
		p.HDel(ctx, projKey(projectID, "lastused"), field)
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke api key %d: %w", id, err)
	}
	for _, h := range hs {
		if err := s.publish(ctx, Event{Kind: EventRevoked, ProjectID: projectID, Hash: h}); err != nil {
			return err
		}
	}
	return nil
}

// LookupAPIKey implements Store: one GET.
func (s *RedisStore) LookupAPIKey(ctx context.Context, h Hash) (Principal, error) {
	b, err := s.rdb.Get(ctx, indexKey(h)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Principal{}, fmt.Errorf("lookup api key: %w", ErrNotFound)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("lookup api key: %w", err)
	}
	r, err := decode[indexRecord](b)
	if err != nil {
		return Principal{}, fmt.Errorf("lookup api key: %w", err)
	}
	if r.GraceUntil != 0 && s.now().UnixMilli() >= r.GraceUntil {
		// Redis drops it at the deadline itself (PXAT); this covers the last moments of clock skew.
		return Principal{}, fmt.Errorf("lookup api key: %w", ErrNotFound)
	}
	return Principal{KeyID: r.ID, ProjectID: r.ProjectID, Role: r.Role, Dev: r.Dev, Name: r.Name, Expires: r.Expires, GraceUntil: r.GraceUntil}, nil
}

// TouchAPIKeys implements Store: one pipeline for the whole batch.
func (s *RedisStore) TouchAPIKeys(ctx context.Context, used []Usage) error {
	if len(used) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, u := range used {
			p.HSet(ctx, projKey(u.ProjectID, "lastused"), strconv.FormatInt(u.KeyID, 10), strconv.FormatInt(u.At.UnixMilli(), 10)+"|"+u.IP)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record last use: %w", err)
	}
	return nil
}

// CreateHMACKey implements Store.
func (s *RedisStore) CreateHMACKey(ctx context.Context, n NewHMACKey) (HMACKey, error) {
	if err := n.Validate(); err != nil {
		return HMACKey{}, err
	}
	id, err := s.rdb.Incr(ctx, "kg:seq").Result()
	if err != nil {
		return HMACKey{}, fmt.Errorf("create hmac key: %w", err)
	}
	rec, err := newHMACRecord(n, id, s.now(), s.sealer)
	if err != nil {
		return HMACKey{}, fmt.Errorf("create hmac key: %w", err)
	}
	hashKey := projKey(n.ProjectID, "hmackeys")
	err = s.watchTx(ctx, func(tx *redis.Tx) error {
		var updates []any
		if n.IsDevelopmentKey {
			all, err := tx.HGetAll(ctx, hashKey).Result()
			if err != nil {
				return err
			}
			for f, v := range all {
				old, err := decode[hmacRecord]([]byte(v))
				if err != nil {
					return err
				}
				if old.Dev {
					old.Dev = false
					updates = append(updates, f, encode(old))
				}
			}
		}
		updates = append(updates, strconv.FormatInt(id, 10), encode(rec))
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, hashKey, updates...)
			return nil
		})
		return err
	}, hashKey)
	if err != nil {
		return HMACKey{}, fmt.Errorf("create hmac key: %w", err)
	}
	_ = s.publish(ctx, Event{Kind: EventHMACChanged, ProjectID: n.ProjectID})
	return rec.hmacKey(s.sealer, s.now())
}

// ListHMACKeys implements Store.
func (s *RedisStore) ListHMACKeys(ctx context.Context, projectID int64) ([]HMACKey, error) {
	all, err := s.rdb.HGetAll(ctx, projKey(projectID, "hmackeys")).Result()
	if err != nil {
		return nil, fmt.Errorf("list hmac keys: %w", err)
	}
	out := make([]HMACKey, 0, len(all))
	now := s.now()
	for _, v := range all {
		rec, err := decode[hmacRecord]([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("list hmac keys: %w", err)
		}
		hk, err := rec.hmacKey(s.sealer, now)
		if err != nil {
			return nil, fmt.Errorf("list hmac keys: %w", err)
		}
		out = append(out, hk)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// DeleteHMACKey implements Store.
func (s *RedisStore) DeleteHMACKey(ctx context.Context, projectID, id int64) error {
	n, err := s.rdb.HDel(ctx, projKey(projectID, "hmackeys"), strconv.FormatInt(id, 10)).Result()
	if err != nil {
		return fmt.Errorf("delete hmac key %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("delete hmac key %d: %w", id, ErrNotFound)
	}
	return s.publish(ctx, Event{Kind: EventHMACChanged, ProjectID: projectID, HMACKeyID: id})
}

// Settings implements Store.
func (s *RedisStore) Settings(ctx context.Context, projectID int64) (ProjectSettings, error) {
	b, err := s.rdb.Get(ctx, projKey(projectID, "settings")).Bytes()
	if errors.Is(err, redis.Nil) {
		return ProjectSettings{}, nil
	}
	if err != nil {
		return ProjectSettings{}, fmt.Errorf("project settings: %w", err)
	}
	return decode[ProjectSettings](b)
}

// UpdateSettings implements Store.
func (s *RedisStore) UpdateSettings(ctx context.Context, projectID int64, update func(*ProjectSettings) error) (ProjectSettings, error) {
	key := projKey(projectID, "settings")
	var ps ProjectSettings
	err := s.watchTx(ctx, func(tx *redis.Tx) error {
		ps = ProjectSettings{}
		b, err := tx.Get(ctx, key).Bytes()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if err == nil {
			if ps, err = decode[ProjectSettings](b); err != nil {
				return err
			}
		}
		if err := update(&ps); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, encode(ps), 0)
			return nil
		})
		return err
	}, key)
	if err != nil {
		return ProjectSettings{}, fmt.Errorf("update project settings: %w", err)
	}
	_ = s.publish(ctx, Event{Kind: EventSettingsChanged, ProjectID: projectID})
	return ps, nil
}

// Subscribe implements Store. Every (re)subscription — at start and after go-redis reconnects a
// dropped connection — is delivered as EventResync once Redis has confirmed it, so the first event
// also means "from here on nothing is missed".
func (s *RedisStore) Subscribe(ctx context.Context) <-chan Event {
	out := make(chan Event, 256)
	go func() {
		defer close(out)
		ps := s.rdb.Subscribe(ctx, EventsChannel)
		// Receive blocks in a socket read that does not watch ctx: closing the subscription is what
		// ends it, so cancelling ctx stops the subscriber at once even while Redis is unreachable.
		stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
		defer stop()
		defer ps.Close()
		send := func(e Event) bool {
			select {
			case out <- e:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			msg, err := ps.Receive(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				// The connection broke: go-redis reconnects and re-subscribes on the next Receive.
				// Back off briefly so a Redis outage is not a busy loop.
				select {
				case <-time.After(100 * time.Millisecond):
				case <-ctx.Done():
					return
				}
				continue
			}
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					if !send(Event{Kind: EventResync}) {
						return
					}
				}
			case *redis.Message:
				if e, ok := parseEvent(m.Payload); ok {
					if !send(e) {
						return
					}
				}
			}
		}
	}()
	return out
}

// Check implements Store.
func (s *RedisStore) Check(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Close implements Store.
func (s *RedisStore) Close() error { return s.rdb.Close() }

// RollAPIKey implements Store. The new secret's lookup record is reserved first (the uniqueness
// check, as in CreateAPIKey), the record changes in one transaction, then the lookup records follow:
// the old secret's gets the grace deadline and Redis drops it then (PXAT), so every replica that
// asks after the grace gets "not found" whatever its own clock says.
func (s *RedisStore) RollAPIKey(ctx context.Context, projectID, id int64, newKey string, grace time.Duration) (APIKey, error) {
	if err := ValidateAPIKey(newKey); err != nil {
		return APIKey{}, err
	}
	field := strconv.FormatInt(id, 10)
	hashKey := projKey(projectID, "apikeys")
	v, err := s.rdb.HGet(ctx, hashKey, field).Result()
	if errors.Is(err, redis.Nil) {
		return APIKey{}, fmt.Errorf("roll api key %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("roll api key %d: %w", id, err)
	}
	cur, err := decode[apiKeyRecord]([]byte(v))
	if err != nil {
		return APIKey{}, fmt.Errorf("roll api key %d: %w", id, err)
	}
	nh := HashKey(newKey)
	ok, err := s.rdb.SetNX(ctx, indexKey(nh), indexOf(cur), 0).Result()
	if err != nil {
		return APIKey{}, fmt.Errorf("roll api key %d: %w", id, err)
	}
	if !ok {
		return APIKey{}, fmt.Errorf("roll api key %d: %w", id, ErrExists)
	}
	var rec apiKeyRecord
	var dead []Hash
	err = s.watchTx(ctx, func(tx *redis.Tx) error {
		v, err := tx.HGet(ctx, hashKey, field).Result()
		if errors.Is(err, redis.Nil) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if rec, err = decode[apiKeyRecord]([]byte(v)); err != nil {
			return err
		}
		if dead, err = rec.roll(newKey, grace, s.now(), s.sealer); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, hashKey, field, encode(rec))
			return nil
		})
		return err
	}, hashKey)
	if err != nil {
		s.rdb.Del(context.WithoutCancel(ctx), indexKey(nh))
		return APIKey{}, fmt.Errorf("roll api key %d: %w", id, err)
	}
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetArgs(ctx, indexKey(nh), indexOf(rec), redis.SetArgs{ExpireAt: s.indexDeadline(rec)})
		if oh, err := ParseHash(rec.OldHash); err == nil {
			p.SetArgs(ctx, indexKey(oh), indexOfOld(rec), redis.SetArgs{Mode: "XX", ExpireAt: rec.OldUntil})
		}
		for _, h := range dead {
			p.Del(ctx, indexKey(h))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return APIKey{}, fmt.Errorf("roll api key %d: %w", id, err)
	}
	// A revoke that ran meanwhile removed the record but may have missed the lookup records written
	// just now: finish its work.
	if v, err := s.rdb.HGet(ctx, hashKey, field).Result(); errors.Is(err, redis.Nil) || err == nil && !strings.Contains(v, nh.String()) {
		for _, h := range rec.hashes() {
			s.rdb.Del(ctx, indexKey(h))
		}
		return APIKey{}, fmt.Errorf("roll api key %d: %w", id, ErrNotFound)
	}
	for _, h := range dead {
		_ = s.publish(ctx, Event{Kind: EventRevoked, ProjectID: projectID, Hash: h})
	}
	_ = s.publish(ctx, Event{Kind: EventKeyChanged, ProjectID: projectID, Hash: nh})
	if oh, err := ParseHash(rec.OldHash); err == nil {
		_ = s.publish(ctx, Event{Kind: EventKeyChanged, ProjectID: projectID, Hash: oh, GraceUntil: rec.OldUntil.UnixMilli()})
	}
	return rec.apiKey(s.sealer)
}

// SetDevelopmentAPIKey implements Store.
func (s *RedisStore) SetDevelopmentAPIKey(ctx context.Context, projectID, id int64, key string) (APIKey, error) {
	field := strconv.FormatInt(id, 10)
	hashKey := projKey(projectID, "apikeys")
	var rec apiKeyRecord
	var changed []apiKeyRecord
	err := s.watchTx(ctx, func(tx *redis.Tx) error {
		changed = changed[:0]
		all, err := tx.HGetAll(ctx, hashKey).Result()
		if err != nil {
			return err
		}
		v, ok := all[field]
		if !ok {
			return ErrNotFound
		}
		if rec, err = decode[apiKeyRecord]([]byte(v)); err != nil {
			return err
		}
		if HashKey(key).String() != rec.Hash {
			return ErrWrongKey
		}
		var updates []any
		for f, v := range all {
			old, err := decode[apiKeyRecord]([]byte(v))
			if err != nil {
				return err
			}
			if old.Dev && f != field {
				old.Dev, old.DevSecret = false, ""
				changed = append(changed, old)
				updates = append(updates, f, encode(old))
			}
		}
		if !rec.Dev {
			if rec.DevSecret, err = s.sealer.Seal(key, sealKindDevKey, projectID, id); err != nil {
				return err
			}
			rec.Dev = true
			changed = append(changed, rec)
			updates = append(updates, field, encode(rec))
		}
		if len(updates) == 0 {
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, hashKey, updates...)
			return nil
		})
		return err
	}, hashKey)
	if err != nil {
		return APIKey{}, fmt.Errorf("set development key %d: %w", id, err)
	}
	for _, r := range changed {
		hs, err := s.refreshIndex(ctx, r)
		if err != nil {
			return APIKey{}, fmt.Errorf("set development key %d: %w", id, err)
		}
		for _, h := range hs {
			_ = s.publish(ctx, Event{Kind: EventKeyChanged, ProjectID: projectID, Hash: h})
		}
	}
	return rec.apiKey(s.sealer)
}

// updateHMAC changes one HMAC record (and, through fn's all, others of the project) in a transaction.
func (s *RedisStore) updateHMAC(ctx context.Context, projectID, id int64, fn func(rec *hmacRecord, all map[string]string, updates *[]any) error) (hmacRecord, error) {
	field := strconv.FormatInt(id, 10)
	hashKey := projKey(projectID, "hmackeys")
	var rec hmacRecord
	err := s.watchTx(ctx, func(tx *redis.Tx) error {
		all, err := tx.HGetAll(ctx, hashKey).Result()
		if err != nil {
			return err
		}
		v, ok := all[field]
		if !ok {
			return ErrNotFound
		}
		if rec, err = decode[hmacRecord]([]byte(v)); err != nil {
			return err
		}
		var updates []any
		if err := fn(&rec, all, &updates); err != nil {
			return err
		}
		updates = append(updates, field, encode(rec))
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, hashKey, updates...)
			return nil
		})
		return err
	}, hashKey)
	if err != nil {
		return rec, err
	}
	_ = s.publish(ctx, Event{Kind: EventHMACChanged, ProjectID: projectID})
	return rec, nil
}

// RollHMACKey implements Store.
func (s *RedisStore) RollHMACKey(ctx context.Context, projectID, id int64, newSecret string, grace time.Duration) (HMACKey, error) {
	rec, err := s.updateHMAC(ctx, projectID, id, func(rec *hmacRecord, _ map[string]string, _ *[]any) error {
		return rec.roll(newSecret, grace, s.now(), s.sealer)
	})
	if err != nil {
		return HMACKey{}, fmt.Errorf("roll hmac key %d: %w", id, err)
	}
	return rec.hmacKey(s.sealer, s.now())
}

// SetDevelopmentHMACKey implements Store.
func (s *RedisStore) SetDevelopmentHMACKey(ctx context.Context, projectID, id int64) (HMACKey, error) {
	field := strconv.FormatInt(id, 10)
	rec, err := s.updateHMAC(ctx, projectID, id, func(rec *hmacRecord, all map[string]string, updates *[]any) error {
		for f, v := range all {
			old, err := decode[hmacRecord]([]byte(v))
			if err != nil {
				return err
			}
			if old.Dev && f != field {
				old.Dev = false
				*updates = append(*updates, f, encode(old))
			}
		}
		rec.Dev = true
		return nil
	})
	if err != nil {
		return HMACKey{}, fmt.Errorf("set development hmac key %d: %w", id, err)
	}
	return rec.hmacKey(s.sealer, s.now())
}

// AppendAudit implements Store: XADD with a MINID trim, so the stream keeps the retention period
// and the entry ids (Redis's clock) order events across replicas.
func (s *RedisStore) AppendAudit(ctx context.Context, projectID int64, e AuditEvent) error {
	now := s.now()
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC().Truncate(time.Millisecond)
	args := &redis.XAddArgs{
		Stream: projKey(projectID, "audit"),
		MinID:  strconv.FormatInt(now.Add(-s.life.AuditRetention).UnixMilli(), 10),
		Approx: true,
		// The entry id is the store's clock ("<ms>-*": Redis numbers events within a millisecond),
		// so ids, cursors and the retention all count in one clock.
		ID:     strconv.FormatInt(now.UnixMilli(), 10) + "-*",
		Values: []any{"e", encode(e)},
	}
	err := s.rdb.XAdd(ctx, args).Err()
	if err != nil && strings.Contains(err.Error(), "equal or smaller") {
		// Another replica's clock is ahead: let Redis pick the next id after the newest.
		args.ID = "*"
		err = s.rdb.XAdd(ctx, args).Err()
	}
	if err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	return nil
}

// ListAudit implements Store.
func (s *RedisStore) ListAudit(ctx context.Context, projectID int64, limit int, before string) ([]AuditEvent, string, error) {
	end := "+"
	if before != "" {
		if _, _, err := parseCursor(before); err != nil {
			return nil, "", err
		}
		end = "(" + before
	}
	if limit <= 0 {
		limit = 50
	}
	cutoff := s.now().Add(-s.life.AuditRetention).UnixMilli()
	msgs, err := s.rdb.XRevRangeN(ctx, projKey(projectID, "audit"), end, strconv.FormatInt(cutoff, 10), int64(limit)+1).Result()
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	out := make([]AuditEvent, 0, len(msgs))
	next := ""
	for _, m := range msgs {
		if len(out) == limit {
			next = out[len(out)-1].Cursor
			break
		}
		raw, _ := m.Values["e"].(string)
		e, err := decode[AuditEvent]([]byte(raw))
		if err != nil {
			return nil, "", fmt.Errorf("list audit events: %w", err)
		}
		e.Cursor = m.ID
		out = append(out, e)
	}
	return out, next, nil
}
