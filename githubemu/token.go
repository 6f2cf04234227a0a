package githubemu

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxTokenBody bounds what the token endpoint reads.
const maxTokenBody = 64 << 10

// readTokenParams merges the query string with the body: form-urlencoded,
// or a JSON object of strings (GitHub's Rails front end takes both). Body
// values win over query values. GitHub ignores HTTP Basic client
// authentication here, and so does the emulator.
func readTokenParams(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenBody)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		if err := r.ParseForm(); err != nil {
			return r.URL.Query(), err
		}
		return r.Form, nil
	}
	params := r.URL.Query()
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return params, fmt.Errorf("token request body: %w", err)
	}
	for k, v := range body {
		switch v := v.(type) {
		case string:
			params.Set(k, v)
		case float64:
			params.Set(k, strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	return params, nil
}

// serveToken answers POST /login/oauth/access_token.
func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request, p url.Values) {
	f := negotiate(r.Header.Get("Accept"))
	if f == formatNotAcceptable {
		writeNotAcceptable(w)
		return
	}
	if !e.clientOK(p.Get("client_id"), p.Get("client_secret")) {
		e.log.Warn("githubemu: token request with incorrect client credentials")
		writeOAuthError(w, f, ErrCodeIncorrectCredentials)
		return
	}
	var (
		g    *grant
		code string
	)
	switch gt := p.Get("grant_type"); gt {
	case "refresh_token":
		g, code = e.refreshGrant(p.Get("refresh_token"))
	case "", "authorization_code":
		g, code = e.exchangeCode(p.Get("code"), p.Get("redirect_uri"), p.Get("code_verifier"))
	default:
		code = ErrCodeUnsupportedGrantType
	}
	if code != "" {
		e.log.Debug("githubemu: token request refused", "error", code)
		writeOAuthError(w, f, code)
		return
	}
	writeOAuth(w, f, e.tokenFields(g))
}

// clientOK compares the credentials in constant time.
func (e *Emulator) clientOK(id, secret string) bool {
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(e.cfg.ClientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(e.cfg.ClientSecret))
	return idOK&secretOK == 1
}

// tokenFields is the success body, in GitHub's field order.
func (e *Emulator) tokenFields(g *grant) []field {
	if !e.expiring {
		return []field{{"access_token", g.accessToken}, {"scope", ""}, {"token_type", "bearer"}}
	}
	seconds := func(d time.Duration) any {
		n := int64(d / time.Second)
		if e.cfg.StringExpiresIn {
			return strconv.FormatInt(n, 10)
		}
		return n
	}
	return []field{
		{"access_token", g.accessToken},
		{"expires_in", seconds(e.cfg.AccessTokenTTL)},
		{"refresh_token", g.refreshToken},
		{"refresh_token_expires_in", seconds(e.cfg.RefreshTokenTTL)},
		{"scope", ""},
		{"token_type", "bearer"},
	}
}

// refreshGrant rotates the grant of a refresh token: the old refresh token
// and the old access token die with it, with no grace period, so of two
// concurrent refreshes exactly one wins.
func (e *Emulator) refreshGrant(token string) (*grant, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g, ok := e.refresh[token]
	if !ok || token == "" {
		return nil, ErrCodeBadRefreshToken
	}
	e.killLocked(g)
	now := e.clock.Now()
	if !now.Before(g.refreshExpires) {
		return nil, ErrCodeBadRefreshToken
	}
	return e.issueLocked(g.userID, now), ""
}

// exchangeCode trades an authorization code for a grant. A code is spent by
// the first attempt that presents it with valid client credentials, whether
// or not that attempt succeeds: a guessed PKCE verifier gets one try.
func (e *Emulator) exchangeCode(code, redirectURI, verifier string) (*grant, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.codes[code]
	if !ok || code == "" {
		return nil, ErrCodeBadVerificationCode
	}
	delete(e.codes, code)
	now := e.clock.Now()
	if !now.Before(c.expires) {
		return nil, ErrCodeBadVerificationCode
	}
	if redirectURI != "" && (c.redirectURI != "" && redirectURI != c.redirectURI ||
		!e.registered(redirectURI)) {
		return nil, ErrCodeRedirectURIMismatch
	}
	if c.challenge != "" && !verifierMatches(verifier, c.challenge) {
		return nil, ErrCodeBadVerificationCode
	}
	u, ok := e.users[c.userID]
	if !ok {
		return nil, ErrCodeBadVerificationCode
	}
	if e.cfg.RejectUnverifiedEmail && !u.hasVerifiedPrimary() {
		return nil, ErrCodeUnverifiedUserEmail
	}
	return e.issueLocked(c.userID, now), ""
}

// verifierMatches checks a PKCE verifier (RFC 7636: 43 to 128 unreserved
// characters) against an S256 challenge.
func verifierMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		c := verifier[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return subtle.ConstantTimeCompare([]byte(S256Challenge(verifier)), []byte(challenge)) == 1
}

// S256Challenge returns the PKCE S256 challenge of verifier, for tests and
// tools that drive a login.
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
