package client_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/flashbacktech/flashauth/client"
)

// A flashauth URL that answers a redirect (a misrouted proxy, an SSO gateway
// in front of it, a captive portal, or an attacker on a plain-http hop) must
// not make the client send a refresh token anywhere else: net/http re-sends
// a request's body on 307 and 308 to wherever Location points, any host.
// The client follows no redirect at all; the caller gets an error.
func TestRedirectsDoNotCarryTokensAway(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		leaked = append(leaked, r.Method+" "+r.URL.Path+" "+string(b)+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"success":true,"accessToken":"x","refreshToken":"y","expiresAt":1}`)
	}))
	defer elsewhere.Close()

	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+r.URL.Path, status)
		}))
		c, err := client.New(front.URL, client.WithHTTPClient(front.Client()))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := c.RefreshGitHub(ctx, client.RefreshGitHubRequest{RefreshToken: "ghr_secretrefreshtoken"}); err == nil {
			t.Errorf("%d: RefreshGitHub succeeded through a redirect", status)
		}
		if _, err := c.RefreshSession(ctx, "sessionrefreshsecret"); err == nil {
			t.Errorf("%d: RefreshSession succeeded through a redirect", status)
		}
		if _, err := c.Sessions(ctx, "accesssecret"); err == nil {
			t.Errorf("%d: Sessions succeeded through a redirect", status)
		}
		if err := c.Logout(ctx, "sessionrefreshsecret"); err == nil {
			t.Errorf("%d: Logout succeeded through a redirect", status)
		}
		front.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range leaked {
		if strings.Contains(l, "secret") {
			t.Errorf("a token followed the redirect to another server: %s", l)
		}
	}
}

// A refused base URL is quoted without the password it may carry.
func TestBaseURLErrorHidesPassword(t *testing.T) {
	for _, u := range []string{"ftp://user:hunter2-secret@auth.example", "https://user:hunter2-secret@auth.example/%zz"} {
		_, err := client.New(u)
		if err == nil {
			t.Fatalf("%s accepted", u)
		}
		if strings.Contains(err.Error(), "hunter2-secret") {
			t.Errorf("the error quotes the password: %v", err)
		}
	}
}
