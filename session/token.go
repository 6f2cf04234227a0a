package session

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
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
	tok, err := s.signAccess(r.signer, u, sessionID, now, exp, base64.RawURLEncoding.EncodeToString(jti[:]))
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, exp, nil
}

// signAccess signs the access token of u's session sessionID, issued at now,
// expiring at exp, with id jti: a compact JWS, EdDSA over k's header and
// the claims (see appendClaims), as go-jose signs it.
func (s *Service) signAccess(k *signingKey, u flashauth.User, sessionID string, now, exp time.Time, jti string) (string, error) {
	var buf [512]byte
	claims := s.appendClaims(buf[:0], u, sessionID, now, exp, jti)
	b64 := base64.RawURLEncoding
	tok := make([]byte, 0, len(k.header)+b64.EncodedLen(len(claims))+1+b64.EncodedLen(ed25519.SignatureSize))
	tok = append(tok, k.header...)
	tok = b64.AppendEncode(tok, claims)
	sig := ed25519.Sign(k.priv, tok)
	tok = append(tok, '.')
	tok = b64.AppendEncode(tok, sig)
	return string(tok), nil
}

// appendClaims appends the claims set of an access token: the registered
// claims (jwt.Claims: iss, sub, a single aud, exp, iat, jti) merged with
// accessClaims, keys in sorted order, an empty iss, sub or jti left out.
// It is the payload jwt.Signed(...).Claims(std).Claims(own).Serialize()
// signs, byte for byte, without that builder's round trip of each claims
// struct through JSON and a map. verify reads it with jwt.Claims and
// accessClaims.
func (s *Service) appendClaims(b []byte, u flashauth.User, sessionID string, now, exp time.Time, jti string) []byte {
	b = append(b, `{"aud":`...)
	b = appendClaimString(b, s.cfg.Audience) // one audience: a string, as jwt.Audience writes it
	b = append(b, `,"email":`...)
	b = appendClaimString(b, u.Email)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, exp.Unix(), 10)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, now.Unix(), 10)
	if s.cfg.Issuer != "" {
		b = append(b, `,"iss":`...)
		b = appendClaimString(b, s.cfg.Issuer)
	}
	if jti != "" {
		b = append(b, `,"jti":`...)
		b = appendClaimString(b, jti)
	}
	b = append(b, `,"orgId":`...)
	b = appendClaimString(b, u.OrgID)
	b = append(b, `,"sid":`...)
	b = appendClaimString(b, sessionID)
	if u.ID != "" {
		b = append(b, `,"sub":`...)
		b = appendClaimString(b, u.ID)
	}
	b = append(b, `,"type":`...)
	b = appendClaimString(b, tokenType)
	b = append(b, `,"userId":`...)
	b = appendClaimString(b, u.ID)
	return append(b, '}')
}

// appendClaimString appends s as a JSON string the way the claims
// builder's round trip left it: escaped as go-jose's encoder escapes (",
// \, control characters, <, >, &, U+2028, U+2029), and each byte that is
// not UTF-8 as U+FFFD itself (the encoder wrote \ufffd, which decoded to
// the rune, which it wrote back unescaped).
func appendClaimString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if 0x20 <= c && c != '\\' && c != '"' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = utf8.AppendRune(b, utf8.RuneError)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
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
