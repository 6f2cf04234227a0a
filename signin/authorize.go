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

// AuthorizeRequest starts a login.
type AuthorizeRequest struct {
	// RedirectURI is optional (GitHub then uses the registered callback).
	RedirectURI string
	// WithoutPKCE leaves the PKCE challenge out of the URL, for clients that
	// never send the state back (the app compares it itself): their code is
	// then exchanged without a verifier. Refused when Config.RequirePKCE.
	WithoutPKCE bool
}

// AuthorizeResult is where to send the user to sign in, and the state that
// must come back with the code.
type AuthorizeResult struct {
	URL   string
	State string
}

// Authorize starts a GitHub login: a one-time state (256 random bits) and a
// PKCE S256 challenge whose verifier is kept with the state, sealed under a
// key derived from the state, so the database alone cannot complete the
// login. Without PKCE the state is kept all the same (with an empty
// verifier), so a client that does send it back has it checked.
func (s *Service) Authorize(ctx context.Context, req AuthorizeRequest) (AuthorizeResult, error) {
	redirectURI := req.RedirectURI
	if req.WithoutPKCE && s.cfg.RequirePKCE {
		return AuthorizeResult{}, flashauth.Errorf(flashauth.CodeInvalidRequest, "pkce=false is not allowed here: every sign-in uses PKCE and must send its state back.")
	}
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
	var verifier string
	if !req.WithoutPKCE {
		if verifier, err = random256(); err != nil {
			return AuthorizeResult{}, err
		}
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
	q := s.authURL.Query()
	q.Set("client_id", s.cfg.ClientID)
	if redirectURI != "" {
		q.Set("redirect_uri", redirectURI)
	}
	if s.cfg.Scope != "" {
		q.Set("scope", s.cfg.Scope)
	}
	q.Set("state", state)
	if verifier != "" {
		challenge := sha256.Sum256([]byte(verifier))
		q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(challenge[:]))
		q.Set("code_challenge_method", "S256")
	}
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
