package session

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/flashbacktech/flashauth"
)

// TestSignAccessMatchesBuilder: signAccess writes the claims itself; the
// token must be the one go-jose's claims builder signs from the registered
// claims and accessClaims, byte for byte (Ed25519 signatures are
// deterministic), whatever the strings hold.
func TestSignAccessMatchesBuilder(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.EdDSA,
		Key:       jose.JSONWebKey{Key: priv, KeyID: "k1", Algorithm: string(jose.EdDSA)},
	}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_764_000_000, 0)
	exp := now.Add(time.Hour)
	for _, c := range []struct {
		name              string
		issuer, audience  string
		id, email, org    string
		session, tokenJTI string
	}{
		{"plain", "flashauth", "flashauth", "u1", "a@example.com", "o1", "s1", "jti1"},
		{"empty fields", "flashauth", "flashauth", "", "", "", "", ""},
		{"escapes", "https://auth.example/<&>", "aud \"x\"", "u\\1", "<b>&amp;\u2028\u00e9@ex\x01ample.com", "o\t1", "s\n1", "j"},
		{"unicode", "iss", "aud", "ユーザー", "😀@example.com", "组织", "s", "jti"},
		{"invalid utf-8", "iss", "aud", "u\xff", "a\xc3@example.com", "o", "s", "jti"},
	} {
		s := &Service{cfg: Config{Issuer: c.issuer, Audience: c.audience}}
		u := flashauth.User{ID: c.id, Email: c.email, OrgID: c.org}
		got, err := s.signAccess(signer, u, c.session, now, exp, c.tokenJTI)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		std := jwt.Claims{
			Issuer:   c.issuer,
			Subject:  c.id,
			Audience: jwt.Audience{c.audience},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(exp),
			ID:       c.tokenJTI,
		}
		own := accessClaims{UserID: c.id, Email: c.email, OrgID: c.org, SessionID: c.session, Type: tokenType}
		want, err := jwt.Signed(signer).Claims(std).Claims(own).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, want)
		}
	}
}
