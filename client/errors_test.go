package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/client"
	"github.com/flashbacktech/flashauth/githubemu"
)

// Error answers of the real server decode into one *client.Error: status,
// code, message, Retry-After and request id; the classifying helpers agree;
// the error text never holds the token that was sent.
func TestErrorDecoding(t *testing.T) {
	ctx := context.Background()
	rows := []struct {
		name      string
		setup     func(t *testing.T, s *server) string // returns the refresh token to send
		status    int
		code      string
		retry     bool // Retry-After expected and IsRetryable
		reauth    bool
		upstreams int64 // refreshes GitHub saw
	}{
		{"malformed token", func(*testing.T, *server) string { return "ghr_has space in it" }, 400, client.CodeInvalidRequest, false, false, 0},
		{"dead token", func(t *testing.T, s *server) string {
			tok := s.grant(t, "dead")
			s.emu.RevokeGrant(tok.RefreshToken)
			return tok.RefreshToken
		}, 401, client.CodeInvalidRefreshToken, false, true, 1},
		{"GitHub down", func(t *testing.T, s *server) string {
			s.emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Status: http.StatusServiceUnavailable, RetryAfter: 30 * time.Second})
			return s.grant(t, "down").RefreshToken
		}, 503, client.CodeUpstreamUnavailable, true, false, -1},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			tok := tc.setup(t, s)
			_, err := s.c.RefreshGitHub(ctx, client.RefreshGitHubRequest{RefreshToken: tok})
			e := asError(t, err)
			if e.Status != tc.status || e.Code != tc.code || e.Message == "" || e.RequestID == "" {
				t.Errorf("got %+v, want status %d code %s with a message and a request id", e, tc.status, tc.code)
			}
			if (e.RetryAfter > 0) != tc.retry || client.IsRetryable(err) != tc.retry {
				t.Errorf("RetryAfter %v, IsRetryable %v; want retryable=%v", e.RetryAfter, client.IsRetryable(err), tc.retry)
			}
			if client.IsReauthRequired(err) != tc.reauth || errors.Is(err, client.ErrReauthRequired) != tc.reauth {
				t.Errorf("IsReauthRequired = %v, want %v", client.IsReauthRequired(err), tc.reauth)
			}
			if client.Code(err) != tc.code {
				t.Errorf("Code = %q", client.Code(err))
			}
			if n := s.emu.Calls().TokenRefresh; tc.upstreams >= 0 && n != tc.upstreams {
				t.Errorf("GitHub saw %d refreshes, want %d", n, tc.upstreams)
			}
			if strings.Contains(err.Error(), tok) || !strings.Contains(err.Error(), tc.code) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error text %q: must name the code on one line and never hold the token", err)
			}
		})
	}
}

// The server's own rate limit answers 429 RATE_LIMITED with Retry-After.
func TestErrorRateLimited(t *testing.T) {
	s := newServer(t, func(c *app.Config) { c.RateIPPerMinute = 1 })
	var err error
	for range 20 {
		if _, err = s.c.RefreshGitHub(context.Background(), client.RefreshGitHubRequest{RefreshToken: "ghr_has space"}); client.Code(err) == client.CodeRateLimited {
			break
		}
	}
	e := asError(t, err)
	if e.Status != http.StatusTooManyRequests || e.Code != client.CodeRateLimited || e.RetryAfter < time.Second || !client.IsRetryable(err) {
		t.Fatalf("after 20 requests at 1/min: %+v", e)
	}
}

// Answers that are not flashauth's JSON (a proxy's page) keep status and
// Retry-After but none of the body; answers over the bound are refused.
func TestErrorForeignAndOversizedAnswers(t *testing.T) {
	const token = "ghr_secretsecretsecret"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/auth/github/refresh": // an HTML error page that echoes the request
			w.Header().Set("Retry-After", "7")
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html>bad gateway for " + token + "</html>"))
		case "/healthz": // endless
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"success":true,"pad":"`))
			_, _ = w.Write([]byte(strings.Repeat("x", client.MaxResponseBytes+10)))
		case "/readyz": // JSON of the right shape with a control character and a lowercase code
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"success":false,"error_code":"lower","message":"line one\nline two"}`))
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, client.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	_, err = c.RefreshGitHub(ctx, client.RefreshGitHubRequest{RefreshToken: token})
	e := asError(t, err)
	if e.Status != http.StatusBadGateway || e.Code != "" || e.Message != "Bad Gateway" || e.RetryAfter != 7*time.Second || !client.IsRetryable(err) {
		t.Errorf("proxy page: %+v", e)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("the error quotes the body: %q", err)
	}

	err = c.Healthz(ctx)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized answer: %v", err)
	}

	e = asError(t, c.Readyz(ctx))
	if e.Code != "" || e.Message != "Service Unavailable" {
		t.Errorf("a malformed code must not be believed: %+v", e)
	}
}

// Sign-in and session errors decode too: a bad code, a foreign access token.
func TestErrorDecodingSignInAndSessions(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	az, err := s.c.Authorize(ctx, client.AuthorizeRequest{RedirectURI: testRedirect})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.c.SignIn(ctx, client.SignInRequest{Code: "0123456789abcdef0123", State: az.State, RedirectURI: testRedirect})
	if e := asError(t, err); e.Status != 401 || e.Code != client.CodeInvalidCode {
		t.Errorf("unknown code: %+v", e)
	}
	_, err = s.c.Sessions(ctx, "not-a-jwt")
	if e := asError(t, err); e.Status != 401 || e.Code != client.CodeAuthRequired || client.IsReauthRequired(err) {
		t.Errorf("GET /token with garbage: %+v", e)
	}
	err = s.c.RevokeSession(ctx, "", "x")
	if e := asError(t, err); e.Code != client.CodeAuthRequired {
		t.Errorf("DELETE /token without a token: %+v", e)
	}
}
