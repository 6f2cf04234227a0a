package session_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/session"
)

// FuzzAuthenticate feeds arbitrary bearer strings to the verifier: it must
// never panic, must answer AUTH_REQUIRED for anything it refuses, and may
// only accept a token for the one live session.
func FuzzAuthenticate(f *testing.F) {
	e := newEnv(f, session.Config{})
	kid, priv := signingKey(f, e)
	pub := priv.Public().(ed25519.PublicKey)
	u := e.newUser(f, "fuzz@example.com")
	iss := e.open(f, e.svc, u)
	want := session.Principal{UserID: u.ID, Email: u.Email, OrgID: u.OrgID, SessionID: iss.SessionID}
	good := claimsFor(e.clock.Now(), u, iss.SessionID)
	parts := strings.Split(iss.AccessToken, ".")

	for _, seed := range []string{
		iss.AccessToken,
		"",
		"a.b.c",
		"....",
		parts[0] + "." + parts[1] + ".",
		segment(f, map[string]any{"alg": "none", "kid": kid}) + "." + parts[1] + ".",
		sign(f, jose.HS256, []byte(pub), kid, good),
		sign(f, jose.EdDSA, priv, kid, with(good, "type", "refresh")),
		sign(f, jose.EdDSA, priv, kid, with(good, "exp", "soon")),
		sign(f, jose.EdDSA, priv, kid, with(good, "aud", []string{"x", "flashauth"})),
		`{"payload":"e30","signatures":[]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := e.svc.Authenticate(context.Background(), token)
		if err != nil {
			if code := flashauth.ErrorCode(err); code != flashauth.CodeAuthRequired {
				t.Fatalf("code %s: %v", code, err)
			}
			return
		}
		if p != want {
			t.Fatalf("accepted a token for %+v", p)
		}
	})
}
