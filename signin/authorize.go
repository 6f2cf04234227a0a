package signin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

// stateSealInfo is the seal context of PKCE verifiers kept with a state.
const stateSealInfo = "flashauth oauth state v1"

// AuthorizeResult is where to send the user to sign in, and the state that
// must come back with the code.
type AuthorizeResult struct {
	URL   string
	State string
}

// Authorize starts a GitHub login: a one-time state (256 random bits) and a
// PKCE S256 challenge whose verifier is kept with the state, sealed under a
// key derived from the state, so the database alone cannot complete the
// login. redirectURI is optional (GitHub then uses the registered callback).
func (s *Service) Authorize(ctx context.Context, redirectURI string) (AuthorizeResult, error) {
	if redirectURI != "" && !validRedirectURI(redirectURI) {
		return AuthorizeResult{}, flashauth.Errorf(flashauth.CodeInvalidRequest, "redirect_uri must be an absolute URL.")
	}
	if redirectURI != "" && !s.redirectAllowed(redirectURI) {
		return AuthorizeResult{}, flashauth.Errorf(flashauth.CodeInvalidRequest, "redirect_uri is not one of the allowed redirect URIs.")
	}
	state, err := random256()
	if err != nil {
		return AuthorizeResult{}, err
	}
	verifier, err := random256()
	if err != nil {
		return AuthorizeResult{}, err
	}
	hash := seal.Hash(state)
	sealed, err := seal.Seal([]byte(state), stateSealInfo, []byte(verifier), hash)
	if err != nil {
		return AuthorizeResult{}, fmt.Errorf("signin: seal verifier: %w", err)
	}
	now := s.cfg.Clock.Now()
	err = s.store.PutOAuthState(ctx, flashauth.OAuthState{
		Hash:        hash,
		Verifier:    sealed,
		RedirectURI: redirectURI,
		CreatedAt:   now,
		ExpiresAt:   now.Add(s.cfg.StateTTL),
	})
	if err != nil {
		return AuthorizeResult{}, fmt.Errorf("signin: put state: %w", err)
	}
	challenge := sha256.Sum256([]byte(verifier))
	q := s.authURL.Query()
	q.Set("client_id", s.cfg.ClientID)
	if redirectURI != "" {
		q.Set("redirect_uri", redirectURI)
	}
	if s.cfg.Scope != "" {
		q.Set("scope", s.cfg.Scope)
	}
	q.Set("state", state)
	q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(challenge[:]))
	q.Set("code_challenge_method", "S256")
	u := *s.authURL
	u.RawQuery = q.Encode()
	return AuthorizeResult{URL: u.String(), State: state}, nil
}

// random256 returns 256 random bits, base64url: 43 characters, which is
// also a valid PKCE verifier.
func random256() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("signin: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
