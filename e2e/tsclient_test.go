package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/internal/testkit"
)

// The Flashback TypeScript client, played byte for byte against a `flashauth
// serve` at its default configuration: only what serve requires is set. The
// client never sends Accept, sends Content-Type: application/json on every
// call, keeps whatever Bearer it last set (an expired flashauth JWT, a Google
// token, the GitHub OAuth code itself), sends refresh_token to every refresh
// endpoint, signs in with {code, deviceInfo} only (never state), and throws
// on any non-2xx, reading error_code from the JSON body.

// appCallback is the callback URL the app registered at GitHub.
const appCallback = "http://localhost:3000/auth/callback"

// tsClient is the TypeScript ApiClient's request shape.
type tsClient struct {
	tb     testing.TB
	b      *testbed
	base   string
	bearer string // what it last set; sent on every call
}

// tsAnswer is one answer as the client reads it.
type tsAnswer struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

func (a tsAnswer) str(k string) string { s, _ := a.JSON[k].(string); return s }

func (c *tsClient) call(method, path string, body any) tsAnswer {
	c.tb.Helper()
	return c.callWith(method, path, body, "")
}

// seeAnswer records every token-like string of an answer as a secret.
func (c *tsClient) seeAnswer(m map[string]any) {
	for _, k := range []string{"token", "accessToken", "refreshToken", "sessionRefreshToken", "state"} {
		if s, ok := m[k].(string); ok {
			c.b.see(s)
		}
	}
	if st, ok := m["authState"].(map[string]any); ok {
		c.seeAnswer(st)
	}
}

// checkJSONAnswer checks what the client's error path relies on: a JSON
// object with the right Content-Type, and on non-2xx a success:false body
// with an UPPER_SNAKE error_code and a message.
func checkJSONAnswer(tb testing.TB, what string, status int, h http.Header, body []byte) {
	tb.Helper()
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "application/json" || !strings.EqualFold(params["charset"], "utf-8") {
		tb.Errorf("%s: %d with Content-Type %q, want application/json; charset=utf-8", what, status, h.Get("Content-Type"))
	}
	if h.Get("X-Request-Id") == "" {
		tb.Errorf("%s: %d without X-Request-Id", what, status)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		tb.Errorf("%s: %d body is not a JSON object: %v", what, status, err)
		return
	}
	if status >= 200 && status < 300 {
		if status != http.StatusOK || m["success"] != true {
			tb.Errorf("%s: success %d with success=%v, want 200 and true", what, status, m["success"])
		}
		return
	}
	code, _ := m["error_code"].(string)
	msg, _ := m["message"].(string)
	if m["success"] != false || code == "" || strings.ToUpper(code) != code || strings.ContainsAny(code, " -") || msg == "" {
		tb.Errorf("%s: error %d body %s lacks success:false, an UPPER_SNAKE error_code or a message", what, status, body)
	}
	if (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && h.Get("Retry-After") == "" {
		tb.Errorf("%s: %d without Retry-After", what, status)
	}
	if status == http.StatusMethodNotAllowed && h.Get("Allow") == "" {
		tb.Errorf("%s: 405 without Allow", what)
	}
}

func (c *tsClient) want(a tsAnswer, status int, code string, what string) {
	c.tb.Helper()
	if a.Status != status || (code != "" && a.str("error_code") != code) {
		c.tb.Fatalf("%s: %d %s, want %d %s", what, a.Status, a.Body, status, code)
	}
}

// tsBed is a `flashauth serve` at default settings and the GitHub (the
// emulator, with the app's registered callback) it talks to.
type tsBed struct {
	*testbed
	emu    *githubemu.Emulator
	emuURL string
	env    map[string]string
	base   string
}

func newTSBed(t *testing.T) *tsBed {
	b := newTestbed(t)
	emu := githubemu.New(githubemu.Config{ClientID: clientID, ClientSecret: clientSecret, CallbackURL: appCallback})
	srv := httptest.NewServer(emu)
	t.Cleanup(func() { emu.Close(); srv.Close() })
	key := testkit.RandomHex(t, 32)
	b.see(key)
	// Exactly what serve requires, plus where GitHub and the database are;
	// everything else at its default.
	env := map[string]string{
		"FLASHAUTH_ADDR":         "127.0.0.1:0",
		"FLASHAUTH_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "flashauth.db"),
		"GITHUB_CLIENT_ID":       clientID,
		"GITHUB_CLIENT_SECRET":   clientSecret,
		"GITHUB_URL":             srv.URL,
		"GITHUB_API_URL":         srv.URL,
		"FLASHAUTH_SECRET_KEY":   key,
	}
	r := b.start(1, env)[0]
	return &tsBed{testbed: b, emu: emu, emuURL: srv.URL, env: env, base: r.URL}
}

func (tb *tsBed) client(t testing.TB) *tsClient {
	return &tsClient{tb: t, b: tb.testbed, base: tb.base}
}

// browserApprove is what the user's browser does with an authorize URL:
// load the emulator's authorize page, approve as login, and follow the
// redirect to the app's callback, whose query it returns.
func (tb *tsBed) browserApprove(t *testing.T, authorizeURL, login string) url.Values {
	t.Helper()
	noFollow := &http.Client{Transport: tb.testbed.client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte(`<form method="post"`)) {
		t.Fatalf("authorize page: %d %s", resp.StatusCode, page)
	}
	u, _ := url.Parse(authorizeURL)
	form := u.Query()
	form.Set("login", login)
	form.Set("action", "approve")
	resp, err = noFollow.PostForm(u.Scheme+"://"+u.Host+u.Path, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("approve: %d Location %v", resp.StatusCode, err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != appCallback {
		t.Fatalf("approve redirects to %s, want the app's callback", got)
	}
	tb.see(loc.Query().Get("code"))
	return loc.Query()
}

// The whole journey of the TypeScript client at the default configuration.
func TestTypeScriptClientAtDefaults(t *testing.T) {
	bed := newTSBed(t)
	c := bed.client(t)
	// Left over from the app's Google sign-in.
	c.bearer = "ya29.a0AfH6SMBx-google-access-token-from-earlier-0123456789"

	// Sign-in starts at authorize?pkce=false: the app compares the state.
	a := c.call(http.MethodGet, "/auth/github/authorize?pkce=false", nil)
	c.want(a, http.StatusOK, "", "authorize?pkce=false")
	authURL, state := a.str("url"), a.str("state")
	if q := mustQuery(t, authURL); q.Get("state") != state || q.Get("code_challenge") != "" || q.Get("client_id") != clientID {
		t.Fatalf("authorize?pkce=false URL carries state %v, a challenge %v, client_id %q", q.Get("state") == state, q.Get("code_challenge") != "", q.Get("client_id"))
	}
	cb := bed.browserApprove(t, authURL, "octo-ts")
	if cb.Get("state") != state {
		t.Fatal("the callback's state is not the one authorize answered")
	}
	code := cb.Get("code")

	// authenticate(code): {code, deviceInfo}, with the code itself as its
	// Bearer (the client set it before calling).
	c.bearer = code
	signIn := map[string]any{"code": code, "deviceInfo": map[string]any{"platform": "web", "browser": "Chrome"}}
	a = c.call(http.MethodPost, "/auth/github", signIn)
	c.want(a, http.StatusOK, "", "sign-in with {code, deviceInfo} and the code as Bearer")
	st, _ := a.JSON["authState"].(map[string]any)
	str := func(k string) string { s, _ := st[k].(string); return s }
	jwt, ghAccess, ghRefresh, sessionRT, tokenID := str("token"), str("accessToken"), str("refreshToken"), str("sessionRefreshToken"), str("tokenId")
	if jwt == "" || !strings.HasPrefix(ghAccess, "ghu_") || !strings.HasPrefix(ghRefresh, "ghr_") || sessionRT == "" || tokenID == "" || st["provider"] != "GITHUB" {
		t.Fatalf("sign-in authState lacks fields: %v", keysOf(st))
	}
	// A retry of the same call (response lost) gets the same answer.
	again := c.call(http.MethodPost, "/auth/github", signIn)
	c.want(again, http.StatusOK, "", "sign-in retried with the same code")
	if !bytes.Equal(again.Body, a.Body) {
		t.Fatal("a retried sign-in answers a different body")
	}

	// Refresh the GitHub token with the sign-in's JWT as Bearer (it owns
	// the lineage), then with garbage Bearers: all ignored or accepted.
	c.bearer = jwt
	a = c.call(http.MethodPost, "/auth/github/refresh", map[string]any{"refresh_token": ghRefresh})
	c.want(a, http.StatusOK, "", "GitHub refresh with the owner's JWT")
	ghRefresh = a.str("refreshToken")
	if a.str("token") == "" || a.str("token") != a.str("accessToken") || !strings.HasPrefix(ghRefresh, "ghr_") {
		t.Fatalf("refresh answer: token/accessToken/refreshToken wrong: %v", keysOf(a.JSON))
	}
	for _, bearer := range []string{
		code, // the spent OAuth code
		"ya29.a0AfH6SMBx-google-access-token-from-earlier-0123456789",
		badSignatureJWT(jwt),
		"not a token at all",
		"undefined", // what `Bearer ${token}` gives before any sign-in
		"null",
		"",
	} {
		c.bearer = bearer
		a = c.call(http.MethodPost, "/auth/github/refresh", map[string]any{"refresh_token": ghRefresh})
		c.want(a, http.StatusOK, "", "GitHub refresh with a stale Bearer")
		ghRefresh = a.str("refreshToken")
	}

	// The flashauth session: /user/refresh with refresh_token and a stale Bearer.
	c.bearer = code
	a = c.call(http.MethodPost, "/user/refresh", map[string]any{"refresh_token": sessionRT})
	c.want(a, http.StatusOK, "", "/user/refresh with refresh_token")
	jwt, sessionRT = a.str("token"), a.str("refreshToken")
	if jwt == "" || a.str("accessToken") != jwt || sessionRT == "" || a.str("tokenId") != tokenID {
		t.Fatalf("/user/refresh answer: %v", keysOf(a.JSON))
	}

	// GET /token and DELETE /token/{id} with the current JWT; a second
	// session to revoke.
	c.bearer = jwt
	a = c.call(http.MethodGet, "/token", nil)
	c.want(a, http.StatusOK, "", "GET /token")
	if toks, _ := a.JSON["tokens"].([]any); len(toks) != 1 {
		t.Fatalf("GET /token lists %d sessions, want 1", len(toks))
	}
	other := bed.signInAgain(t, c, "octo-ts")
	c.bearer = jwt
	a = c.call(http.MethodGet, "/token", nil)
	if toks, _ := a.JSON["tokens"].([]any); len(toks) != 2 {
		t.Fatalf("GET /token lists %d sessions after a second sign-in, want 2", len(toks))
	}
	a = c.call(http.MethodDelete, "/token/"+other, nil)
	c.want(a, http.StatusOK, "", "DELETE /token/{id}")
	// Again (a retry): still success, as documented; an id that is not
	// the caller's: 404.
	c.want(c.call(http.MethodDelete, "/token/"+other, nil), http.StatusOK, "", "DELETE of an already revoked session")
	c.want(c.call(http.MethodDelete, "/token/no-such-session", nil), http.StatusNotFound, "NOT_FOUND", "DELETE of an unknown id")
	// Without a usable Bearer, the session endpoints say so in JSON.
	c.bearer = code
	c.want(c.call(http.MethodGet, "/token", nil), http.StatusUnauthorized, "AUTH_REQUIRED", "GET /token with the code as Bearer")

	// Logout with refresh_token and a stale Bearer; again: still success.
	a = c.call(http.MethodPost, "/user/logout", map[string]any{"refresh_token": sessionRT})
	c.want(a, http.StatusOK, "", "/user/logout")
	c.want(c.call(http.MethodPost, "/user/logout", map[string]any{"refresh_token": sessionRT}), http.StatusOK, "", "/user/logout again")
	c.want(c.call(http.MethodPost, "/user/refresh", map[string]any{"refresh_token": sessionRT}), http.StatusUnauthorized, "INVALID_REFRESH_TOKEN", "/user/refresh after logout")
	c.bearer = jwt
	c.want(c.call(http.MethodGet, "/token", nil), http.StatusUnauthorized, "AUTH_REQUIRED", "GET /token with a logged-out session's JWT")

	// The GitHub token still refreshes after logout (it is the user's).
	c.bearer = jwt
	a = c.call(http.MethodPost, "/auth/github/refresh", map[string]any{"refresh_token": ghRefresh})
	c.want(a, http.StatusOK, "", "GitHub refresh with a logged-out session's JWT")
}

// signInAgain signs login in a second time (new code, new session) and
// returns the new session's id.
func (tb *tsBed) signInAgain(t *testing.T, c *tsClient, login string) string {
	t.Helper()
	a := c.call(http.MethodGet, "/auth/github/authorize?pkce=false", nil)
	c.want(a, http.StatusOK, "", "authorize")
	cb := tb.browserApprove(t, a.str("url"), login)
	a = c.call(http.MethodPost, "/auth/github", map[string]any{"code": cb.Get("code"), "deviceInfo": map[string]any{"platform": "cli"}})
	c.want(a, http.StatusOK, "", "second sign-in")
	st, _ := a.JSON["authState"].(map[string]any)
	id, _ := st["tokenId"].(string)
	return id
}

// Racing tabs, a retry after a lost response, and a sign-in started at a
// GitHub URL the app built itself, at the default configuration.
func TestTypeScriptClientRacesAndRetriesAtDefaults(t *testing.T) {
	bed := newTSBed(t)
	usr := bed.emu.AddUser(githubemu.User{Login: "tabs"})

	t.Run("racing tabs", func(t *testing.T) {
		g, err := bed.emu.MintGrant(usr.ID)
		if err != nil {
			t.Fatal(err)
		}
		bed.see(g.AccessToken, g.RefreshToken)
		before := bed.emu.Calls().TokenRefresh
		const tabs = 8
		answers := make([]tsAnswer, tabs)
		var wg sync.WaitGroup
		gun := make(chan struct{})
		for i := range tabs {
			wg.Go(func() {
				c := bed.client(t)
				c.bearer = fmt.Sprintf("stale-jwt-of-tab-%d", i)
				<-gun
				answers[i] = c.call(http.MethodPost, "/auth/github/refresh", map[string]any{"refresh_token": g.RefreshToken})
			})
		}
		close(gun)
		wg.Wait()
		for i, a := range answers {
			if a.Status != http.StatusOK || !bytes.Equal(a.Body, answers[0].Body) {
				t.Fatalf("tab %d: %d %s, want tab 0's 200 body", i, a.Status, a.Body)
			}
		}
		if n := bed.emu.Calls().TokenRefresh - before; n != 1 {
			t.Fatalf("%d tabs made %d GitHub refreshes, want 1", tabs, n)
		}
	})

	// Tabs sharing one flashauth session refresh it at once: one rotation,
	// the identical answer for every tab (the reuse interval, default 10 s).
	t.Run("racing tabs, session", func(t *testing.T) {
		c := bed.client(t)
		a := c.call(http.MethodGet, "/auth/github/authorize?pkce=false", nil)
		c.want(a, http.StatusOK, "", "authorize")
		cb := bed.browserApprove(t, a.str("url"), "tabs")
		a = c.call(http.MethodPost, "/auth/github", map[string]any{"code": cb.Get("code"), "deviceInfo": map[string]any{}})
		c.want(a, http.StatusOK, "", "sign-in")
		st, _ := a.JSON["authState"].(map[string]any)
		rt, _ := st["sessionRefreshToken"].(string)
		const tabs = 8
		answers := make([]tsAnswer, tabs)
		var wg sync.WaitGroup
		gun := make(chan struct{})
		for i := range tabs {
			wg.Go(func() {
				c := bed.client(t)
				c.bearer = "expired.jwt.of-this-tab"
				<-gun
				answers[i] = c.call(http.MethodPost, "/user/refresh", map[string]any{"refresh_token": rt})
			})
		}
		close(gun)
		wg.Wait()
		for i, a := range answers {
			if a.Status != http.StatusOK || !bytes.Equal(a.Body, answers[0].Body) {
				t.Fatalf("tab %d: %d %s, want tab 0's 200 body", i, a.Status, a.Body)
			}
		}
	})

	t.Run("retry after a lost response", func(t *testing.T) {
		g, err := bed.emu.MintGrant(usr.ID)
		if err != nil {
			t.Fatal(err)
		}
		bed.see(g.AccessToken, g.RefreshToken)
		before := bed.emu.Calls().TokenRefresh
		// GitHub is slow enough that the client gives up (its tab closes,
		// the network drops) while flashauth is waiting for it.
		bed.emu.SetLatency(300 * time.Millisecond)
		t.Cleanup(func() { bed.emu.SetLatency(0) })
		abandonRefresh(t, bed.base, g.RefreshToken, func() bool { return bed.emu.Calls().TokenRefresh > before })
		bed.emu.SetLatency(0)

		c := bed.client(t)
		c.bearer = "stale"
		a := c.call(http.MethodPost, "/auth/github/refresh", map[string]any{"refresh_token": g.RefreshToken})
		c.want(a, http.StatusOK, "", "retry after the first answer was lost")
		again := c.call(http.MethodPost, "/auth/github/refresh", map[string]any{"refresh_token": g.RefreshToken})
		if !bytes.Equal(again.Body, a.Body) {
			t.Fatal("a second retry answers a different body")
		}
		if n := bed.emu.Calls().TokenRefresh - before; n != 1 {
			t.Fatalf("an abandoned refresh and two retries made %d GitHub refreshes, want 1", n)
		}
		// What the retry got is live: it refreshes again.
		c.want(c.call(http.MethodPost, "/auth/github/refresh", map[string]any{"refresh_token": a.str("refreshToken")}),
			http.StatusOK, "", "refresh of the token the retry got")
	})

	t.Run("sign-in at an app-built GitHub URL", func(t *testing.T) {
		// The app sends the browser to GitHub itself, with its own state and
		// no redirect_uri (GitHub uses the registered callback).
		q := url.Values{"client_id": {clientID}, "state": {"app-own-state-123"}, "scope": {""}}
		cb := bed.browserApprove(t, bed.emuURL+githubemu.AuthorizePath+"?"+q.Encode(), "tabs")
		c := bed.client(t)
		c.bearer = "expired.jwt.value"
		a := c.call(http.MethodPost, "/auth/github", map[string]any{"code": cb.Get("code"), "deviceInfo": map[string]any{}})
		c.want(a, http.StatusOK, "", "sign-in with a code from an app-built URL")
		// authorize?pkce=false with the app's redirect_uri, then only
		// {code, deviceInfo}: the redirect_uri is not needed back.
		a = c.call(http.MethodGet, "/auth/github/authorize?pkce=false&redirect_uri="+url.QueryEscape(appCallback), nil)
		c.want(a, http.StatusOK, "", "authorize?pkce=false with redirect_uri")
		cb = bed.browserApprove(t, a.str("url"), "tabs")
		c.want(c.call(http.MethodPost, "/auth/github", map[string]any{"code": cb.Get("code"), "deviceInfo": map[string]any{}}),
			http.StatusOK, "", "sign-in with only the code after authorize with redirect_uri")
		// A code GitHub never issued: 401 INVALID_CODE in JSON.
		c.want(c.call(http.MethodPost, "/auth/github", map[string]any{"code": "0123456789abcdef0123", "deviceInfo": map[string]any{}}),
			http.StatusUnauthorized, "INVALID_CODE", "sign-in with an unknown code")
	})
}

// abandonRefresh sends a refresh of token over a raw connection and closes
// it, unanswered, once reached() says GitHub has the request.
func abandonRefresh(t *testing.T, base, token string, reached func() bool) {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"refresh_token": token})
	fmt.Fprintf(conn, "POST /auth/github/refresh HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAuthorization: Bearer stale\r\nContent-Length: %d\r\n\r\n%s", u.Host, len(body), body)
	waitFor(t, "the abandoned refresh to reach GitHub", 10*time.Second, reached)
	conn.Close()
}

// Every error the client can meet is JSON with error_code and the right
// Content-Type, middleware's included; CORS preflight for an allowed origin.
func TestTypeScriptClientErrorsAreJSONAtDefaults(t *testing.T) {
	bed := newTSBed(t)
	c := bed.client(t)
	c.bearer = "ya29.google-token-left-over"
	big := append([]byte(`{"refresh_token":"`), bytes.Repeat([]byte("a"), 70<<10)...)
	big = append(big, `"}`...)
	for _, tc := range []struct {
		method, path string
		body         any
		ctype        string // "" keeps the client's application/json
		status       int
		code         string
	}{
		{http.MethodGet, "/no/such/path", nil, "", http.StatusNotFound, "NOT_FOUND"},
		{http.MethodGet, "/auth/github/refresh", nil, "", http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED"},
		{http.MethodPut, "/user/logout", map[string]any{}, "", http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED"},
		{http.MethodPost, "/auth/github/refresh", big, "", http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE"},
		{http.MethodPost, "/auth/github/refresh", []byte(`refresh_token=ghr_x`), "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"},
		{http.MethodPost, "/auth/github/refresh", []byte(`{"refresh_token":`), "", http.StatusBadRequest, "INVALID_REQUEST"},
		{http.MethodPost, "/auth/github/refresh", map[string]any{"refresh_token": "ghr_neverissued0123456789"}, "", http.StatusUnauthorized, "INVALID_REFRESH_TOKEN"},
		{http.MethodPost, "/auth/github", map[string]any{"deviceInfo": map[string]any{}}, "", http.StatusBadRequest, "INVALID_REQUEST"},
		{http.MethodPost, "/user/refresh", map[string]any{"refresh_token": "unknown-session-token-0123456789"}, "", http.StatusUnauthorized, "INVALID_REFRESH_TOKEN"},
		{http.MethodGet, "/auth/github/authorize?pkce=maybe", nil, "", http.StatusBadRequest, "INVALID_REQUEST"},
		{http.MethodDelete, "/token/whatever", nil, "", http.StatusUnauthorized, "AUTH_REQUIRED"},
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.code, func(t *testing.T) {
			a := c.callWith(tc.method, tc.path, tc.body, tc.ctype)
			c.want(a, tc.status, tc.code, tc.method+" "+tc.path)
		})
	}

	// The per-IP limit (middleware, before any route): at the default
	// 600/min with a burst of 100, calls in a row meet it after about 100
	// (1000 allows for a slow machine refilling the bucket meanwhile), in
	// JSON with Retry-After. It runs last: the IP stays limited a while.
	t.Run("per-IP rate limit", func(t *testing.T) {
		var limited *tsAnswer
		for range 1000 {
			a := c.call(http.MethodGet, "/no/such/path", nil)
			if a.Status == http.StatusTooManyRequests {
				limited = &a
				break
			}
		}
		if limited == nil {
			t.Fatal("1000 calls in a row never met the default per-IP limit")
		}
		c.want(*limited, http.StatusTooManyRequests, "RATE_LIMITED", "per-IP limit")
	})

	// CORS: the same settings plus the browser app's origin.
	t.Run("CORS preflight", func(t *testing.T) {
		env := maps.Clone(bed.env)
		env["FLASHAUTH_CORS_ORIGINS"] = "http://localhost:3000"
		r := bed.start(1, env)[0]
		for _, tc := range []struct{ method, path string }{
			{http.MethodPost, "/auth/github/refresh"},
			{http.MethodPost, "/auth/github"},
			{http.MethodPost, "/user/refresh"},
			{http.MethodPost, "/user/logout"},
			{http.MethodGet, "/token"},
			{http.MethodDelete, "/token/abc"},
			{http.MethodGet, "/auth/github/authorize"},
		} {
			req, _ := http.NewRequest(http.MethodOptions, r.URL+tc.path, nil)
			req.Header.Set("Origin", "http://localhost:3000")
			req.Header.Set("Access-Control-Request-Method", tc.method)
			req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
			resp, err := bed.testbed.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := resp.Header
			if resp.StatusCode/100 != 2 || h.Get("Access-Control-Allow-Origin") != "http://localhost:3000" ||
				!containsFold(h.Get("Access-Control-Allow-Methods"), tc.method) ||
				!containsFold(h.Get("Access-Control-Allow-Headers"), "authorization") ||
				!containsFold(h.Get("Access-Control-Allow-Headers"), "content-type") {
				t.Errorf("preflight of %s %s: %d %v", tc.method, tc.path, resp.StatusCode, h)
			}
		}
		// The actual call: the browser lets the app read the answer and its
		// request id, errors included.
		cc := &tsClient{tb: t, b: bed.testbed, base: r.URL, bearer: "stale"}
		a := cc.callWith(http.MethodPost, "/auth/github/refresh", map[string]any{"refresh_token": "ghr_unknown0123456789"}, "", "Origin", "http://localhost:3000")
		cc.want(a, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN", "cross-origin refresh")
		if a.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" || !containsFold(a.Header.Get("Access-Control-Expose-Headers"), "x-request-id") {
			t.Errorf("cross-origin error answer lacks CORS headers: %v", a.Header)
		}
	})
}

// callWith is call with another Content-Type (when not empty) and extra
// headers (pairs).
func (c *tsClient) callWith(method, path string, body any, ctype string, hdr ...string) tsAnswer {
	c.tb.Helper()
	rd := io.Reader(http.NoBody)
	if body != nil {
		raw, ok := body.([]byte)
		if !ok {
			raw, _ = json.Marshal(body)
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		c.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json") // on every call, GETs included
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.b.client.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", method, path, err)
	}
	a := tsAnswer{Status: resp.StatusCode, Header: resp.Header, Body: rb}
	checkJSONAnswer(c.tb, method+" "+path, a.Status, a.Header, rb)
	_ = json.Unmarshal(rb, &a.JSON)
	c.seeAnswer(a.JSON)
	return a
}

func containsFold(list, item string) bool {
	for _, v := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(v), item) {
			return true
		}
	}
	return false
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("authorize URL does not parse")
	}
	return u.Query()
}

// badSignatureJWT is jwt with its signature changed: a JWT-shaped Bearer
// flashauth does not accept, like an expired one.
func badSignatureJWT(jwt string) string {
	i := strings.LastIndexByte(jwt, '.')
	return jwt[:i+1] + strings.Repeat("A", len(jwt)-i-1)
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
