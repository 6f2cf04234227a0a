package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/refresh"
	"github.com/flashbacktech/flashauth/session"
)

// handleGitHubRefresh serves POST /auth/github/refresh (docs/api.md). The
// refresh and its answer are in refreshGitHub, so that a request waiting its
// turn (admit) parks on this function's small frame: see admission.
func (s *server) handleGitHubRefresh() http.Handler {
	type request struct {
		RefreshToken tokenField `json:"refresh_token"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		token, ok := s.readToken(w, r, &req, func() tokenField { return req.RefreshToken }, "refresh_token")
		if !ok {
			return
		}
		p, err := s.optionalUser(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		// The session travels with the request: the audit rows the refresh
		// records name it.
		if p.SessionID != "" {
			r = r.WithContext(withSession(r.Context(), p.SessionID))
		}
		done, ok := s.admission.admit(r)
		if !ok {
			return
		}
		defer done()
		s.refreshGitHub(w, r, token, p.UserID)
	})
}

// refreshGitHub refreshes token for the caller userID ("" when anonymous)
// and answers.
func (s *server) refreshGitHub(w http.ResponseWriter, r *http.Request, token, userID string) {
	type response struct {
		tokenAnswer
		ExpiresIn             int64  `json:"expiresIn"`
		RefreshTokenExpiresAt int64  `json:"refreshTokenExpiresAt"`
		TokenType             string `json:"tokenType"`
		Scope                 string `json:"scope"`
	}
	res, err := s.Refresh.Refresh(r.Context(), token, refresh.Caller{UserID: userID})
	s.metrics.refreshOutcome(res.Replayed, res.Joined, err)
	if err != nil {
		s.metrics.limitedBy("token", err)
		s.fail(w, r, err)
		return
	}
	t := res.Token
	noStore(w)
	writeJSON(w, http.StatusOK, response{
		tokenAnswer:           newTokenAnswer(t.AccessToken, t.RefreshToken, t.ExpiresAt),
		ExpiresIn:             t.ExpiresIn,
		RefreshTokenExpiresAt: flashauth.UnixMilli(t.RefreshTokenExpiresAt),
		TokenType:             t.TokenType,
		Scope:                 t.Scope,
	})
}

// tokenAnswer is what both refresh answers (POST /auth/github/refresh,
// POST /user/refresh) begin with: the new access token - also as token,
// the name older clients read - the new refresh token and the access
// token's expiry in ms (0: does not expire).
type tokenAnswer struct {
	Success      bool   `json:"success"`
	Token        string `json:"token"`
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	ExpiresAt    int64  `json:"expiresAt"`
}

func newTokenAnswer(access, refresh string, expiresAt time.Time) tokenAnswer {
	return tokenAnswer{Success: true, Token: access, AccessToken: access, RefreshToken: refresh, ExpiresAt: flashauth.UnixMilli(expiresAt)}
}

// bearer returns the Bearer credential of r, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// optionalUser returns the principal of a valid flashauth access token, or
// the zero Principal. Clients keep sending stale or foreign Bearers
// (docs/api.md), so an invalid one is ignored here, never a reason to
// reject; only a failure to check (the store is down) is an error.
func (s *server) optionalUser(r *http.Request) (session.Principal, error) {
	b := bearer(r)
	if b == "" {
		return session.Principal{}, nil
	}
	p, err := s.Sessions.Authenticate(r.Context(), b)
	if flashauth.ErrorCode(err) == flashauth.CodeAuthRequired {
		return session.Principal{}, nil
	}
	if err != nil {
		return session.Principal{}, err
	}
	return p, nil
}

// readToken decodes r's body into req and validates the token field pick
// returns (named field in messages). When it returns false it has answered.
//
// The per-token rate limit is not applied here: it is charged by the ledger
// only when a request is about to claim the token and do the work (see
// ledger.Options.BeforeClaim), so callers that join an attempt in flight or
// replay its outcome never spend or trip it.
func (s *server) readToken(w http.ResponseWriter, r *http.Request, req any, pick func() tokenField, field string) (string, bool) {
	if err := decodeJSON(w, r, req); err != nil {
		s.fail(w, r, err)
		return "", false
	}
	token := pick().String()
	if !flashauth.ValidToken(token, flashauth.MaxTokenLength) {
		s.fail(w, r, flashauth.Errorf(flashauth.CodeInvalidRequest,
			"%s must be a non-empty string of at most %d printable characters without spaces.", field, flashauth.MaxTokenLength))
		return "", false
	}
	return token, true
}
