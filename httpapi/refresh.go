package httpapi

import (
	"net/http"
	"strings"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
	"github.com/flashbacktech/flashauth/refresh"
	"github.com/flashbacktech/flashauth/seal"
)

// handleGitHubRefresh serves POST /auth/github/refresh (docs/api.md).
func (s *server) handleGitHubRefresh() http.Handler {
	type request struct {
		RefreshToken tokenField `json:"refresh_token"`
	}
	type response struct {
		Success               bool   `json:"success"`
		Token                 string `json:"token"`
		AccessToken           string `json:"accessToken"`
		RefreshToken          string `json:"refreshToken"`
		ExpiresAt             int64  `json:"expiresAt"`
		ExpiresIn             int64  `json:"expiresIn"`
		RefreshTokenExpiresAt int64  `json:"refreshTokenExpiresAt"`
		TokenType             string `json:"tokenType"`
		Scope                 string `json:"scope"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		token, ok := s.readToken(w, r, &req, func() tokenField { return req.RefreshToken }, "refresh_token", "github")
		if !ok {
			return
		}
		uid, err := s.optionalUser(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		res, err := s.Refresh.Refresh(r.Context(), token, refresh.Caller{UserID: uid})
		owner := res.Owner
		if owner == "" {
			owner = uid
		}
		s.auditRefresh(r, owner, res.Replayed, err)
		s.metrics.refreshOutcome(res.Replayed, err)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		t := res.Token
		noStore(w)
		writeJSON(w, http.StatusOK, response{
			Success:               true,
			Token:                 t.AccessToken,
			AccessToken:           t.AccessToken,
			RefreshToken:          t.RefreshToken,
			ExpiresAt:             flashauth.UnixMilli(t.ExpiresAt),
			ExpiresIn:             t.ExpiresIn,
			RefreshTokenExpiresAt: flashauth.UnixMilli(t.RefreshTokenExpiresAt),
			TokenType:             t.TokenType,
			Scope:                 t.Scope,
		})
	})
}

// bearer returns the Bearer credential of r, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// optionalUser returns the user of a valid flashauth access token, or "".
// Clients keep sending stale or foreign Bearers (docs/api.md), so an invalid
// one is ignored here, never a reason to reject; only a failure to check
// (the store is down) is an error.
func (s *server) optionalUser(r *http.Request) (string, error) {
	b := bearer(r)
	if b == "" {
		return "", nil
	}
	p, err := s.Sessions.Authenticate(r.Context(), b)
	if flashauth.ErrorCode(err) == flashauth.CodeAuthRequired {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return p.UserID, nil
}

// auditRefresh records the outcome of a GitHub refresh.
func (s *server) auditRefresh(r *http.Request, userID string, replayed bool, err error) {
	outcome := audit.OutcomeOK
	switch {
	case err != nil:
		outcome = outcomeOf(err)
	case replayed:
		outcome = audit.OutcomeReplayed
	}
	s.audit(r, flashauth.AuditEvent{Type: audit.TypeGitHubRefresh, Outcome: outcome, UserID: userID})
}

// readToken decodes r's body into req, validates the token field pick
// returns (named field in messages) and applies the per-token limit in
// namespace ns ("" for none). When it returns false it has answered.
func (s *server) readToken(w http.ResponseWriter, r *http.Request, req any, pick func() tokenField, field, ns string) (string, bool) {
	if err := decodeJSON(w, r, req); err != nil {
		s.fail(w, r, err)
		return "", false
	}
	token := pick().String()
	if !refresh.ValidToken(token) {
		s.fail(w, r, flashauth.Errorf(flashauth.CodeInvalidRequest,
			"%s must be a non-empty string of at most %d printable characters without spaces.", field, refresh.MaxTokenLength))
		return "", false
	}
	if ns == "" {
		return token, true
	}
	if ok, wait := s.limits.token.Allow(ns + "\x00" + string(seal.Hash(token))); !ok {
		s.metrics.rateLimited.WithLabelValues("token").Inc()
		s.fail(w, r, rateLimited(wait))
		return "", false
	}
	return token, true
}
