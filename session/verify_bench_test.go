package session

import (
	"context"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/sqlite/sqlitetest"
)

// BenchmarkVerifyJWT measures the cryptographic part of Authenticate alone:
// parsing with only EdDSA allowed, the kid lookup in the in-memory key ring,
// the Ed25519 signature and the claim checks, without the session read.
func BenchmarkVerifyJWT(b *testing.B) {
	store := sqlitetest.Open(b)
	ctx := context.Background()
	s, err := New(store, ledger.New(store, ledger.Options{}), Config{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	u, _, err := store.UpsertGitHubUser(ctx, flashauth.User{ID: "u1", GitHubID: 1, Login: "b", CreatedAt: now, UpdatedAt: now},
		flashauth.Organization{ID: "o1", Name: "b", CreatedAt: now})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := s.issueAccess(ctx, u, "s1", now.Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.verify(ctx, tok, now); err != nil {
			b.Fatal(err)
		}
	}
}
