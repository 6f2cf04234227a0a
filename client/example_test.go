package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/client"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/logging"
)

// demo is a flashauth in front of the GitHub emulator, for the examples: the
// real app on SQLite in a temporary directory.
type demo struct {
	URL       string // flashauth
	GitHubURL string // the emulator
	Token     client.Token
	userID    int64
	emu       *githubemu.Emulator
	clock     *testkit.Clock
	close     []func()
}

func startDemo() *demo {
	d := &demo{clock: testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	d.emu = githubemu.New(githubemu.Config{ClientID: testClientID, ClientSecret: testClientSecret, Clock: d.clock})
	emuSrv := httptest.NewServer(d.emu)
	dir, err := os.MkdirTemp("", "flashauth-example-")
	if err != nil {
		log.Fatal(err)
	}
	a, err := app.New(context.Background(), app.Config{
		DatabaseURL: "sqlite:" + filepath.Join(dir, "flashauth.db"), ClientID: testClientID, ClientSecret: testClientSecret,
		GitHubURL: emuSrv.URL, GitHubAPIURL: emuSrv.URL, ReplayWindow: time.Minute, UpstreamTimeout: 2 * time.Second,
		RefreshAuth: "compat", SessionAccessTTL: time.Hour, SessionTTL: 720 * time.Hour, ReuseInterval: 10 * time.Second,
		KeyRotation: 720 * time.Hour, SecretKey: []byte(strings.Repeat("k", 32)),
	}, logging.New(&testkit.SyncBuffer{}, "json", 0), d.clock)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler)
	d.URL, d.GitHubURL = srv.URL, emuSrv.URL
	u := d.emu.AddUser(githubemu.User{Login: "octocat", Emails: []githubemu.Email{{Email: "octocat@example.com", Primary: true, Verified: true}}})
	d.userID = u.ID
	g, err := d.emu.MintGrant(u.ID)
	if err != nil {
		log.Fatal(err)
	}
	d.Token = client.Token{AccessToken: g.AccessToken, RefreshToken: g.RefreshToken, Expiry: d.clock.Now().Add(g.ExpiresIn)}
	d.close = []func(){srv.Close, a.Close, d.emu.Close, emuSrv.Close, func() { os.RemoveAll(dir) }}
	return d
}

func (d *demo) Close() {
	for _, f := range d.close {
		f()
	}
}

// approve does what the user does at GitHub's authorize page, and returns
// the code and state GitHub redirects with.
func (d *demo) approve(authorizeURL string) (code, state string) {
	u, _ := url.Parse(authorizeURL)
	q := u.Query()
	code, err := d.emu.CompleteLogin(githubemu.LoginParams{ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"),
		State: q.Get("state"), CodeChallenge: q.Get("code_challenge"), CodeChallengeMethod: q.Get("code_challenge_method"), UserID: d.userID})
	if err != nil {
		log.Fatal(err)
	}
	return code, q.Get("state")
}

// A token source keeps a GitHub token fresh through flashauth and hands
// every rotated pair to the save function before using it.
func ExampleGitHubTokenSource() {
	d := startDemo()
	defer d.Close()
	c, err := client.New(d.URL)
	if err != nil {
		log.Fatal(err)
	}
	var stored client.Token // stands in for a file or a database row
	save := func(t client.Token) error {
		stored = t
		return nil
	}
	ts := client.GitHubTokenSource(context.Background(), c, d.Token, save, client.WithClock(d.clock.Now))

	tok, _ := ts.Token()
	fmt.Println("first token is the initial one:", tok.AccessToken == d.Token.AccessToken)

	d.clock.Advance(8 * time.Hour) // the access token expires
	tok, err = ts.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("refreshed:", tok.AccessToken != d.Token.AccessToken)
	fmt.Println("saved before use:", stored.AccessToken == tok.AccessToken && stored.RefreshToken != d.Token.RefreshToken)
	// Output:
	// first token is the initial one: true
	// refreshed: true
	// saved before use: true
}

// The source plugs into golang.org/x/oauth2: this HTTP client sends a valid
// GitHub token with every request.
func ExampleGitHubTokenSource_oauth2() {
	d := startDemo()
	defer d.Close()
	c, _ := client.New(d.URL)
	ts := client.GitHubTokenSource(context.Background(), c, d.Token, func(client.Token) error { return nil }, client.WithClock(d.clock.Now))
	hc := oauth2.NewClient(context.Background(), ts)

	req, _ := http.NewRequest(http.MethodGet, d.GitHubURL+"/user", nil)
	req.Header.Set("User-Agent", "example")
	resp, err := hc.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var user struct{ Login string }
	_ = json.NewDecoder(resp.Body).Decode(&user)
	fmt.Println(resp.StatusCode, user.Login)
	// Output: 200 octocat
}

// Errors are *client.Error; a dead refresh token means signing in again.
func ExampleError() {
	d := startDemo()
	defer d.Close()
	c, _ := client.New(d.URL)
	ctx := context.Background()
	if _, err := c.RefreshGitHub(ctx, client.RefreshGitHubRequest{RefreshToken: d.Token.RefreshToken}); err != nil {
		log.Fatal(err)
	}
	d.clock.Advance(2 * time.Minute) // past the replay window: the old token is dead
	_, err := c.RefreshGitHub(ctx, client.RefreshGitHubRequest{RefreshToken: d.Token.RefreshToken})

	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Code)
	}
	fmt.Println("sign in again:", client.IsReauthRequired(err))
	// Output:
	// 401 INVALID_REFRESH_TOKEN
	// sign in again: true
}

// Signing in: send the user to Authorize's URL, then post the code and
// state GitHub redirects with.
func ExampleClient_SignIn() {
	d := startDemo()
	defer d.Close()
	c, _ := client.New(d.URL)
	ctx := context.Background()
	const redirect = "http://127.0.0.1:8000/callback"

	az, err := c.Authorize(ctx, client.AuthorizeRequest{RedirectURI: redirect})
	if err != nil {
		log.Fatal(err)
	}
	code, state := d.approve(az.URL) // the user approves at GitHub
	res, err := c.SignIn(ctx, client.SignInRequest{Code: code, State: state, RedirectURI: redirect})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.User.Email, res.Provider)

	list, err := c.Sessions(ctx, res.Session.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(list), "session, current:", list[0].Current)
	// Output:
	// octocat@example.com GITHUB
	// 1 session, current: true
}
