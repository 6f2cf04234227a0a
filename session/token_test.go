package session_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/session"
)

var allAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.HS256, jose.RS256, jose.ES256}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func newLedger(e *env) *ledger.Ledger { return ledger.New(e.store, ledger.Options{Clock: e.clock}) }

func authErr(svc *session.Service, token string) error {
	_, err := svc.Authenticate(context.Background(), token)
	return err
}

// signingKey returns the stored (unsealed) key, so tests can forge tokens
// that carry a valid signature.
func signingKey(t testing.TB, e *env) (string, ed25519.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	if err := e.svc.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := e.store.ListSigningKeys(ctx)
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys: %v", err)
	}
	return keys[0].ID, ed25519.PrivateKey(keys[0].PrivateKey)
}

func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatalf("signer: %v", err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return tok
}

// claimsFor are the claims flashauth itself would put in a token.
func claimsFor(now time.Time, u flashauth.User, sid string) map[string]any {
	return map[string]any{
		"iss": "flashauth", "aud": "flashauth", "sub": u.ID, "userId": u.ID,
		"email": u.Email, "orgId": u.OrgID, "sid": sid, "type": "access",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1",
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func segment(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

func TestAccessTokenClaims(t *testing.T) {
	e := newEnv(t, session.Config{})
	u := e.newUser(t, "a@example.com")
	iss := e.open(t, e.svc, u)
	now := e.clock.Now()

	tok, err := jwt.ParseSigned(iss.AccessToken, allAlgs)
	if err != nil {
		t.Fatal(err)
	}
	if h := tok.Headers[0]; h.Algorithm != "EdDSA" || h.KeyID == "" {
		t.Errorf("header alg %q kid %q", h.Algorithm, h.KeyID)
	}
	var got map[string]any
	if err := tok.UnsafeClaimsWithoutVerification(&got); err != nil {
		t.Fatal(err)
	}
	if jti, _ := got["jti"].(string); len(jti) < 16 {
		t.Errorf("jti %q too short", jti)
	}
	delete(got, "jti")
	want := map[string]any{
		"iss": "flashauth", "aud": "flashauth", "sub": u.ID, "userId": u.ID, "email": u.Email,
		"orgId": u.OrgID, "sid": iss.SessionID, "type": "access",
		"iat": float64(now.Unix()), "exp": float64(now.Add(time.Hour).Unix()),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("claims (-want +got):\n%s", d)
	}
	if !iss.AccessExpiresAt.Equal(now.Add(time.Hour)) || !iss.SessionExpiresAt.Equal(now.Add(session.DefaultRefreshTTL)) {
		t.Errorf("expiries %v %v", iss.AccessExpiresAt, iss.SessionExpiresAt)
	}
	p, err := e.svc.Authenticate(context.Background(), iss.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(session.Principal{UserID: u.ID, Email: u.Email, OrgID: u.OrgID, SessionID: iss.SessionID}, p); d != "" {
		t.Errorf("principal (-want +got):\n%s", d)
	}
}

func TestAuthenticateRejects(t *testing.T) {
	e := newEnv(t, session.Config{})
	kid, priv := signingKey(t, e)
	pub := priv.Public().(ed25519.PublicKey)
	u := e.newUser(t, "a@example.com")
	other := e.newUser(t, "b@example.com")
	live := e.open(t, e.svc, u)
	revoked := e.open(t, e.svc, u)
	if _, err := e.svc.Logout(context.Background(), revoked.RefreshToken); err != nil {
		t.Fatal(err)
	}
	othersSession := e.open(t, e.svc, other)
	now := e.clock.Now()
	good := claimsFor(now, u, live.SessionID)

	_, attackerKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	valid := sign(t, jose.EdDSA, priv, kid, good)
	parts := strings.Split(valid, ".")

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not-a-jwt"},
		{"oversized", valid + strings.Repeat("A", 9000)},
		{"alg none", segment(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}) + "." + parts[1] + "."},
		{"alg none keeping signature", segment(t, map[string]any{"alg": "none", "kid": kid}) + "." + parts[1] + "." + parts[2]},
		{"HS256 with public key as secret", sign(t, jose.HS256, []byte(pub), kid, good)},
		{"HS256 with kid-less header", sign(t, jose.HS256, []byte(pub), "", good)},
		{"unknown kid", sign(t, jose.EdDSA, attackerKey, "forged-kid", good)},
		{"no kid", sign(t, jose.EdDSA, priv, "", good)},
		{"known kid, other key", sign(t, jose.EdDSA, attackerKey, kid, good)},
		{"altered payload", parts[0] + "." + segment(t, with(good, "sub", other.ID, "userId", other.ID)) + "." + parts[2]},
		{"altered header", segment(t, map[string]any{"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}) + "." + parts[1] + "." + parts[2]},
		{"truncated signature", parts[0] + "." + parts[1] + "." + parts[2][:20]},
		{"expired", sign(t, jose.EdDSA, priv, kid, with(good, "iat", now.Add(-2*time.Hour).Unix(), "exp", now.Add(-time.Minute).Unix()))},
		{"no exp", sign(t, jose.EdDSA, priv, kid, with(good, "exp", nil))},
		{"no iat", sign(t, jose.EdDSA, priv, kid, with(good, "iat", nil))},
		{"nbf in the future", sign(t, jose.EdDSA, priv, kid, with(good, "nbf", now.Add(time.Hour).Unix()))},
		{"iat in the future", sign(t, jose.EdDSA, priv, kid, with(good, "iat", now.Add(time.Hour).Unix(), "exp", now.Add(2*time.Hour).Unix()))},
		{"wrong iss", sign(t, jose.EdDSA, priv, kid, with(good, "iss", "https://evil.example"))},
		{"no iss", sign(t, jose.EdDSA, priv, kid, with(good, "iss", nil))},
		{"wrong aud", sign(t, jose.EdDSA, priv, kid, with(good, "aud", "other-service"))},
		{"no aud", sign(t, jose.EdDSA, priv, kid, with(good, "aud", nil))},
		{"type refresh", sign(t, jose.EdDSA, priv, kid, with(good, "type", "refresh"))},
		{"no type", sign(t, jose.EdDSA, priv, kid, with(good, "type", nil))},
		{"userId differs from sub", sign(t, jose.EdDSA, priv, kid, with(good, "userId", other.ID))},
		{"no sub", sign(t, jose.EdDSA, priv, kid, with(good, "sub", nil, "userId", nil))},
		{"no sid", sign(t, jose.EdDSA, priv, kid, with(good, "sid", nil))},
		{"unknown session", sign(t, jose.EdDSA, priv, kid, with(good, "sid", "no-such-session"))},
		{"another user's session", sign(t, jose.EdDSA, priv, kid, with(good, "sid", othersSession.SessionID))},
		{"revoked session", revoked.AccessToken},
		{"revoked session, forged fresh token", sign(t, jose.EdDSA, priv, kid, with(good, "sid", revoked.SessionID))},
	}
	// The forgery helper itself must produce accepted tokens, or the table
	// proves nothing.
	if _, err := e.svc.Authenticate(context.Background(), valid); err != nil {
		t.Fatalf("valid forged token rejected: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := e.svc.Authenticate(context.Background(), tt.token)
			wantCode(t, err, flashauth.CodeAuthRequired)
			if p != (session.Principal{}) {
				t.Errorf("principal %+v returned with error", p)
			}
			if strings.Contains(err.Error(), tt.token) && tt.token != "" {
				t.Error("error quotes the token")
			}
		})
	}
}

func TestAccessTokenExpiresWithLeeway(t *testing.T) {
	e := newEnv(t, session.Config{AccessTTL: time.Hour})
	u := e.newUser(t, "a@example.com")
	iss := e.open(t, e.svc, u)
	e.clock.Advance(time.Hour) // at exp, within leeway
	if err := authErr(e.svc, iss.AccessToken); err != nil {
		t.Fatalf("at exp: %v", err)
	}
	e.clock.Advance(time.Minute)
	wantCode(t, authErr(e.svc, iss.AccessToken), flashauth.CodeAuthRequired)
}
