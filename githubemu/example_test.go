package githubemu_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/flashbacktech/flashauth/githubemu"
)

// A test mints a token pair for a user and refreshes it twice: the second
// use of the same refresh token is refused, in HTTP 200.
func Example() {
	e := githubemu.New(githubemu.Config{})
	srv := httptest.NewServer(e)
	defer srv.Close()
	defer e.Close()

	u := e.AddUser(githubemu.User{Login: "octocat"})
	g, _ := e.MintGrant(u.ID)

	refresh := func() (int, map[string]any) {
		form := url.Values{
			"client_id":     {githubemu.DefaultClientID},
			"client_secret": {githubemu.DefaultClientSecret},
			"grant_type":    {"refresh_token"},
			"refresh_token": {g.RefreshToken},
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+githubemu.TokenPath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer res.Body.Close()
		var body map[string]any
		json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body
	}
	status, body := refresh()
	fmt.Println(status, body["expires_in"], body["token_type"])
	status, body = refresh()
	fmt.Println(status, body["error"])
	fmt.Println(e.Calls().TokenRefresh)
	// Output:
	// 200 28800 bearer
	// 200 bad_refresh_token
	// 2
}
