package githubemu

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	accessRE  = regexp.MustCompile(`^ghu_[A-Za-z0-9]{36}$`)
	refreshRE = regexp.MustCompile(`^ghr_[A-Za-z0-9]{76}$`)
)

func TestRefreshRotationKillsOldTokens(t *testing.T) {
	te := newTestEmu(t, Config{})
	_, g := te.mustGrant(t, "octocat")

	m := te.refreshJSON(t, g.RefreshToken)
	newAccess, _ := m["access_token"].(string)
	newRefresh, _ := m["refresh_token"].(string)
	if !accessRE.MatchString(newAccess) || !refreshRE.MatchString(newRefresh) {
		t.Fatalf("token shapes: %q", m)
	}
	if newAccess == g.AccessToken || newRefresh == g.RefreshToken {
		t.Fatal("refresh did not rotate")
	}
	for k, want := range map[string]any{"expires_in": 28800.0, "refresh_token_expires_in": 15897600.0, "scope": "", "token_type": "bearer"} {
		if m[k] != want {
			t.Errorf("%s = %#v, want %#v", k, m[k], want)
		}
	}

	// The old access token is dead, the new one works.
	if res := te.get(t, UserPath, g.AccessToken); res.status != http.StatusUnauthorized {
		t.Errorf("old access token: status %d, want 401", res.status)
	}
	if res := te.get(t, UserPath, newAccess); res.status != http.StatusOK {
		t.Errorf("new access token: status %d, want 200", res.status)
	}
	// The old refresh token is spent: no grace period.
	wantOAuthError(t, te.postToken(t, "application/json", te.creds("grant_type", "refresh_token", "refresh_token", g.RefreshToken)), ErrCodeBadRefreshToken)
	// The new one still rotates.
	te.refreshJSON(t, newRefresh)
}

func TestRefreshBadTokens(t *testing.T) {
	te := newTestEmu(t, Config{})
	_, expiring := te.mustGrant(t, "mona")
	te.clock.Advance(DefaultRefreshTokenTTL)
	_, revoked := te.mustGrant(t, "hubot")
	te.RevokeGrant(revoked.AccessToken)
	_, live := te.mustGrant(t, "octocat")

	for _, tc := range []struct{ name, token string }{
		{"empty", ""},
		{"unknown", "ghr_" + strings.Repeat("a", 76)},
		{"access token", live.AccessToken},
		{"revoked", revoked.RefreshToken},
		{"expired", expiring.RefreshToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantOAuthError(t, te.postToken(t, "application/json", te.creds("grant_type", "refresh_token", "refresh_token", tc.token)), ErrCodeBadRefreshToken)
		})
	}
	te.refreshJSON(t, live.RefreshToken)
}

func TestConcurrentRefreshOneWins(t *testing.T) {
	te := newTestEmu(t, Config{})
	_, g := te.mustGrant(t, "octocat")
	const n = 16
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		wins   int
		losses int
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			res := te.postToken(t, "application/json", te.creds("grant_type", "refresh_token", "refresh_token", g.RefreshToken))
			m := res.json(t)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case res.status == http.StatusOK && m["access_token"] != nil:
				wins++
			case res.status == http.StatusOK && m["error"] == ErrCodeBadRefreshToken:
				losses++
			default:
				t.Errorf("unexpected answer %d %q", res.status, res.body)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins != 1 || losses != n-1 {
		t.Fatalf("wins=%d losses=%d, want 1 and %d", wins, losses, n-1)
	}
	if c := te.Calls(); c.TokenRefresh != n || c.TokenTotal != n || c.TokenCode != 0 {
		t.Fatalf("calls = %+v", c)
	}
}

func TestAcceptNegotiation(t *testing.T) {
	te := newTestEmu(t, Config{})
	for _, tc := range []struct {
		accept, ctype string
		status        int
	}{
		{"application/json", "application/json", 200},
		{"application/json;q=0.9, */*", "application/json", 200},
		{"application/xml", "application/xml", 200},
		{"", "application/x-www-form-urlencoded", 200},
		{"*/*", "application/x-www-form-urlencoded", 200},
		{"application/vnd.github.v3+json", "text/plain", 406},
		{"application/vnd.github+json", "text/plain", 406},
	} {
		t.Run(tc.accept, func(t *testing.T) {
			_, g := te.mustGrant(t, "octocat")
			res := te.postToken(t, tc.accept, te.creds("grant_type", "refresh_token", "refresh_token", g.RefreshToken))
			if res.status != tc.status || !strings.HasPrefix(res.header.Get("Content-Type"), tc.ctype) {
				t.Fatalf("status %d type %q, want %d %q", res.status, res.header.Get("Content-Type"), tc.status, tc.ctype)
			}
			var access string
			switch tc.ctype {
			case "application/json":
				access, _ = res.json(t)["access_token"].(string)
			case "application/xml":
				var x struct {
					XMLName     xml.Name `xml:"OAuth"`
					AccessToken string   `xml:"access_token"`
					TokenType   string   `xml:"token_type"`
				}
				if err := xml.Unmarshal([]byte(res.body), &x); err != nil || x.TokenType != "bearer" {
					t.Fatalf("xml %q: %v", res.body, err)
				}
				access = x.AccessToken
			case "application/x-www-form-urlencoded":
				v, err := url.ParseQuery(res.body)
				if err != nil || v.Get("token_type") != "bearer" || v.Get("expires_in") != "28800" {
					t.Fatalf("form %q: %v", res.body, err)
				}
				access = v.Get("access_token")
			case "text/plain":
				// A 406 consumes nothing: the token still refreshes.
				te.refreshJSON(t, g.RefreshToken)
				return
			}
			if !accessRE.MatchString(access) {
				t.Fatalf("no access token in %q", res.body)
			}
		})
	}
}

func TestErrorFormats(t *testing.T) {
	te := newTestEmu(t, Config{})
	params := te.creds("grant_type", "refresh_token", "refresh_token", "nope")
	form := te.postToken(t, "", params)
	v, err := url.ParseQuery(form.body)
	if form.status != 200 || err != nil || v.Get("error") != ErrCodeBadRefreshToken || v.Get("error_uri") == "" {
		t.Fatalf("form error: %d %q", form.status, form.body)
	}
	x := te.postToken(t, "application/xml", params)
	if x.status != 200 || !strings.Contains(x.body, "<error>bad_refresh_token</error>") || !strings.HasPrefix(x.body, "<OAuth>") {
		t.Fatalf("xml error: %d %q", x.status, x.body)
	}
}

func TestTokenParamsFromQueryAndJSON(t *testing.T) {
	te := newTestEmu(t, Config{})

	_, g := te.mustGrant(t, "octocat")
	q := te.creds("grant_type", "refresh_token", "refresh_token", g.RefreshToken)
	req, _ := http.NewRequest(http.MethodPost, te.srv.URL+TokenPath+"?"+q.Encode(), nil)
	req.Header.Set("Accept", "application/json")
	if m := do(t, req).json(t); !accessRE.MatchString(m["access_token"].(string)) {
		t.Fatalf("query-string refresh: %v", m)
	}

	_, g = te.mustGrant(t, "hubot")
	body := `{"client_id":"` + te.ClientID() + `","client_secret":"` + te.ClientSecret() + `","grant_type":"refresh_token","refresh_token":"` + g.RefreshToken + `"}`
	req, _ = http.NewRequest(http.MethodPost, te.srv.URL+TokenPath, strings.NewReader(body))
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	if m := do(t, req).json(t); m["access_token"] == nil {
		t.Fatalf("JSON-body refresh: %v", m)
	}
}

func TestClientCredentials(t *testing.T) {
	te := newTestEmu(t, Config{ClientID: "Iv1.custom", ClientSecret: "s3cret"})
	_, g := te.mustGrant(t, "octocat")
	for _, tc := range []struct {
		name   string
		params url.Values
	}{
		{"wrong secret", url.Values{"client_id": {"Iv1.custom"}, "client_secret": {"nope"}}},
		{"wrong id", url.Values{"client_id": {DefaultClientID}, "client_secret": {"s3cret"}}},
		{"missing", url.Values{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.params.Set("grant_type", "refresh_token")
			tc.params.Set("refresh_token", g.RefreshToken)
			wantOAuthError(t, te.postToken(t, "application/json", tc.params), ErrCodeIncorrectCredentials)
		})
	}
	t.Run("basic auth is not client authentication", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, te.srv.URL+TokenPath,
			strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.RefreshToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.SetBasicAuth("Iv1.custom", "s3cret")
		wantOAuthError(t, do(t, req), ErrCodeIncorrectCredentials)
	})
	// None of the refused attempts spent the token.
	te.refreshJSON(t, g.RefreshToken)
}

func TestUnsupportedGrantType(t *testing.T) {
	te := newTestEmu(t, Config{})
	wantOAuthError(t, te.postToken(t, "application/json", te.creds("grant_type", "password")), ErrCodeUnsupportedGrantType)
	if c := te.Calls(); c.TokenTotal != 1 || c.TokenRefresh != 0 || c.TokenCode != 0 {
		t.Fatalf("calls = %+v", c)
	}
}

func TestTokenEndpointRejectsGET(t *testing.T) {
	te := newTestEmu(t, Config{})
	if res := te.get(t, TokenPath, ""); res.status != http.StatusNotFound {
		t.Fatalf("GET token endpoint: %d", res.status)
	}
}

func TestClassicTokens(t *testing.T) {
	off := false
	te := newTestEmu(t, Config{ExpiringTokens: &off})
	u := te.AddUser(User{Login: "octocat"})
	code, err := te.CompleteLogin(LoginParams{ClientID: te.ClientID(), UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	m := te.postToken(t, "application/json", te.creds("code", code)).json(t)
	if !regexp.MustCompile(`^gho_[A-Za-z0-9]{36}$`).MatchString(m["access_token"].(string)) {
		t.Fatalf("classic token: %v", m)
	}
	for _, k := range []string{"expires_in", "refresh_token", "refresh_token_expires_in"} {
		if _, ok := m[k]; ok {
			t.Errorf("classic answer has %s", k)
		}
	}
	// Classic tokens do not expire.
	te.clock.Advance(365 * 24 * time.Hour)
	if res := te.get(t, UserPath, m["access_token"].(string)); res.status != http.StatusOK {
		t.Fatalf("classic token after a year: %d", res.status)
	}
}

func TestStringExpiresIn(t *testing.T) {
	te := newTestEmu(t, Config{StringExpiresIn: true, AccessTokenTTL: time.Hour, RefreshTokenTTL: 15811200 * time.Second})
	_, g := te.mustGrant(t, "octocat")
	if g.ExpiresIn != time.Hour || g.RefreshTokenExpiresIn != 15811200*time.Second {
		t.Fatalf("grant durations %v %v", g.ExpiresIn, g.RefreshTokenExpiresIn)
	}
	m := te.refreshJSON(t, g.RefreshToken)
	if m["expires_in"] != "3600" || m["refresh_token_expires_in"] != "15811200" {
		t.Fatalf("expires_in %#v, refresh_token_expires_in %#v", m["expires_in"], m["refresh_token_expires_in"])
	}
}

func TestRandomTokenAlphabet(t *testing.T) {
	seen := make(map[byte]bool)
	for range 200 {
		tok := randomToken("", 76)
		if len(tok) != 76 {
			t.Fatalf("length %d", len(tok))
		}
		for i := range len(tok) {
			seen[tok[i]] = true
		}
	}
	if len(seen) != 62 {
		t.Fatalf("alphabet of %d characters, want 62", len(seen))
	}
}
