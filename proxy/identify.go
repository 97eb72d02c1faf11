package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/keygate/keygate/cache"
	"github.com/keygate/keygate/internal/apierr"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/policy"
)

// Identify is the identify step every face shares (the gateway's step 2, the remote face's hello):
// it resolves an API key to its principal, or answers why not as an *apierr.Error (401 missing,
// unknown, revoked or expired; 503 with Retry-After when the key store is unreachable). Written
// once so the HTTP and websocket faces cannot disagree about who a key is.
func Identify(ctx context.Context, res Resolver, key string) (keys.Principal, error) {
	if key == "" {
		return keys.Principal{}, apierr.New(http.StatusUnauthorized, apierr.OutcomeUnauthorized, "missing x-api-key header", nil)
	}
	p, err := res.Resolve(ctx, key)
	switch {
	case errors.Is(err, cache.ErrUnavailable):
		return keys.Principal{}, apierr.Unavailable("key store unavailable, try again shortly", err)
	case errors.Is(err, cache.ErrExpired):
		return keys.Principal{}, apierr.New(http.StatusUnauthorized, apierr.OutcomeUnauthorized, "API key expired", nil)
	case err != nil:
		return keys.Principal{}, apierr.New(http.StatusUnauthorized, apierr.OutcomeUnauthorized, "unknown or revoked API key", nil)
	}
	return p, nil
}

// Authorize is the authorize step every face shares (the gateway's step 3): the policy's decision
// for p on route, as a 403 *apierr.Error when refused.
func Authorize(p keys.Principal, route policy.Route) error {
	if err := policy.Allow(p, route); err != nil {
		return apierr.New(http.StatusForbidden, apierr.OutcomeDenied, err.Error(), nil)
	}
	return nil
}

// SetIdentity sets the identity headers keygate tells the upstream (project, role, key id, and the
// development mark), replacing any value already there. The gateway sets the same names from
// values it caches per key (rewrite); the remote face calls this for each session's dial.
func SetIdentity(h http.Header, p keys.Principal) {
	h[HeaderProject] = []string{strconv.FormatInt(p.ProjectID, 10)}
	h[HeaderRole] = []string{p.Role.String()}
	h[HeaderKeyID] = []string{strconv.FormatInt(p.KeyID, 10)}
	if p.Dev {
		h[HeaderDev] = headerTrue
	} else {
		delete(h, HeaderDev)
	}
}
