package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/session"
)

// sessionTokenRequest is the body of /user/refresh and /user/logout: both
// spellings are in use by clients.
type sessionTokenRequest struct {
	RefreshTokenSnake tokenField `json:"refresh_token"`
	RefreshTokenCamel tokenField `json:"refreshToken"`
}

// field returns refresh_token, or refreshToken when that is absent.
func (q *sessionTokenRequest) field() tokenField {
	if q.RefreshTokenSnake.set {
		return q.RefreshTokenSnake
	}
	return q.RefreshTokenCamel
}

// handleSessionRefresh serves POST /user/refresh (docs/api.md). The
// rotation and its answer are in refreshSession, so that a request waiting
// its turn (admit) parks on this function's small frame: see admission.
func (s *server) handleSessionRefresh() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req sessionTokenRequest
		tok, ok := s.readToken(w, r, &req, req.field, "refresh_token (or refreshToken)")
		if !ok {
			return
		}
		done, ok := s.admission.admit(r)
		if !ok {
			return
		}
		defer done()
		s.refreshSession(w, r, tok)
	})
}

// refreshSession rotates the session refresh token tok and answers.
func (s *server) refreshSession(w http.ResponseWriter, r *http.Request, tok string) {
	type response struct {
		tokenAnswer
		TokenID          string `json:"tokenId"`
		SessionExpiresAt int64  `json:"sessionExpiresAt"`
	}
	iss, err := s.Sessions.Refresh(r.Context(), tok)
	if err != nil {
		s.metrics.limitedBy("token", err)
		s.fail(w, r, err)
		return
	}
	noStore(w)
	writeJSON(w, http.StatusOK, response{
		tokenAnswer:      newTokenAnswer(iss.AccessToken, iss.RefreshToken, iss.AccessExpiresAt),
		TokenID:          iss.SessionID,
		SessionExpiresAt: flashauth.UnixMilli(iss.SessionExpiresAt),
	})
}

// handleLogout serves POST /user/logout.
func (s *server) handleLogout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req sessionTokenRequest
		tok, ok := s.readToken(w, r, &req, req.field, "refresh_token (or refreshToken)")
		if !ok {
			return
		}
		if _, err := s.Sessions.Logout(r.Context(), tok); err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	})
}

// authenticated wraps handlers that need a valid access token, and applies
// the per-user limit.
func (s *server) authenticated(next func(w http.ResponseWriter, r *http.Request, p session.Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := bearer(r)
		if b == "" {
			s.fail(w, r, flashauth.Errorf(flashauth.CodeAuthRequired, "A valid access token is required."))
			return
		}
		p, err := s.Sessions.Authenticate(r.Context(), b)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if ok, wait := s.limits.user.Allow(p.UserID); !ok {
			s.metrics.rateLimited.WithLabelValues("user").Inc()
			s.fail(w, r, rateLimited(wait))
			return
		}
		next(w, r, p)
	})
}

// handleListTokens serves GET /token: the caller's active sessions.
func (s *server) handleListTokens() http.Handler {
	type item struct {
		ID         string          `json:"id"`
		CreatedAt  int64           `json:"createdAt"`
		LastUsedAt int64           `json:"lastUsedAt"`
		ExpiresAt  int64           `json:"expiresAt"`
		DeviceInfo json.RawMessage `json:"deviceInfo"`
		IPAddress  string          `json:"ipAddress"`
		UserAgent  string          `json:"userAgent"`
		Provider   string          `json:"provider"`
		Current    bool            `json:"current"`
	}
	type response struct {
		Success bool   `json:"success"`
		Tokens  []item `json:"tokens"`
	}
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p session.Principal) {
		list, err := s.Sessions.List(r.Context(), p)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		noStore(w) // device info, addresses and user agents are personal data
		out := response{Success: true, Tokens: make([]item, 0, len(list))}
		for _, ss := range list {
			di := ss.DeviceInfo
			if len(di) == 0 || !json.Valid(di) {
				di = json.RawMessage("null")
			}
			out.Tokens = append(out.Tokens, item{
				ID: ss.ID, CreatedAt: flashauth.UnixMilli(ss.CreatedAt), LastUsedAt: flashauth.UnixMilli(ss.LastUsedAt),
				ExpiresAt: flashauth.UnixMilli(ss.ExpiresAt), DeviceInfo: di, IPAddress: ss.IPAddress,
				UserAgent: ss.UserAgent, Provider: ss.Provider, Current: ss.ID == p.SessionID,
			})
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// handleRevokeToken serves DELETE /token/{tokenId}.
func (s *server) handleRevokeToken() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p session.Principal) {
		id := r.PathValue("tokenId")
		if err := s.Sessions.Revoke(r.Context(), p, id); err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	})
}

// handleJWKS serves GET /.well-known/jwks.json.
func (s *server) handleJWKS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := s.Sessions.JWKS(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(b)
	})
}
