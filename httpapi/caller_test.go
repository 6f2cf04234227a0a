package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/refresh"
	"github.com/flashbacktech/flashauth/session"
)

// bearerSessions authenticates three access tokens: "valid" (user u1,
// session s1), "stale" (no longer valid) and "storedown" (the check
// itself fails). Only Authenticate is used by the refresh endpoint.
type bearerSessions struct{ Sessions }

func (bearerSessions) Authenticate(_ context.Context, tok string) (session.Principal, error) {
	switch tok {
	case "valid":
		return session.Principal{UserID: "u1", SessionID: "s1"}, nil
	case "storedown":
		return session.Principal{}, flashauth.Errorf(flashauth.CodeStoreUnavailable, "store down")
	}
	return session.Principal{}, flashauth.Errorf(flashauth.CodeAuthRequired, "invalid access token")
}

// callerRecorder answers every refresh with err (or a token) and records
// what the handler passed it.
type callerRecorder struct {
	err     error
	calls   int
	caller  refresh.Caller
	session string // SessionID of the request context
}

func (c *callerRecorder) Refresh(ctx context.Context, _ string, caller refresh.Caller) (refresh.Result, error) {
	c.calls++
	c.caller, c.session = caller, flashauth.RequestInfoFrom(ctx).SessionID
	if c.err != nil {
		return refresh.Result{}, c.err
	}
	return refresh.Result{Token: refresh.Token{AccessToken: "ghu_new", RefreshToken: "ghr_new", TokenType: "bearer",
		ExpiresIn: 28800, ExpiresAt: time.UnixMilli(1764148800000)}}, nil
}

// POST /auth/github/refresh passes the caller a valid Bearer names to the
// refresh, ignores a stale or foreign Bearer, refuses when the Bearer cannot
// be checked, and maps the refresh's error code to its status.
func TestRefreshCallerFromBearer(t *testing.T) {
	tests := []struct {
		name        string
		bearer      string
		refreshErr  error
		wantStatus  int
		wantCode    string
		wantCalls   int
		wantUser    string
		wantSession string
	}{
		{name: "no bearer", wantStatus: http.StatusOK, wantCalls: 1},
		{name: "valid bearer", bearer: "valid", wantStatus: http.StatusOK, wantCalls: 1, wantUser: "u1", wantSession: "s1"},
		{name: "stale bearer is ignored", bearer: "stale", wantStatus: http.StatusOK, wantCalls: 1},
		{name: "bearer check fails", bearer: "storedown", wantStatus: http.StatusServiceUnavailable,
			wantCode: flashauth.CodeStoreUnavailable},
		{name: "owner mismatch", bearer: "valid", wantUser: "u1", wantSession: "s1", wantCalls: 1,
			refreshErr: flashauth.Errorf(flashauth.CodeTokenOwnerMismatch, "not yours"),
			wantStatus: http.StatusForbidden, wantCode: flashauth.CodeTokenOwnerMismatch},
		{name: "rejected by GitHub", wantCalls: 1,
			refreshErr: flashauth.Errorf(flashauth.CodeInvalidRefreshToken, "rejected"),
			wantStatus: http.StatusUnauthorized, wantCode: flashauth.CodeInvalidRefreshToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &callerRecorder{err: tc.refreshErr}
			h := NewServer(Config{Refresh: rec, Sessions: bearerSessions{}})
			req := httptest.NewRequest(http.MethodPost, "http://flashauth.test/auth/github/refresh",
				strings.NewReader(`{"refresh_token":"ghr_`+strings.Repeat("a", 76)+`"}`))
			req.Header.Set("Content-Type", "application/json")
			if tc.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.wantStatus, w.Body)
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if tc.wantCode != "" && body["error_code"] != tc.wantCode {
				t.Errorf("error_code = %v, want %s", body["error_code"], tc.wantCode)
			}
			if tc.wantCode == "" && (body["refreshToken"] != "ghr_new" || body["expiresAt"] != float64(1764148800000)) {
				t.Errorf("body = %s, want the refreshed token", w.Body)
			}
			if rec.calls != tc.wantCalls || rec.caller.UserID != tc.wantUser || rec.session != tc.wantSession {
				t.Errorf("refresh called %d times with user %q session %q; want %d, %q, %q",
					rec.calls, rec.caller.UserID, rec.session, tc.wantCalls, tc.wantUser, tc.wantSession)
			}
		})
	}
}
