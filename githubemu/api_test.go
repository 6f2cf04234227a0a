package githubemu

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUserRequiresUserAgent(t *testing.T) {
	te := newTestEmu(t, Config{})
	_, g := te.mustGrant(t, "octocat")
	for _, path := range []string{UserPath, EmailsPath, "/api/v3/user"} {
		req, _ := http.NewRequest(http.MethodGet, te.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+g.AccessToken)
		req.Header.Set("User-Agent", "") // Go sends none when set empty
		res := do(t, req)
		if res.status != http.StatusForbidden || !strings.Contains(res.json(t)["message"].(string), "User-Agent") {
			t.Fatalf("%s without User-Agent: %d %q", path, res.status, res.body)
		}
	}
}

func TestUserAuthentication(t *testing.T) {
	te := newTestEmu(t, Config{})
	_, expired := te.mustGrant(t, "mona")
	te.clock.Advance(DefaultAccessTokenTTL)
	_, g := te.mustGrant(t, "octocat")
	_, revoked := te.mustGrant(t, "hubot")
	te.RevokeGrant(revoked.RefreshToken)

	for _, tc := range []struct {
		name, auth string
		status     int
		message    string
	}{
		{"bearer", "Bearer " + g.AccessToken, 200, ""},
		{"token scheme", "token " + g.AccessToken, 200, ""},
		{"lower-case bearer", "bearer " + g.AccessToken, 200, ""},
		{"missing", "", 401, "Requires authentication"},
		{"basic", "Basic Zm9vOmJhcg==", 401, "Requires authentication"},
		{"unknown", "Bearer ghu_" + strings.Repeat("x", 36), 401, "Bad credentials"},
		{"refresh token", "Bearer " + g.RefreshToken, 401, "Bad credentials"},
		{"expired", "Bearer " + expired.AccessToken, 401, "Bad credentials"},
		{"revoked", "Bearer " + revoked.AccessToken, 401, "Bad credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, te.srv.URL+UserPath, nil)
			req.Header.Set("User-Agent", "test")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			res := do(t, req)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %q", res.status, tc.status, res.body)
			}
			m := res.json(t)
			if tc.message != "" && (m["message"] != tc.message || m["documentation_url"] == nil) {
				t.Fatalf("body %q", res.body)
			}
		})
	}
	// An expired access token still refreshes while its refresh token lives.
	te.refreshJSON(t, expired.RefreshToken)
}

func TestUserAndEmails(t *testing.T) {
	te := newTestEmu(t, Config{})
	u := te.AddUser(User{ID: 583231, Login: "octocat", Name: "The Octocat", Company: "@github",
		Emails: []Email{
			{Email: "octo@example.com", Primary: true, Verified: true, Visibility: "private"},
			{Email: "old@example.com"},
		}})
	g, err := te.MintGrant(u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"", "/api/v3"} {
		res := te.get(t, prefix+UserPath, g.AccessToken)
		if res.status != 200 || !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s/user: %d %q", prefix, res.status, res.body)
		}
		m := res.json(t)
		want := map[string]any{"id": 583231.0, "login": "octocat", "name": "The Octocat", "company": "@github",
			"email": nil, "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4", "type": "User"}
		got := make(map[string]any)
		for k := range want {
			got[k] = m[k]
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s/user (-want +got):\n%s", prefix, d)
		}
		if url, _ := m["url"].(string); !strings.HasSuffix(url, prefix+"/users/octocat") {
			t.Errorf("url %q", url)
		}

		res = te.get(t, prefix+EmailsPath, g.AccessToken)
		var emails []map[string]any
		if err := json.Unmarshal([]byte(res.body), &emails); err != nil || res.status != 200 {
			t.Fatalf("%s/user/emails: %d %q", prefix, res.status, res.body)
		}
		wantEmails := []map[string]any{
			{"email": "octo@example.com", "primary": true, "verified": true, "visibility": "private"},
			{"email": "old@example.com", "primary": false, "verified": false, "visibility": nil},
		}
		if d := cmp.Diff(wantEmails, emails); d != "" {
			t.Errorf("%s/user/emails (-want +got):\n%s", prefix, d)
		}
	}
	if c := te.Calls(); c.User != 2 || c.Emails != 2 {
		t.Fatalf("calls = %+v", c)
	}

	// Upsert by id: the login and email change, the token still works.
	te.AddUser(User{ID: u.ID, Login: "octocat2", Email: "new@example.com"})
	m := te.get(t, UserPath, g.AccessToken).json(t)
	if m["login"] != "octocat2" || m["email"] != "new@example.com" || m["name"] != nil {
		t.Fatalf("after upsert: %v", m)
	}
}

func TestDefaultEmails(t *testing.T) {
	te := newTestEmu(t, Config{})
	for _, tc := range []struct {
		user User
		want []Email
	}{
		{User{Login: "Mona"}, []Email{{Email: "mona@example.com", Primary: true, Verified: true, Visibility: "private"}}},
		{User{Login: "hubot", Email: "hubot@github.test"}, []Email{{Email: "hubot@github.test", Primary: true, Verified: true, Visibility: "public"}}},
		{User{Login: "ghost", Emails: []Email{}}, []Email{}},
	} {
		got := te.AddUser(tc.user)
		if d := cmp.Diff(tc.want, got.Emails); d != "" || got.ID == 0 {
			t.Errorf("%s: id %d, emails (-want +got):\n%s", tc.user.Login, got.ID, d)
		}
	}
	// ID 0 with a known login updates that user.
	a := te.AddUser(User{Login: "mona", Name: "Mona"})
	b := te.AddUser(User{Login: "MONA", Name: "Mona Lisa"})
	if a.ID != b.ID || len(te.Users()) != 3 {
		t.Fatalf("login upsert: %d %d, %d users", a.ID, b.ID, len(te.Users()))
	}
}

func TestRevokeEndpoints(t *testing.T) {
	te := newTestEmu(t, Config{})
	u, g1 := te.mustGrant(t, "octocat")
	g2, _ := te.MintGrant(u.ID)
	g3, _ := te.MintGrant(u.ID)

	revoke := func(what, token, user, pass string) int {
		req, _ := http.NewRequest(http.MethodDelete, te.srv.URL+"/applications/"+te.ClientID()+"/"+what,
			strings.NewReader(`{"access_token":"`+token+`"}`))
		req.Header.Set("User-Agent", "test")
		req.SetBasicAuth(user, pass)
		return do(t, req).status
	}
	if s := revoke("token", g1.AccessToken, te.ClientID(), "wrong"); s != 401 {
		t.Fatalf("wrong secret: %d", s)
	}
	if s := revoke("token", g1.AccessToken, te.ClientID(), te.ClientSecret()); s != 204 {
		t.Fatalf("revoke token: %d", s)
	}
	if s := revoke("token", g1.AccessToken, te.ClientID(), te.ClientSecret()); s != 422 {
		t.Fatalf("revoke dead token: %d", s)
	}
	if te.get(t, UserPath, g1.AccessToken).status != 401 || te.get(t, UserPath, g2.AccessToken).status != 200 {
		t.Fatal("token revocation hit the wrong tokens")
	}
	if s := revoke("grant", g2.AccessToken, te.ClientID(), te.ClientSecret()); s != 204 {
		t.Fatalf("revoke grant: %d", s)
	}
	wantOAuthError(t, te.postToken(t, "application/json", te.creds("grant_type", "refresh_token", "refresh_token", g3.RefreshToken)), ErrCodeBadRefreshToken)
}

func TestUnknownPath(t *testing.T) {
	te := newTestEmu(t, Config{})
	res := te.get(t, "/repos/x/y", "")
	if res.status != 404 || res.json(t)["message"] != "Not Found" {
		t.Fatalf("unknown path: %d %q", res.status, res.body)
	}
}
