package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/flashbacktech/flashauth"
)

const (
	// tokenType is the "type" claim of access tokens; it keeps any other
	// kind of token we may sign one day from passing as an access token.
	tokenType = "access"
	// leeway tolerates clock differences between replicas and clients.
	leeway = 30 * time.Second
	// maxTokenLen bounds the work spent on a presented token.
	maxTokenLen = 8 << 10
	// touchEvery throttles LastUsedAt writes caused by authenticated calls.
	touchEvery = time.Minute
)

// accessClaims are flashauth's claims beyond the registered ones.
type accessClaims struct {
	UserID    string `json:"userId"`
	Email     string `json:"email"`
	OrgID     string `json:"orgId"`
	SessionID string `json:"sid"`
	Type      string `json:"type"`
}

// issueAccess signs an access token for the session's user. It expires after
// AccessTTL, or with the session if that is sooner.
func (s *Service) issueAccess(ctx context.Context, u flashauth.User, sessionID string, sessionExpires time.Time) (string, time.Time, error) {
	r, err := s.currentRing(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	if r.signer == nil {
		return "", time.Time{}, r.signErr
	}
	// JWT times have second precision; truncating keeps AccessExpiresAt
	// equal to the token's exp.
	now := s.cfg.Clock.Now().Truncate(time.Second)
	exp := now.Add(s.cfg.AccessTTL)
	if se := sessionExpires.Truncate(time.Second); se.Before(exp) {
		exp = se
	}
	// A key's expiry was computed with the AccessTTL in force when it was
	// made; after the TTL is raised, the key must still outlive its tokens.
	if ke := r.signer.expiresAt.Add(-keySkew).Truncate(time.Second); ke.Before(exp) {
		exp = ke
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("session: random: %w", err)
	}
	tok, err := s.signAccess(r.signer.signer, u, sessionID, now, exp, base64.RawURLEncoding.EncodeToString(jti[:]))
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, exp, nil
}

// signAccess signs the access token of u's session sessionID, issued at now,
// expiring at exp, with id jti.
func (s *Service) signAccess(signer jose.Signer, u flashauth.User, sessionID string, now, exp time.Time, jti string) (string, error) {
	payload, err := josejson.Marshal(accessPayload{
		Audience:  validUTF8(s.cfg.Audience),
		Email:     validUTF8(u.Email),
		Expiry:    exp.Unix(),
		IssuedAt:  now.Unix(),
		Issuer:    validUTF8(s.cfg.Issuer),
		ID:        validUTF8(jti),
		OrgID:     validUTF8(u.OrgID),
		SessionID: validUTF8(sessionID),
		Subject:   validUTF8(u.ID),
		Type:      tokenType,
		UserID:    validUTF8(u.ID),
	})
	if err != nil {
		return "", fmt.Errorf("session: sign: %w", err)
	}
	sig, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("session: sign: %w", err)
	}
	tok, err := sig.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("session: sign: %w", err)
	}
	return tok, nil
}

// validUTF8 replaces each byte of s that is not UTF-8 with U+FFFD, as the
// claims builder's round trip through JSON did (its encoder wrote \ufffd,
// which decoded to the rune, which it wrote back unescaped).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s { // an invalid byte ranges as one utf8.RuneError
		b.WriteRune(r)
	}
	return b.String()
}

// accessPayload is the claims set of an access token as it is signed: the
// registered claims (jwt.Claims: iss, sub, a single aud, exp, iat, jti)
// merged with accessClaims, keys in sorted order. It is the payload
// jwt.Signed(...).Claims(std).Claims(own).Serialize() produced, byte for
// byte (go-jose's JSON encoder, the same omitempty fields), without that
// builder's round trip of each claims struct through JSON and a map.
// verify still reads it with jwt.Claims and accessClaims.
type accessPayload struct {
	Audience  string `json:"aud"` // one audience: a string, as jwt.Audience writes it
	Email     string `json:"email"`
	Expiry    int64  `json:"exp"`
	IssuedAt  int64  `json:"iat"`
	Issuer    string `json:"iss,omitempty"`
	ID        string `json:"jti,omitempty"`
	OrgID     string `json:"orgId"`
	SessionID string `json:"sid"`
	Subject   string `json:"sub,omitempty"`
	Type      string `json:"type"`
	UserID    string `json:"userId"`
}

// errAuth is the answer to every token that does not authenticate; why is
// only in the cause, for logs.
func errAuth(cause error) error {
	return &flashauth.Error{Code: flashauth.CodeAuthRequired, Message: "A valid access token is required.", Err: cause}
}

// Authenticate verifies an access token (without the "Bearer " prefix) and
// its session. Any invalid token is CodeAuthRequired; store errors are
// passed through (CodeStoreUnavailable when the database is away), so that
// clients retry rather than drop their credentials.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	now := s.cfg.Clock.Now()
	p, err := s.verify(ctx, token, now)
	if err != nil {
		return Principal{}, err
	}
	sess, err := s.store.GetSession(ctx, p.SessionID)
	if errors.Is(err, flashauth.ErrNotFound) {
		return Principal{}, errAuth(errors.New("unknown session"))
	}
	if err != nil {
		return Principal{}, fmt.Errorf("session: get session: %w", err)
	}
	if !sess.Active(now) || sess.UserID != p.UserID {
		return Principal{}, errAuth(errors.New("session revoked or expired"))
	}
	if now.Sub(sess.LastUsedAt) >= touchEvery {
		if err := s.store.TouchSession(ctx, sess.ID, now); err != nil {
			s.log.Warn("touch session failed", "session_id", sess.ID, "err", err)
		}
	}
	return p, nil
}

// verify checks an access token's signature and claims at now, without its
// session. Only a failure to read the keys is not CodeAuthRequired.
func (s *Service) verify(ctx context.Context, token string, now time.Time) (Principal, error) {
	if !flashauth.ValidToken(token, maxTokenLen) {
		return Principal{}, errAuth(errors.New("missing, oversized or malformed token"))
	}
	// Only EdDSA parses: alg none and every HMAC algorithm (including the
	// "public key as HMAC secret" confusion) are refused here.
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return Principal{}, errAuth(fmt.Errorf("parse: %w", err))
	}
	if len(parsed.Headers) != 1 || parsed.Headers[0].KeyID == "" {
		return Principal{}, errAuth(errors.New("missing kid"))
	}
	key, err := s.publicKeyFor(ctx, parsed.Headers[0].KeyID)
	if err != nil {
		return Principal{}, err // the store failed; the token may be fine
	}
	if key == nil {
		return Principal{}, errAuth(errors.New("unknown kid"))
	}
	var std jwt.Claims
	var own accessClaims
	if err := parsed.Claims(key.key, &std, &own); err != nil {
		return Principal{}, errAuth(fmt.Errorf("verify: %w", err))
	}
	if std.Expiry == nil || std.IssuedAt == nil {
		return Principal{}, errAuth(errors.New("missing exp or iat"))
	}
	expected := jwt.Expected{Issuer: s.cfg.Issuer, AnyAudience: jwt.Audience{s.cfg.Audience}, Time: now}
	if err := std.ValidateWithLeeway(expected, leeway); err != nil {
		return Principal{}, errAuth(fmt.Errorf("claims: %w", err))
	}
	if own.Type != tokenType || std.Subject == "" || own.UserID != std.Subject || own.SessionID == "" {
		return Principal{}, errAuth(errors.New("not an access token"))
	}
	return Principal{UserID: std.Subject, Email: own.Email, OrgID: own.OrgID, SessionID: own.SessionID}, nil
}
