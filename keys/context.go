package keys

import "context"

type principalKey struct{}

// WithPrincipal returns a context carrying the caller's principal (set by the gateway after
// authentication, read by the key-management handlers).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal stored by WithPrincipal.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
