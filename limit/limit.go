// Package limit enforces rate limits: a local engine (x/time/rate token buckets in a bounded LRU, for
// one replica or the embedded store) and a distributed one (GCRA in Redis via redis_rate, with
// Redis's clock, so N replicas together enforce one limit), behind one interface, with a fallback
// from the distributed engine to the local one while Redis is unreachable.
package limit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
)

// Result maps one to one onto the RateLimit-* and Retry-After headers.
type Result struct {
	Allowed   bool
	Limit     keys.Limit
	Remaining int
	// RetryAfter is how long until one more request would be allowed (when not Allowed).
	RetryAfter time.Duration
	// ResetAfter is how long until the bucket is full again.
	ResetAfter time.Duration
}

// Engine takes one token from the bucket named key.
type Engine interface {
	Allow(ctx context.Context, key string, l keys.Limit) (Result, error)
}

// Parse reads the configuration syntax: "RATE/UNIT [burst N]" with UNIT s, m or h (e.g. "100/s
// burst 200", "600/m"), or "off". Without burst, the burst equals the rate.
func Parse(s string) (keys.Limit, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" || s == "off" || s == "none" || s == "0" {
		return keys.Limit{}, nil
	}
	fields := strings.Fields(s)
	if len(fields) != 1 && !(len(fields) == 3 && fields[1] == "burst") {
		return keys.Limit{}, fmt.Errorf("want RATE/UNIT [burst N] (e.g. \"100/s burst 200\") or off, got %q", s)
	}
	l, err := ParseRate(fields[0])
	if err != nil {
		return keys.Limit{}, err
	}
	if len(fields) == 3 {
		b, err := strconv.Atoi(fields[2])
		if err != nil || b <= 0 {
			return keys.Limit{}, fmt.Errorf("burst must be a positive integer, got %q", fields[2])
		}
		l.Burst = b
	}
	return l, nil
}

// ParseRate reads "RATE/UNIT" (UNIT s, m or h); the burst is set to the rate.
func ParseRate(s string) (keys.Limit, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(strings.ToLower(s)), "/")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n <= 0 {
		return keys.Limit{}, fmt.Errorf("rate must look like 100/s, 600/m or 5000/h, got %q", s)
	}
	var p time.Duration
	switch unit {
	case "s", "sec", "second":
		p = time.Second
	case "m", "min", "minute":
		p = time.Minute
	case "h", "hour":
		p = time.Hour
	default:
		return keys.Limit{}, fmt.Errorf("rate unit must be s, m or h, got %q", unit)
	}
	return keys.Limit{Rate: n, Period: p, Burst: n}, nil
}

// Format writes a limit in the syntax Parse reads.
func Format(l keys.Limit) string {
	if l.IsZero() {
		return "off"
	}
	u := "s"
	switch l.Period {
	case time.Minute:
		u = "m"
	case time.Hour:
		u = "h"
	}
	return fmt.Sprintf("%d/%s burst %d", l.Rate, u, l.Burst)
}
