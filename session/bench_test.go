package session_test

import (
	"context"
	"testing"

	"github.com/flashbacktech/flashauth/session"
)

// BenchmarkAuthenticate verifies one access token: EdDSA signature, claims,
// and the session lookup that makes revocation immediate.
func BenchmarkAuthenticate(b *testing.B) {
	e := newEnv(b, session.Config{})
	iss := e.open(b, e.svc, e.newUser(b, "bench@example.com"))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := e.svc.Authenticate(ctx, iss.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefresh rotates a session refresh token: one read (session,
// user, ledger entry), a new access token, and the CAS rotation committed
// with its sealed verdict.
func BenchmarkRefresh(b *testing.B) {
	e := newEnv(b, session.Config{})
	iss := e.open(b, e.svc, e.newUser(b, "bench@example.com"))
	ctx := context.Background()
	tok := iss.RefreshToken
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		next, err := e.svc.Refresh(ctx, tok)
		if err != nil {
			b.Fatal(err)
		}
		tok = next.RefreshToken
	}
}
