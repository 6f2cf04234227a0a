package github

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth"
)

func TestUser(t *testing.T) {
	tests := []struct {
		name string
		body string
		want flashauth.GitHubUser
	}{
		{
			name: "full",
			body: `{"login":"octocat","id":583231,"node_id":"MDQ6VXNlcjU4MzIzMQ==","avatar_url":"https://avatars.githubusercontent.com/u/583231?v=4",` +
				`"type":"User","name":"The Octocat","company":"@github","email":"octocat@github.com","plan":{"name":"free"}}`,
			want: flashauth.GitHubUser{ID: 583231, Login: "octocat", Name: "The Octocat", Email: "octocat@github.com",
				Company: "@github", AvatarURL: "https://avatars.githubusercontent.com/u/583231?v=4"},
		},
		{
			name: "null name, email and company",
			body: `{"login":"ghost","id":10137,"avatar_url":"https://avatars.githubusercontent.com/u/10137","name":null,"company":null,"email":null}`,
			want: flashauth.GitHubUser{ID: 10137, Login: "ghost", AvatarURL: "https://avatars.githubusercontent.com/u/10137"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := make(chan *http.Request, 1)
			c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen <- r.Clone(context.Background())
				w.Header().Set("Content-Type", jsonCT)
				_, _ = w.Write([]byte(tt.body))
			}))
			got, err := c.User(t.Context(), testAccess)
			if err != nil {
				t.Fatalf("User: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
			assertRESTRequest(t, <-seen, "/api/v3/user")
		})
	}
}

func TestEmails(t *testing.T) {
	seen := make(chan *http.Request, 1)
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Clone(context.Background())
		w.Header().Set("Content-Type", jsonCT)
		_, _ = w.Write([]byte(`[{"email":"octocat@github.com","verified":true,"primary":true,"visibility":"public"},` +
			`{"email":"octo@users.noreply.github.com","verified":true,"primary":false,"visibility":null}]`))
	}))
	got, err := c.Emails(t.Context(), testAccess)
	if err != nil {
		t.Fatalf("Emails: %v", err)
	}
	want := []flashauth.GitHubEmail{
		{Email: "octocat@github.com", Primary: true, Verified: true, Visibility: "public"},
		{Email: "octo@users.noreply.github.com", Verified: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("emails (-want +got):\n%s", diff)
	}
	assertRESTRequest(t, <-seen, "/api/v3/user/emails")
}

func assertRESTRequest(t *testing.T, r *http.Request, path string) {
	t.Helper()
	if r == nil {
		t.Fatal("no request reached the server")
	}
	if r.Method != http.MethodGet || r.URL.Path != path || r.URL.RawQuery != "" {
		t.Errorf("request = %s %s?%s, want GET %s", r.Method, r.URL.Path, r.URL.RawQuery, path)
	}
	for k, want := range map[string]string{
		"Authorization":        "Bearer " + testAccess,
		"Accept":               "application/vnd.github+json",
		"X-GitHub-Api-Version": "2022-11-28",
		"User-Agent":           "flashauth",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestRESTErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		kind       flashauth.UpstreamKind
		retryAfter time.Duration
		cause      error
	}{
		{name: "401 bad credentials", status: 401,
			body: `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`,
			kind: flashauth.UpstreamRejected, cause: errBadCredentials},
		{name: "403 primary rate limit with x-ratelimit-reset", status: 403,
			header: map[string]string{"X-Ratelimit-Limit": "5000", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": unixIn(42 * time.Second)},
			body:   `{"message":"API rate limit exceeded for user ID 1."}`,
			kind:   flashauth.UpstreamTransient, retryAfter: 42 * time.Second, cause: errRateLimited},
		{name: "403 secondary rate limit with retry-after", status: 403, header: map[string]string{"Retry-After": "30"},
			body: `{"message":"You have exceeded a secondary rate limit."}`,
			kind: flashauth.UpstreamTransient, retryAfter: 30 * time.Second, cause: errRateLimited},
		{name: "429 with x-ratelimit-reset", status: 429, header: map[string]string{"X-Ratelimit-Reset": unixIn(10 * time.Second)},
			kind: flashauth.UpstreamTransient, retryAfter: 10 * time.Second, cause: errRateLimited},
		{name: "403 without permission", status: 403, body: `{"message":"Resource not accessible by integration"}`,
			kind: flashauth.UpstreamBadResponse, cause: errUnexpected},
		{name: "404", status: 404, body: `{"message":"Not Found"}`, kind: flashauth.UpstreamBadResponse, cause: errUnexpected},
		{name: "503", status: 503, kind: flashauth.UpstreamTransient, cause: errServerError},
		{name: "HTML 200", status: 200, body: "<html>" + testAccess + "</html>", kind: flashauth.UpstreamBadResponse, cause: errMalformed},
	}
	for _, tt := range tests {
		for _, op := range []string{opUser, opEmails} {
			t.Run(tt.name+"/"+op, func(t *testing.T) {
				c, _ := newTestClient(t, reply(tt.status, tt.header, tt.body))
				err := everyCall(c)[op](t.Context())
				ue := wantUpstream(t, err, tt.kind, op)
				if ue.Status != tt.status || ue.RetryAfter != tt.retryAfter {
					t.Errorf("Status, RetryAfter = %d, %s; want %d, %s", ue.Status, ue.RetryAfter, tt.status, tt.retryAfter)
				}
				if !errors.Is(err, tt.cause) {
					t.Errorf("err = %v, want cause %v", err, tt.cause)
				}
			})
		}
	}
}

func TestRESTBadBodies(t *testing.T) {
	tests := []struct {
		name, op, body string
		cause          error
	}{
		{"user without id", opUser, `{"login":"octocat"}`, errNoUserID},
		{"user without login", opUser, `{"id":1}`, errNoLogin},
		{"user id as string", opUser, `{"id":"1","login":"octocat"}`, errMalformed},
		{"user is an array", opUser, `[]`, errMalformed},
		{"emails is an object", opEmails, `{"email":"a@b.c"}`, errMalformed},
		{"email entry without email", opEmails, `[{"primary":true,"verified":true}]`, errNoEmail},
		{"truncated emails", opEmails, `[{"email":"a@b.c","prim`, errMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, reply(http.StatusOK, map[string]string{"Content-Type": jsonCT}, tt.body))
			err := everyCall(c)[tt.op](t.Context())
			wantUpstream(t, err, flashauth.UpstreamBadResponse, tt.op)
			if !errors.Is(err, tt.cause) {
				t.Errorf("err = %v, want cause %v", err, tt.cause)
			}
		})
	}
}

func TestMalformedBearerIsNotSent(t *testing.T) {
	var calls atomic.Int32
	c, _ := newTestClient(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	for _, tok := range []string{"", "ghu_a\r\nX-Injected: 1", "ghu with space", "ghu_é"} {
		_, err := c.User(t.Context(), tok)
		wantUpstream(t, err, flashauth.UpstreamRejected, opUser)
		_, err = c.Emails(t.Context(), tok)
		wantUpstream(t, err, flashauth.UpstreamRejected, opEmails)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("server saw %d requests, want 0", n)
	}
}
