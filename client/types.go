package client

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Token is a GitHub user token pair as flashauth hands it out. The JSON tags
// are for callers that persist it; the wire format is flashauth's.
type Token struct {
	// AccessToken is the GitHub access token (ghu_...).
	AccessToken string `json:"access_token"`
	// RefreshToken is the GitHub refresh token (ghr_...); empty for tokens
	// that do not expire.
	RefreshToken string `json:"refresh_token,omitempty"`
	// TokenType is GitHub's token_type, "bearer".
	TokenType string `json:"token_type,omitempty"`
	// Scope is GitHub's scope (empty for GitHub App user tokens).
	Scope string `json:"scope,omitempty"`
	// Expiry is when AccessToken expires; zero: never.
	Expiry time.Time `json:"expiry,omitzero"`
	// RefreshTokenExpiry is when RefreshToken expires; zero: never or
	// unknown (a sign-in answer does not say).
	RefreshTokenExpiry time.Time `json:"refresh_token_expiry,omitzero"`
}

// OAuth2 returns t as an *oauth2.Token, for oauth2.NewClient and friends.
func (t Token) OAuth2() *oauth2.Token {
	typ := t.TokenType
	if typ == "" {
		typ = "bearer"
	}
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: typ, RefreshToken: t.RefreshToken, Expiry: t.Expiry}
}

// Session is a flashauth session as its owner holds it: the access token
// (an EdDSA JWT for GET /token, DELETE /token/{id} and Bearer use) and the
// session refresh token that renews it.
type Session struct {
	// ID is the session id (tokenId), the one DELETE /token/{id} takes.
	ID string `json:"id"`
	// AccessToken is the flashauth access JWT.
	AccessToken string `json:"access_token"`
	// AccessTokenExpiry is when AccessToken expires. After a sign-in it is
	// read from the JWT's exp claim, unverified: good for deciding when to
	// refresh, not for trusting the token.
	AccessTokenExpiry time.Time `json:"access_token_expiry,omitzero"`
	// RefreshToken is the opaque session refresh token for POST
	// /user/refresh and POST /user/logout.
	RefreshToken string `json:"refresh_token"`
	// RefreshTokenExpiry is when the session ends unless refreshed.
	RefreshTokenExpiry time.Time `json:"refresh_token_expiry,omitzero"`
}

// User is the signed-in user as flashauth describes it.
type User struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	ImageURL string `json:"image_url,omitempty"`
}

// SignInResult is the answer of POST /auth/github.
type SignInResult struct {
	Message  string
	Provider string // "GITHUB"
	User     User
	// Session is the flashauth session the sign-in opened.
	Session Session
	// GitHub is the user's GitHub token pair.
	GitHub Token
}

// SessionInfo is one active session of GET /token.
type SessionInfo struct {
	ID         string
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	// DeviceInfo is the JSON the client sent at sign-in; nil when none.
	DeviceInfo json.RawMessage
	IPAddress  string
	UserAgent  string
	Provider   string
	// Current is true for the session of the access token that asked.
	Current bool
}

// Authorization is the answer of GET /auth/github/authorize: where to send
// the user, and the one-time state GitHub will hand back.
type Authorization struct {
	URL   string
	State string
}

// JWKS is the set of public keys that verify flashauth access tokens.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is one Ed25519 public key (RFC 8037).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// Discovery is the part of the OpenID Connect discovery document that
// describes flashauth's access tokens.
type Discovery struct {
	Issuer            string   `json:"issuer"`
	JWKSURI           string   `json:"jwks_uri"`
	SigningAlgorithms []string `json:"id_token_signing_alg_values_supported"`
	Claims            []string `json:"claims_supported"`
}

// fromMillis converts the wire's milliseconds; 0 is the zero time ("does
// not expire").
func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// jwtExpiry reads the exp claim of a compact JWT without verifying it, or
// the zero time when there is none.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(parts[1]) > 8192 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var c struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil {
		return time.Time{}
	}
	n, err := c.Exp.Int64()
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}
