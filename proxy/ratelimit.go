package proxy

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate/internal/apierr"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limit"
	"github.com/keygate/keygate/policy"
)

// RateLimits applies policy.Limits with an Engine. It implements Limiter.
type RateLimits struct {
	Engine limit.Engine
	Limits policy.Limits
	// Projects gives per-project overrides; on error the defaults apply.
	Projects ProjectSource
	// Headers adds RateLimit-* headers to allowed requests too (they are always on 429s).
	Headers bool
	Metrics *Metrics
}

var _ Limiter = (*RateLimits)(nil)

func (rl *RateLimits) settings(ctx context.Context, pid int64) keys.ProjectSettings {
	if rl.Projects == nil {
		return keys.ProjectSettings{}
	}
	pr, err := rl.Projects.Get(ctx, pid)
	if err != nil {
		return keys.ProjectSettings{}
	}
	return pr.Settings
}

// Allow checks the key, project and (when headers name one) device limits. When no limit applies
// (the Studio face's default) it costs one cached settings read and nothing else.
func (rl *RateLimits) Allow(ctx context.Context, r *http.Request, p keys.Principal, route policy.Route, h http.Header) error {
	st := rl.settings(ctx, p.ProjectID)
	keyLimit := rl.Limits.KeyLimit(route.Face, p, st)
	projectLimit := rl.Limits.ProjectLimit(route.Face, st)
	var device string
	if route.Face == policy.FaceIngestion && !rl.Limits.IngestionDevice.IsZero() {
		device = deviceHeader(r)
	}
	if keyLimit.IsZero() && projectLimit.IsZero() && device == "" {
		return nil
	}
	var tightest limit.Result
	seen := false
	check := func(scope, id string, l keys.Limit) error {
		if l.IsZero() {
			return nil
		}
		res, err := rl.Engine.Allow(ctx, keys.LimitKey(p.ProjectID, scope, id), l)
		if err != nil {
			return apierr.Unavailable("rate limiter unavailable, try again shortly", err)
		}
		if !res.Allowed {
			return rl.refuse(h, scope, id, res)
		}
		if !seen || res.Remaining < tightest.Remaining {
			tightest, seen = res, true
		}
		return nil
	}
	if err := check("key", strconv.FormatInt(p.KeyID, 10), keyLimit); err != nil {
		return err
	}
	if err := check("project", strconv.FormatInt(p.ProjectID, 10), projectLimit); err != nil {
		return err
	}
	if device != "" {
		if err := check("device", device, rl.Limits.IngestionDevice); err != nil {
			return err
		}
	}
	if rl.Headers && seen {
		setRateHeaders(h, tightest)
	}
	return nil
}

// AllowDevice checks the per-device limit for a device named in a verified sample.
func (rl *RateLimits) AllowDevice(ctx context.Context, p keys.Principal, device string, h http.Header) error {
	l := rl.Limits.IngestionDevice
	if l.IsZero() || device == "" {
		return nil
	}
	res, err := rl.Engine.Allow(ctx, keys.LimitKey(p.ProjectID, "device", device), l)
	if err != nil {
		return apierr.Unavailable("rate limiter unavailable, try again shortly", err)
	}
	if !res.Allowed {
		return rl.refuse(h, "device", device, res)
	}
	return nil
}

func deviceHeader(r *http.Request) string {
	if v := firstHeader(r.Header, "X-Device-Id"); v != "" {
		return v
	}
	return ""
}

func (rl *RateLimits) refuse(h http.Header, scope, id string, res limit.Result) error {
	if rl.Metrics != nil {
		rl.Metrics.RateLimited.WithLabelValues(scope).Inc()
	}
	setRateHeaders(h, res)
	e := apierr.New(http.StatusTooManyRequests, apierr.OutcomeRateLimited,
		fmt.Sprintf("rate limit exceeded for %s %s (%s)", scope, id, limit.Format(res.Limit)), nil)
	e.RetryAfter = ceilSeconds(res.RetryAfter)
	return e
}

func ceilSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// setRateHeaders writes the IETF RateLimit-* fields (draft-ietf-httpapi-ratelimit-headers).
func setRateHeaders(h http.Header, r limit.Result) {
	h["Ratelimit-Limit"] = []string{strconv.Itoa(r.Limit.Burst)}
	h["Ratelimit-Remaining"] = []string{strconv.Itoa(r.Remaining)}
	reset := int(math.Ceil(r.ResetAfter.Seconds()))
	if reset < 0 {
		reset = 0
	}
	h["Ratelimit-Reset"] = []string{strconv.Itoa(reset)}
	h["Ratelimit-Policy"] = []string{fmt.Sprintf("%d;w=%d", r.Limit.Rate, int(r.Limit.Period.Seconds()))}
}
