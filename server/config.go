// Package server owns one running keygate: it builds the store, the key cache, the faces and the
// ops listener from the typed configuration, serves until its context ends, and then drains every
// part in one stated order. The command line only parses flags and the environment and hands the
// configuration over.
package server

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/proxy"
)

// Config is everything `keygate serve` reads from the environment, parsed and validated in one
// place. Every field is in the README's configuration table.
type Config struct {
	StoreConfig

	// StudioListen is the Studio API face's address (docs/protocol.md §1: 4800).
	StudioListen string `env:"KEYGATE_STUDIO_LISTEN" envDefault:":4800"`
	// StudioUpstream is the Studio backend (http:// or https://). Empty: the Studio face is off.
	StudioUpstream string `env:"KEYGATE_STUDIO_UPSTREAM"`
	// IngestionListen is the ingestion API face's address (docs/protocol.md §1: 4810).
	IngestionListen string `env:"KEYGATE_INGESTION_LISTEN" envDefault:":4810"`
	// IngestionUpstream is the ingestion backend. Empty: the ingestion face is off.
	IngestionUpstream string `env:"KEYGATE_INGESTION_UPSTREAM"`
	// RemoteListen is the remote-management face's address (docs/protocol.md §1: 4802).
	RemoteListen string `env:"KEYGATE_REMOTE_LISTEN" envDefault:":4802"`
	// RemoteUpstream is the remote-management websocket server (ws:// or wss://). Empty: the face is off.
	RemoteUpstream string `env:"KEYGATE_REMOTE_UPSTREAM"`
	// RemoteHelloTimeout is how long a device may take to send its hello.
	RemoteHelloTimeout time.Duration `env:"KEYGATE_REMOTE_HELLO_TIMEOUT" envDefault:"10s"`
	// RemoteIdleTimeout closes a session after this long without a message or ping from the device
	// (clients ping every 30 s).
	RemoteIdleTimeout time.Duration `env:"KEYGATE_REMOTE_IDLE_TIMEOUT" envDefault:"2m"`
	// RemoteOneSessionPerDevice keeps one live session per (project, deviceId); a new hello replaces the old session.
	RemoteOneSessionPerDevice bool `env:"KEYGATE_REMOTE_ONE_SESSION_PER_DEVICE" envDefault:"true"`
	// RemoteMaxSessionsPerKey and RemoteMaxSessionsPerProject bound concurrent sessions (0: unbounded).
	RemoteMaxSessionsPerKey     int `env:"KEYGATE_REMOTE_MAX_SESSIONS_PER_KEY" envDefault:"1000"`
	RemoteMaxSessionsPerProject int `env:"KEYGATE_REMOTE_MAX_SESSIONS_PER_PROJECT" envDefault:"10000"`

	// OpsListen serves /healthz, /readyz and /metrics.
	OpsListen string `env:"KEYGATE_OPS_LISTEN" envDefault:":9090"`

	// TLSCertFile and TLSKeyFile (PEM; both or neither) turn on TLS for the faces in TLSFaces. The
	// files are re-read when they change (a rotated Kubernetes Secret), without a restart; a pair
	// that does not load keeps the previous one and is logged. TLS 1.2 minimum; HTTP/2 is offered.
	TLSCertFile string `env:"KEYGATE_TLS_CERT_FILE"`
	TLSKeyFile  string `env:"KEYGATE_TLS_KEY_FILE"`
	// TLSFaces lists the listeners served over TLS when a certificate is set (studio, ingestion,
	// remote, ops; comma-separated). The ops listener stays plain unless listed.
	TLSFaces []string `env:"KEYGATE_TLS_FACES" envDefault:"studio,ingestion,remote"`
	// UpstreamCAFile is a PEM bundle of extra roots trusted for https and wss upstreams (a private
	// CA), added to the system roots and re-read when it changes.
	UpstreamCAFile string `env:"KEYGATE_UPSTREAM_CA_FILE"`
	// UpstreamClientCertFile and UpstreamClientKeyFile (PEM; both or neither) are the client
	// certificate presented to https and wss upstreams (mTLS), re-read when they change.
	UpstreamClientCertFile string `env:"KEYGATE_UPSTREAM_CLIENT_CERT_FILE"`
	UpstreamClientKeyFile  string `env:"KEYGATE_UPSTREAM_CLIENT_KEY_FILE"`

	// UpstreamTimeout bounds the wait for an upstream's response headers (504 after it).
	UpstreamTimeout time.Duration `env:"KEYGATE_UPSTREAM_TIMEOUT" envDefault:"60s"`
	// UpstreamDialTimeout bounds connecting to an upstream (502 after it).
	UpstreamDialTimeout time.Duration `env:"KEYGATE_UPSTREAM_DIAL_TIMEOUT" envDefault:"5s"`
	// UpstreamMaxIdleConns is the keep-alive pool per upstream; raise it for very high concurrency.
	UpstreamMaxIdleConns int `env:"KEYGATE_UPSTREAM_MAX_IDLE_CONNS" envDefault:"512"`
	// UpstreamTransport selects the upstream client: fast (the round trip on the handler's
	// goroutine; https upstreams and upgrades still use net/http's) or std (net/http's Transport for
	// everything), the switch back should an upstream misbehave with fast.
	UpstreamTransport string `env:"KEYGATE_UPSTREAM_TRANSPORT" envDefault:"fast"`
	// MaxBody caps request bodies (docs/protocol.md §4: 100 MB per file). Accepts 100MB, 512KiB, 2000000.
	MaxBody ByteSize `env:"KEYGATE_MAX_BODY" envDefault:"100MB"`
	// BodyTimeout bounds reading one request body, from keygate's first read (after the key is
	// checked) to the last byte; 408 after it. Raise it for very large uploads over slow links
	// (100 MB in 60 s needs about 13 Mbit/s).
	BodyTimeout time.Duration `env:"KEYGATE_BODY_TIMEOUT" envDefault:"60s"`
	// StripAPIKey removes x-api-key before forwarding. Keep it (false) when the backend checks keys too.
	StripAPIKey bool `env:"KEYGATE_STRIP_API_KEY" envDefault:"false"`

	// SignatureMode is what happens to an ingestion sample whose signature does not verify: reject
	// (401, the default: forged data never reaches the backend) or mark (forwarded with
	// X-Keygate-Signature: invalid, as the hosted platform stores and marks such samples).
	SignatureMode string `env:"KEYGATE_SIGNATURE_MODE" envDefault:"reject"`
	// MaxClockSkew bounds how far a sample's iat may be from now; accepted signatures are
	// remembered for twice this long to refuse replays.
	MaxClockSkew time.Duration `env:"KEYGATE_MAX_CLOCK_SKEW" envDefault:"15m"`
	// RequireIAT refuses signed samples without iat (off by default: devices without clocks exist).
	RequireIAT bool `env:"KEYGATE_REQUIRE_IAT" envDefault:"false"`
	// MaxFiles bounds the files of one /files upload (docs/protocol.md §4: 1000).
	MaxFiles int `env:"KEYGATE_MAX_FILES" envDefault:"1000"`

	// Rate limits on the ingestion face, written "RATE/UNIT [burst N]" (UNIT s, m or h) or "off":
	// per API key by role, per project (all keys together) and per device. Per-project and per-key
	// overrides set with `keygate limits set` take precedence.
	LimitAdmin               LimitValue `env:"KEYGATE_LIMIT_ADMIN" envDefault:"100/s burst 200"`
	LimitIngestionDeployment LimitValue `env:"KEYGATE_LIMIT_INGESTION_DEPLOYMENT" envDefault:"100/s burst 200"`
	LimitIngestion           LimitValue `env:"KEYGATE_LIMIT_INGESTION" envDefault:"100/s burst 200"`
	LimitReadOnly            LimitValue `env:"KEYGATE_LIMIT_READONLY" envDefault:"100/s burst 200"`
	LimitProject             LimitValue `env:"KEYGATE_LIMIT_PROJECT" envDefault:"1000/s burst 2000"`
	LimitDevice              LimitValue `env:"KEYGATE_LIMIT_DEVICE" envDefault:"20/s burst 40"`
	// StudioLimit is the per-key limit on the Studio face (off by default).
	StudioLimit LimitValue `env:"KEYGATE_STUDIO_LIMIT" envDefault:"off"`
	// RateLimitHeaders adds RateLimit-Limit/-Remaining/-Reset to allowed requests too (429s always carry them).
	RateLimitHeaders bool `env:"KEYGATE_RATELIMIT_HEADERS" envDefault:"true"`

	// CacheSize bounds the cached principals; CacheTTL bounds how stale one can be if a revocation
	// announcement is lost; NegativeCacheTTL is how long an unknown key is remembered; CacheGrace is
	// how long past CacheTTL cached keys keep working while the store is unreachable.
	CacheSize        int           `env:"KEYGATE_CACHE_SIZE" envDefault:"100000"`
	CacheTTL         time.Duration `env:"KEYGATE_CACHE_TTL" envDefault:"30s"`
	NegativeCacheTTL time.Duration `env:"KEYGATE_NEGATIVE_CACHE_TTL" envDefault:"10s"`
	CacheGrace       time.Duration `env:"KEYGATE_CACHE_GRACE" envDefault:"5m"`
	// LastUsedInterval is how often last-used times are written to the store (batched).
	LastUsedInterval time.Duration `env:"KEYGATE_LAST_USED_INTERVAL" envDefault:"1m"`

	// ReadHeaderTimeout and IdleTimeout protect the listeners from slow or idle clients.
	ReadHeaderTimeout time.Duration `env:"KEYGATE_READ_HEADER_TIMEOUT" envDefault:"10s"`
	IdleTimeout       time.Duration `env:"KEYGATE_IDLE_TIMEOUT" envDefault:"120s"`
	// ShutdownTimeout is how long SIGTERM waits for in-flight requests; keep it below the pod's
	// terminationGracePeriodSeconds.
	ShutdownTimeout time.Duration `env:"KEYGATE_SHUTDOWN_TIMEOUT" envDefault:"25s"`

	// Pprof serves Go's /debug/pprof/ profiles on the ops listener (off by default).
	Pprof bool `env:"KEYGATE_PPROF" envDefault:"false"`
	// ServiceTokenFile turns on GET /internal/projects/{projectId}/devkeys on the ops listener: the
	// development-key hand-out to the platform's job runner for privileged deployment blocks
	// (docs/deploy.md). The file holds the service token (at least 32 characters; a mounted
	// Kubernetes Secret) and is re-read when it changes. Empty (the default): the path is 404.
	ServiceTokenFile string `env:"KEYGATE_SERVICE_TOKEN_FILE"`

	// TrustedProxies are the load balancers whose X-Forwarded-For is believed for the client
	// address in the access log and last-used records (CIDRs or addresses, comma-separated). Empty:
	// the peer's address.
	TrustedProxies CIDRList `env:"KEYGATE_TRUSTED_PROXIES"`

	// AccessLog writes one line per request.
	AccessLog bool `env:"KEYGATE_ACCESS_LOG" envDefault:"true"`
	// LogFormat is json or text; LogLevel is debug, info, warn or error.
	LogFormat string `env:"KEYGATE_LOG_FORMAT" envDefault:"json"`
	LogLevel  string `env:"KEYGATE_LOG_LEVEL" envDefault:"info"`
}

// LimitValue is a rate limit in the syntax of limit.Parse.
type LimitValue struct{ keys.Limit }

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *LimitValue) UnmarshalText(text []byte) error {
	l, err := limit.Parse(string(text))
	if err != nil {
		return err
	}
	v.Limit = l
	return nil
}

// CIDRList is a comma-separated list of CIDRs; a bare address is a one-address prefix.
type CIDRList []netip.Prefix

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *CIDRList) UnmarshalText(text []byte) error {
	var out CIDRList
	for _, f := range strings.Split(string(text), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return fmt.Errorf("%q is neither a CIDR nor an address", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	*l = out
	return nil
}

// ByteSize is a size in bytes written as a number with an optional unit (B, KB, MB, GB: powers of
// 1000; KiB, MiB, GiB: powers of 1024).
type ByteSize int64

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(s), strings.ToUpper(u.suffix)) && (u.suffix != "B" || !strings.HasSuffix(strings.ToUpper(s), "IB")) {
			s, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a size such as 100MB, 512KiB or 2000000, got %q", string(text))
	}
	*b = ByteSize(n * mult)
	return nil
}

// LoadConfig reads and validates the configuration from the KEYGATE_* environment variables.
func LoadConfig() (Config, error) {
	c, err := LoadDefaults()
	if err != nil {
		return c, err
	}
	return c, c.Validate()
}

// LoadDefaults reads the environment without validating it, for callers that fill in more before
// calling Validate (the demo supplies its own upstreams).
func LoadDefaults() (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		return c, configError(err)
	}
	return c, nil
}

func checkUpstream(name, raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ConfigErrorf("%s: want an http:// or https:// URL with a host, got %q", name, raw)
	}
	return nil
}

// Validate checks every value, so a mistake is one clear line at start instead of a surprise later.
func (c Config) Validate() error {
	if err := checkUpstream("KEYGATE_STUDIO_UPSTREAM", c.StudioUpstream); err != nil {
		return err
	}
	if err := checkUpstream("KEYGATE_INGESTION_UPSTREAM", c.IngestionUpstream); err != nil {
		return err
	}
	if c.RemoteUpstream != "" {
		u, err := url.Parse(c.RemoteUpstream)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return ConfigErrorf("KEYGATE_REMOTE_UPSTREAM: want a ws:// or wss:// URL with a host, got %q", c.RemoteUpstream)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return ConfigErrorf("KEYGATE_TLS_CERT_FILE and KEYGATE_TLS_KEY_FILE: set both (PEM files) or neither")
	}
	if (c.UpstreamClientCertFile == "") != (c.UpstreamClientKeyFile == "") {
		return ConfigErrorf("KEYGATE_UPSTREAM_CLIENT_CERT_FILE and KEYGATE_UPSTREAM_CLIENT_KEY_FILE: set both (PEM files) or neither")
	}
	for _, f := range c.TLSFaces {
		switch strings.TrimSpace(f) {
		case "studio", "ingestion", "remote", "ops":
		default:
			return ConfigErrorf("KEYGATE_TLS_FACES: want a comma-separated list of studio, ingestion, remote and ops, got %q", strings.Join(c.TLSFaces, ","))
		}
	}
	if c.StudioUpstream == "" && c.IngestionUpstream == "" && c.RemoteUpstream == "" {
		return ConfigErrorf("no face is configured: set KEYGATE_STUDIO_UPSTREAM, KEYGATE_INGESTION_UPSTREAM and/or KEYGATE_REMOTE_UPSTREAM (or try `keygate demo`)")
	}
	if c.RemoteHelloTimeout <= 0 || c.RemoteIdleTimeout <= 0 {
		return ConfigErrorf("KEYGATE_REMOTE_HELLO_TIMEOUT and KEYGATE_REMOTE_IDLE_TIMEOUT must be positive durations")
	}
	if c.RemoteMaxSessionsPerKey < 0 || c.RemoteMaxSessionsPerProject < 0 {
		return ConfigErrorf("KEYGATE_REMOTE_MAX_SESSIONS_PER_KEY and _PER_PROJECT must not be negative")
	}
	positive := map[string]time.Duration{
		"KEYGATE_UPSTREAM_TIMEOUT": c.UpstreamTimeout, "KEYGATE_UPSTREAM_DIAL_TIMEOUT": c.UpstreamDialTimeout,
		"KEYGATE_CACHE_TTL": c.CacheTTL, "KEYGATE_NEGATIVE_CACHE_TTL": c.NegativeCacheTTL,
		"KEYGATE_LAST_USED_INTERVAL": c.LastUsedInterval, "KEYGATE_READ_HEADER_TIMEOUT": c.ReadHeaderTimeout,
		"KEYGATE_BODY_TIMEOUT":     c.BodyTimeout,
		"KEYGATE_SHUTDOWN_TIMEOUT": c.ShutdownTimeout,
	}
	for name, d := range positive {
		if d <= 0 {
			return ConfigErrorf("%s: must be a positive duration such as 30s", name)
		}
	}
	if c.CacheGrace < 0 {
		return ConfigErrorf("KEYGATE_CACHE_GRACE: must not be negative")
	}
	if c.CacheSize <= 0 {
		return ConfigErrorf("KEYGATE_CACHE_SIZE: must be a positive integer")
	}
	if c.MaxBody <= 0 {
		return ConfigErrorf("KEYGATE_MAX_BODY: must be a positive size")
	}
	if c.UpstreamTransport != proxy.TransportFast && c.UpstreamTransport != proxy.TransportStd {
		return ConfigErrorf("KEYGATE_UPSTREAM_TRANSPORT: want fast or std, got %q", c.UpstreamTransport)
	}
	if c.SignatureMode != "reject" && c.SignatureMode != "mark" {
		return ConfigErrorf("KEYGATE_SIGNATURE_MODE: want reject or mark, got %q", c.SignatureMode)
	}
	if c.MaxClockSkew <= 0 {
		return ConfigErrorf("KEYGATE_MAX_CLOCK_SKEW: must be a positive duration such as 15m")
	}
	if c.MaxFiles <= 0 {
		return ConfigErrorf("KEYGATE_MAX_FILES: must be a positive integer")
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return ConfigErrorf("KEYGATE_LOG_FORMAT: want json or text, got %q", c.LogFormat)
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		return err
	}
	for name, v := range map[string]string{"KEYGATE_STUDIO_LISTEN": c.StudioListen, "KEYGATE_INGESTION_LISTEN": c.IngestionListen, "KEYGATE_REMOTE_LISTEN": c.RemoteListen, "KEYGATE_OPS_LISTEN": c.OpsListen} {
		if v == "" || !strings.Contains(v, ":") {
			return ConfigErrorf("%s: want host:port or :port, got %q", name, v)
		}
	}
	return nil
}

// StoreConfig selects and opens the key store. It is shared by `keygate serve` and every key
// command, so both always see the same keys.
type StoreConfig struct {
	// RedisURL selects the Redis store (redis://, rediss://, redis+sentinel://, redis+cluster://).
	// Empty: the embedded bbolt store under DataDir.
	RedisURL string `env:"KEYGATE_REDIS_URL"`
	// DataDir holds the embedded store's file. Default ./keygate-data.
	DataDir string `env:"KEYGATE_DATA_DIR" envDefault:"./keygate-data"`
	// MasterKey (32 bytes, hex or base64) encrypts HMAC keys and the development API key at rest.
	// Unset: they are stored in plain text and keygate warns at start.
	MasterKey string `env:"KEYGATE_MASTER_KEY"`
	// AuditRetention is how long audit events are kept (e.g. 90d, 720h).
	AuditRetention Lifetime `env:"KEYGATE_AUDIT_RETENTION" envDefault:"90d"`
	// ExpiredKeyRetention is how long an expired API key stays listed (as expired) before removal.
	ExpiredKeyRetention Lifetime `env:"KEYGATE_EXPIRED_KEY_RETENTION" envDefault:"30d"`
}

// Lifetime is a duration that may also be written in whole days ("30d"; see keys.ParseDuration).
type Lifetime time.Duration

// UnmarshalText implements encoding.TextUnmarshaler for caarlos0/env.
func (l *Lifetime) UnmarshalText(b []byte) error {
	d, err := keys.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if d <= 0 {
		return fmt.Errorf("must be positive, e.g. 30d")
	}
	*l = Lifetime(d)
	return nil
}

// lifecycle is the store's retention settings.
func (c StoreConfig) lifecycle() keys.Lifecycle {
	return keys.Lifecycle{ExpiredRetention: time.Duration(c.ExpiredKeyRetention), AuditRetention: time.Duration(c.AuditRetention)}
}

// LoadStoreConfig reads the store settings from the environment.
func LoadStoreConfig() (StoreConfig, error) {
	var c StoreConfig
	if err := env.Parse(&c); err != nil {
		return c, configError(err)
	}
	return c, nil
}

// Kind names the store for logs and /readyz: redis or embedded.
func (c StoreConfig) Kind() string {
	if c.RedisURL != "" {
		return "redis"
	}
	return "embedded"
}

// sealer builds the Sealer from KEYGATE_MASTER_KEY (nil when unset).
func (c StoreConfig) sealer() (*keys.Sealer, error) {
	if c.MasterKey == "" {
		return nil, nil
	}
	mk, err := keys.ParseMasterKey(c.MasterKey)
	if err != nil {
		return nil, ConfigErrorf("KEYGATE_MASTER_KEY: %v", err)
	}
	return keys.NewSealer(mk)
}

// Open opens the configured store.
func (c StoreConfig) Open() (keys.Store, error) {
	sealer, err := c.sealer()
	if err != nil {
		return nil, err
	}
	if c.RedisURL != "" {
		rdb, err := keys.NewRedisClient(c.RedisURL)
		if err != nil {
			return nil, ConfigErrorf("KEYGATE_REDIS_URL: %v", err)
		}
		rs := keys.NewRedisStore(rdb, sealer)
		rs.SetLifecycle(c.lifecycle())
		return rs, nil
	}
	s, err := keys.OpenBolt(c.DataDir, sealer, 0)
	if err != nil {
		return nil, err
	}
	s.SetLifecycle(c.lifecycle())
	return s, nil
}

// ErrNoStore: a command that only reads or changes keys found no embedded store where it looked.
var ErrNoStore = errors.New("no key store")

// boltPath is where the embedded store's file is (absolute when it can be, so an operator sees
// which directory a relative KEYGATE_DATA_DIR meant).
func (c StoreConfig) boltPath() string {
	p := filepath.Join(c.DataDir, keys.DataFileName)
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// OpenExisting opens the configured store for a command that reads or changes keys: on the
// embedded store it refuses to create a file (or directory) that is not there, because a mistyped
// KEYGATE_DATA_DIR would otherwise answer from a new, empty store.
func (c StoreConfig) OpenExisting() (keys.Store, error) {
	if _, err := c.sealer(); err != nil { // a bad setting is reported before a missing store
		return nil, err
	}
	if c.RedisURL == "" {
		path := c.boltPath()
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s: set KEYGATE_DATA_DIR to the directory that holds %s, or KEYGATE_REDIS_URL to use Redis "+
				"(`keygate keys create` or `keygate hmac create` makes a new store)", ErrNoStore, path, keys.DataFileName)
		} else if err != nil {
			return nil, fmt.Errorf("key store %s: %w", path, err)
		}
	}
	return c.Open()
}

// OpenOrCreate opens the configured store for a command that creates keys, creating the embedded
// store if it is not there and saying where on stderr.
func (c StoreConfig) OpenOrCreate(stderr io.Writer) (keys.Store, error) {
	if c.RedisURL != "" {
		return c.Open()
	}
	path := c.boltPath()
	_, statErr := os.Stat(path)
	s, err := c.Open()
	if err == nil && errors.Is(statErr, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "Created a new key store at %s (KEYGATE_DATA_DIR; set KEYGATE_REDIS_URL to use Redis instead).\n", path)
	}
	return s, err
}

// WarnPlaintext is the loud warning for secrets stored without encryption.
func WarnPlaintext(log *slog.Logger) {
	log.Warn("KEYGATE_MASTER_KEY is not set: HMAC keys and the development API key are stored UNENCRYPTED. " +
		"Set a 32-byte key (e.g. `openssl rand -hex 32`) before storing real secrets.")
}

// ConfigError is a bad configuration value or flag. The command line prints it as one line and
// exits with status 2 (a usage error).
type ConfigError struct{ msg string }

func (e ConfigError) Error() string { return e.msg }

// ConfigErrorf formats a ConfigError.
func ConfigErrorf(format string, a ...any) error { return ConfigError{fmt.Sprintf(format, a...)} }

// ParseLevel reads KEYGATE_LOG_LEVEL.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, ConfigErrorf("KEYGATE_LOG_LEVEL: want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// NewLogger is the process's structured logger in the configured format and level.
func NewLogger(c Config, w io.Writer) *slog.Logger {
	lvl, _ := ParseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// tlsOn reports whether the named listener is served over TLS.
func (c Config) tlsOn(name string) bool {
	if c.TLSCertFile == "" {
		return false
	}
	for _, f := range c.TLSFaces {
		if strings.TrimSpace(f) == name {
			return true
		}
	}
	return false
}
