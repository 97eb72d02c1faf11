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

type clientIPKey struct{}

// WithClientIP returns a context carrying the address the gateway attributes the request to (its
// access log's client_ip), so the audit trail records the same address.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIPFrom returns the address stored by WithClientIP.
func ClientIPFrom(ctx context.Context) (string, bool) {
	ip, ok := ctx.Value(clientIPKey{}).(string)
	return ip, ok
}
