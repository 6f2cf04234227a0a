package flashauth

import "context"

// Auditor records security events: a GitHub refresh, a sign-in, a session
// refresh, a detected reuse, a revocation. The services are given one and
// record what happened through it; package audit implements it. Record
// never fails: the trail must not turn a store hiccup into a failed request.
type Auditor interface {
	Record(ctx context.Context, e AuditEvent)
}

// RequestInfo is who made the request a context belongs to, as the HTTP
// layer worked it out once per request. It travels in the context so that
// an event recorded deep inside a service (a reuse detected inside a ledger
// operation) names the request that caused it. It never holds a secret.
type RequestInfo struct {
	ID        string // the request id (X-Request-Id)
	IP        string // the client address
	SessionID string // the flashauth session of a valid access token the request presented, or ""
}

type requestInfoKey struct{}

// WithRequestInfo returns ctx carrying info.
func WithRequestInfo(ctx context.Context, info RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, info)
}

// RequestInfoFrom returns the RequestInfo ctx carries, or the zero value.
func RequestInfoFrom(ctx context.Context) RequestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(RequestInfo)
	return info
}
