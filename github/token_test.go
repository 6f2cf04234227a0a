package github

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth"
)

const jsonCT = "application/json; charset=utf-8"

func TestRefreshTokenSuccess(t *testing.T) {
	tests := []struct {
		name string
		body string
		want flashauth.GitHubToken
	}{
		{
			name: "expiring token, numbers",
			body: `{"access_token":"` + newAccess + `","expires_in":28800,"refresh_token":"` + newRefresh +
				`","refresh_token_expires_in":15811200,"scope":"","token_type":"bearer"}`,
			want: flashauth.GitHubToken{AccessToken: newAccess, RefreshToken: newRefresh, TokenType: "bearer",
				ExpiresIn: 28800 * time.Second, RefreshTokenExpiresIn: 15811200 * time.Second},
		},
		{
			name: "expiring token, numeric strings",
			body: `{"access_token":"` + newAccess + `","expires_in":"28800","refresh_token":"` + newRefresh +
				`","refresh_token_expires_in":"15897600","scope":"","token_type":"bearer"}`,
			want: flashauth.GitHubToken{AccessToken: newAccess, RefreshToken: newRefresh, TokenType: "bearer",
				ExpiresIn: 28800 * time.Second, RefreshTokenExpiresIn: 15897600 * time.Second},
		},
		{
			name: "classic token without expiry fields",
			body: `{"access_token":"gho_classic16C7e42F292c6912E7710c838347Ae178B4a","scope":"repo,gist","token_type":"bearer"}`,
			want: flashauth.GitHubToken{AccessToken: "gho_classic16C7e42F292c6912E7710c838347Ae178B4a", TokenType: "bearer", Scope: "repo,gist"},
		},
		{
			name: "null and empty expiries mean no expiry, unknown fields ignored",
			body: `{"access_token":"ghu_x.y-z","expires_in":null,"refresh_token_expires_in":"","token_type":"bearer","extra":{"a":[1]}}`,
			want: flashauth.GitHubToken{AccessToken: "ghu_x.y-z", TokenType: "bearer"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, reply(http.StatusOK, map[string]string{"Content-Type": jsonCT}, tt.body))
			got, err := c.RefreshToken(t.Context(), testRefresh)
			if err != nil {
				t.Fatalf("RefreshToken: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("token (-want +got):\n%s", diff)
			}
		})
	}
}

// captured is what a handler saw of a request.
type captured struct {
	method, path, rawQuery string
	header                 http.Header
	form                   url.Values
	body                   string
}

func capture(t *testing.T, into chan<- captured, status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		form, err := url.ParseQuery(string(raw))
		if err != nil {
			t.Errorf("body is not a form: %v", err)
		}
		into <- captured{method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery, header: r.Header.Clone(), form: form, body: string(raw)}
		w.Header().Set("Content-Type", jsonCT)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// The default Transport's buffers are small (newTransport): a header line
// and a body longer than them, and a request longer than the write buffer,
// still go through whole.
func TestRefreshTokenThroughSmallBuffers(t *testing.T) {
	long := strings.Repeat("a", 3*transportReadBuffer)
	secret := strings.Repeat("s", 2*transportWriteBuffer)
	body := `{"access_token":"` + newAccess + `","refresh_token":"` + newRefresh + `","token_type":"bearer","scope":"` + long + `"}`
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("client_secret") != secret {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Security-Policy", long)
		w.Header().Set("Content-Type", jsonCT)
		_, _ = io.WriteString(w, body)
	}), func(c *Config) { c.ClientSecret = secret })
	got, err := c.RefreshToken(t.Context(), testRefresh)
	if err != nil {
		t.Fatalf("RefreshToken: %v", err)
	}
	if got.AccessToken != newAccess || got.RefreshToken != newRefresh || got.Scope != long {
		t.Fatalf("got %q / %q, scope of %d bytes; want the whole answer", got.AccessToken, got.RefreshToken, len(got.Scope))
	}
}

func TestTokenRequestShape(t *testing.T) {
	okBody := `{"access_token":"` + newAccess + `","token_type":"bearer"}`
	tests := []struct {
		name      string
		userAgent string
		call      func(*Client) error
		wantForm  url.Values
		wantUA    string
	}{
		{
			name: "refresh",
			call: func(c *Client) error { _, err := c.RefreshToken(context.Background(), testRefresh); return err },
			wantForm: url.Values{"client_id": {testClientID}, "client_secret": {testClientSecret},
				"grant_type": {"refresh_token"}, "refresh_token": {testRefresh}},
			wantUA: "flashauth",
		},
		{
			name: "exchange with redirect and verifier",
			call: func(c *Client) error {
				_, err := c.ExchangeCode(context.Background(), flashauth.CodeExchange{Code: testCode, RedirectURI: "https://app.example/cb?x=1", CodeVerifier: testVerifier})
				return err
			},
			wantForm: url.Values{"client_id": {testClientID}, "client_secret": {testClientSecret},
				"code": {testCode}, "redirect_uri": {"https://app.example/cb?x=1"}, "code_verifier": {testVerifier}},
			userAgent: "flashauth-test/1.0",
			wantUA:    "flashauth-test/1.0",
		},
		{
			name: "exchange, code only",
			call: func(c *Client) error {
				_, err := c.ExchangeCode(context.Background(), flashauth.CodeExchange{Code: testCode})
				return err
			},
			wantForm: url.Values{"client_id": {testClientID}, "client_secret": {testClientSecret}, "code": {testCode}},
			wantUA:   "flashauth",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := make(chan captured, 1)
			c, _ := newTestClient(t, capture(t, seen, http.StatusOK, okBody), func(cfg *Config) { cfg.UserAgent = tt.userAgent })
			if err := tt.call(c); err != nil {
				t.Fatalf("call: %v", err)
			}
			got := <-seen
			if got.method != http.MethodPost || got.path != "/login/oauth/access_token" {
				t.Errorf("request = %s %s, want POST /login/oauth/access_token", got.method, got.path)
			}
			if got.rawQuery != "" {
				t.Errorf("query string = %q, want none: secrets belong in the body", got.rawQuery)
			}
			for k, want := range map[string]string{
				"Accept":       "application/json",
				"Content-Type": "application/x-www-form-urlencoded",
				"User-Agent":   tt.wantUA,
			} {
				if v := got.header.Get(k); v != want {
					t.Errorf("%s = %q, want %q", k, v, want)
				}
			}
			for _, k := range []string{"Idempotency-Key", "X-Idempotency-Key", "Authorization"} {
				if v := got.header.Get(k); v != "" {
					t.Errorf("%s = %q, want none", k, v)
				}
			}
			if diff := cmp.Diff(tt.wantForm, got.form); diff != "" {
				t.Errorf("form (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefreshTokenErrors(t *testing.T) {
	html429 := "<!DOCTYPE html><html><head><title>Too Many Requests</title></head><body>Whoa there! " + newAccess + "</body></html>"
	htmlSecondary := "<html><body><h1>Access has been restricted</h1><p>You have exceeded a secondary rate limit.</p></body></html>"
	htmlBadGateway := "<html><head><title>502 Bad Gateway</title></head><body><center>Unicorn!</center></body></html>"
	inAWhile := testNow.Add(120 * time.Second).Format(http.TimeFormat)

	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		kind       flashauth.UpstreamKind
		code       string
		retryAfter time.Duration
		cause      error
	}{
		// Verdicts on the presented token.
		{name: "bad_refresh_token in a 200", status: 200, header: map[string]string{"Content-Type": jsonCT},
			body: `{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired.","error_uri":"https://docs.github.com"}`,
			kind: flashauth.UpstreamRejected, code: "bad_refresh_token"},
		{name: "bad_refresh_token in an RFC-style 400", status: 400, header: map[string]string{"Content-Type": jsonCT},
			body: `{"error":"bad_refresh_token"}`, kind: flashauth.UpstreamRejected, code: "bad_refresh_token"},
		{name: "incorrect_client_credentials", status: 200,
			body: `{"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect."}`,
			kind: flashauth.UpstreamConfig, code: "incorrect_client_credentials"},
		// Unknown OAuth errors.
		{name: "unsupported_grant_type", status: 200, body: `{"error":"unsupported_grant_type"}`,
			kind: flashauth.UpstreamBadResponse, code: "unsupported_grant_type", cause: errUnknownOAuth},
		{name: "unknown code in a 400", status: 400, body: `{"error":"something_new"}`,
			kind: flashauth.UpstreamBadResponse, cause: errUnexpected},
		{name: "error field that is not a code", status: 200, body: `{"error":"` + testRefresh + ` is <b>bad</b>"}`,
			kind: flashauth.UpstreamBadResponse, cause: errBadErrorCode},
		// Rate limits and server trouble.
		{name: "429 HTML page with Retry-After seconds", status: 429,
			header: map[string]string{"Content-Type": "text/html", "Retry-After": "60"}, body: html429,
			kind: flashauth.UpstreamTransient, retryAfter: 60 * time.Second, cause: errRateLimited},
		{name: "429 with Retry-After HTTP-date", status: 429,
			header: map[string]string{"Retry-After": inAWhile}, body: html429,
			kind: flashauth.UpstreamTransient, retryAfter: 120 * time.Second, cause: errRateLimited},
		{name: "403 secondary rate limit HTML page", status: 403,
			header: map[string]string{"Content-Type": "text/html"}, body: htmlSecondary,
			kind: flashauth.UpstreamTransient, cause: errRateLimited},
		{name: "403 with x-ratelimit headers", status: 403,
			header: map[string]string{"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": unixIn(300 * time.Second)},
			body:   `{"message":"API rate limit exceeded"}`,
			kind:   flashauth.UpstreamTransient, retryAfter: 300 * time.Second, cause: errRateLimited},
		{name: "403 that is no rate limit", status: 403, body: `{"message":"Forbidden"}`,
			kind: flashauth.UpstreamBadResponse, cause: errUnexpected},
		{name: "502 HTML", status: 502, header: map[string]string{"Content-Type": "text/html"}, body: htmlBadGateway,
			kind: flashauth.UpstreamTransient, cause: errServerError},
		{name: "503 with Retry-After", status: 503, header: map[string]string{"Retry-After": "7"},
			kind: flashauth.UpstreamTransient, retryAfter: 7 * time.Second, cause: errServerError},
		{name: "500 with JSON", status: 500, body: `{"message":"Server Error"}`,
			kind: flashauth.UpstreamTransient, cause: errServerError},
		{name: "absurd Retry-After is capped", status: 503, header: map[string]string{"Retry-After": "99999999999999"},
			kind: flashauth.UpstreamTransient, retryAfter: maxRetryAfter, cause: errServerError},
		{name: "Retry-After in the past", status: 429, header: map[string]string{"Retry-After": testNow.Add(-time.Hour).Format(http.TimeFormat)},
			kind: flashauth.UpstreamTransient, cause: errRateLimited},
		// Answers that cannot be understood.
		{name: "truncated JSON", status: 200, header: map[string]string{"Content-Type": jsonCT},
			body: `{"access_token":"` + newAccess + `","refresh_tok`, kind: flashauth.UpstreamBadResponse, cause: errMalformed},
		{name: "form-encoded 200", status: 200, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			body: "access_token=" + newAccess + "&scope=&token_type=bearer", kind: flashauth.UpstreamBadResponse, cause: errMalformed},
		{name: "HTML 200", status: 200, header: map[string]string{"Content-Type": "text/html"},
			body: "<html><body>Sign in " + newRefresh + "</body></html>", kind: flashauth.UpstreamBadResponse, cause: errMalformed},
		{name: "JSON array", status: 200, body: `["` + newAccess + `"]`, kind: flashauth.UpstreamBadResponse, cause: errMalformed},
		{name: "access_token of the wrong type", status: 200, body: `{"access_token":12345}`, kind: flashauth.UpstreamBadResponse, cause: errMalformed},
		{name: "missing access_token", status: 200, body: `{"token_type":"bearer","scope":""}`,
			kind: flashauth.UpstreamBadResponse, cause: errNoAccessToken},
		{name: "empty body", status: 200, kind: flashauth.UpstreamBadResponse, cause: errMalformed},
		{name: "negative expires_in", status: 200, body: `{"access_token":"` + newAccess + `","expires_in":-1}`,
			kind: flashauth.UpstreamBadResponse, cause: errBadExpiry},
		{name: "non-numeric expires_in", status: 200, body: `{"access_token":"` + newAccess + `","expires_in":"` + newRefresh + `"}`,
			kind: flashauth.UpstreamBadResponse, cause: errBadExpiry},
		{name: "fractional expires_in", status: 200, body: `{"access_token":"` + newAccess + `","refresh_token_expires_in":1.5}`,
			kind: flashauth.UpstreamBadResponse, cause: errBadExpiry},
		{name: "406 for a wrong Accept", status: 406, body: `{"message":"Must accept 'json'"}`,
			kind: flashauth.UpstreamBadResponse, cause: errUnexpected},
		{name: "404", status: 404, body: "Not Found", kind: flashauth.UpstreamBadResponse, cause: errUnexpected},
		{name: "422", status: 422, body: `{"message":"Unprocessable"}`, kind: flashauth.UpstreamBadResponse, cause: errUnexpected},
		{name: "201 is not 200", status: 201, body: `{"access_token":"` + newAccess + `"}`,
			kind: flashauth.UpstreamBadResponse, cause: errUnexpected},
		{name: "oversized 200", status: 200, body: `{"access_token":"` + strings.Repeat("a", maxBodyBytes) + `"}`,
			kind: flashauth.UpstreamBadResponse, cause: errTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, reply(tt.status, tt.header, tt.body))
			tok, err := c.RefreshToken(t.Context(), testRefresh)
			ue := wantUpstream(t, err, tt.kind, opRefresh)
			if tok != (flashauth.GitHubToken{}) {
				t.Errorf("token = %+v, want zero with an error", tok)
			}
			if ue.OAuthCode != tt.code {
				t.Errorf("OAuthCode = %q, want %q", ue.OAuthCode, tt.code)
			}
			if ue.Status != tt.status {
				t.Errorf("Status = %d, want %d", ue.Status, tt.status)
			}
			if ue.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %s, want %s", ue.RetryAfter, tt.retryAfter)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("err = %v, want cause %v", err, tt.cause)
			}
			if strings.Contains(err.Error(), "<") || strings.Contains(err.Error(), "error_description") {
				t.Errorf("err = %q quotes the upstream body", err)
			}
		})
	}
}

// unixIn is x-ratelimit-reset for testNow + d.
func unixIn(d time.Duration) string {
	return strconv.FormatInt(testNow.Add(d).Unix(), 10)
}

func TestExchangeCodeErrors(t *testing.T) {
	tests := []struct {
		code string
		kind flashauth.UpstreamKind
	}{
		{"bad_verification_code", flashauth.UpstreamRejected},
		{"redirect_uri_mismatch", flashauth.UpstreamRejected},
		{"unverified_user_email", flashauth.UpstreamRejected},
		{"incorrect_client_credentials", flashauth.UpstreamConfig},
		{"access_denied", flashauth.UpstreamBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			c, _ := newTestClient(t, reply(http.StatusOK, map[string]string{"Content-Type": jsonCT},
				`{"error":"`+tt.code+`","error_description":"whatever","error_uri":"https://docs.github.com/"}`))
			_, err := c.ExchangeCode(t.Context(), flashauth.CodeExchange{Code: testCode, CodeVerifier: testVerifier})
			ue := wantUpstream(t, err, tt.kind, opExchange)
			if ue.OAuthCode != tt.code || ue.Status != http.StatusOK {
				t.Errorf("OAuthCode, Status = %q, %d, want %q, 200", ue.OAuthCode, ue.Status, tt.code)
			}
		})
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	c, _ := newTestClient(t, mux)
	_, err := c.RefreshToken(t.Context(), testRefresh)
	ue := wantUpstream(t, err, flashauth.UpstreamBadResponse, opRefresh)
	if ue.Status != http.StatusTemporaryRedirect {
		t.Errorf("Status = %d, want 307", ue.Status)
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("redirect followed %d times, want 0", n)
	}
}

// A refresh's body is the form url.Values encodes, byte for byte, whatever
// the credentials hold: its constant part is encoded once.
func TestRefreshFormEncoding(t *testing.T) {
	const id, secret, token = "Iv1.a+b/c", "s&e=c r%et", "ghr_a+b/c=d&e f%g"
	seen := make(chan captured, 1)
	c, _ := newTestClient(t, capture(t, seen, http.StatusOK, `{"access_token":"`+newAccess+`"}`), func(cfg *Config) {
		cfg.ClientID, cfg.ClientSecret = id, secret
	})
	if _, err := c.RefreshToken(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	want := url.Values{"client_id": {id}, "client_secret": {secret}, "grant_type": {"refresh_token"}, "refresh_token": {token}}.Encode()
	if got := (<-seen).body; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
}
