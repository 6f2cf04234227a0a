package app_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"hash"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/internal/testkit"
)

// signinRedirect is the redirect_uri the sign-in tests register their logins with.
const signinRedirect = "http://localhost/cb"

// signedIn is one successful GitHub sign-in as the client saw it.
type signedIn struct {
	Body      []byte         // the raw answer
	AuthState map[string]any // its authState object
	Code      string         // the authorization code that was exchanged
	JWT       string         // authState.token
	SessionRT string         // authState.sessionRefreshToken
	TokenID   string         // authState.tokenId
	GHAccess  string         // authState.accessToken
	GHRefresh string         // authState.refreshToken
	Header    map[string]any // the JWT's header
	Claims    map[string]any // the JWT's claims
}

// userID is the flashauth user the sign-in was for.
func (l signedIn) userID() string { s, _ := l.Claims["sub"].(string); return s }

// githubUser adds a GitHub account with one verified primary email.
func (h *harness) githubUser(loginName string) githubemu.User {
	return h.emu.AddUser(githubemu.User{Login: loginName})
}

// authorize starts a login with GET /auth/github/authorize and returns the
// query of the GitHub URL it answered, whose "state" is the login's state.
func (h *harness) authorize(t testing.TB, redirectURI string) url.Values {
	t.Helper()
	r := h.do(http.MethodGet, "/auth/github/authorize?redirect_uri="+url.QueryEscape(redirectURI), "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("authorize: %d %s", r.Status, r.Body)
	}
	m := r.json(t)
	state, _ := m["state"].(string)
	raw, _ := m["url"].(string)
	u, err := url.Parse(raw)
	if err != nil || state == "" {
		t.Fatalf("authorize answer %s: url %v", r.Body, err)
	}
	q := u.Query()
	if q.Get("state") != state {
		t.Fatalf("the URL's state differs from the answer's")
	}
	return q
}

// approve completes a started login at the emulator as the GitHub user
// userID, with exactly the parameters of the authorize URL, and returns the
// code GitHub would have redirected with.
func (h *harness) approve(t testing.TB, q url.Values, userID int64) string {
	t.Helper()
	code, err := h.emu.CompleteLogin(githubemu.LoginParams{
		ClientID:            q.Get("client_id"),
		RedirectURI:         q.Get("redirect_uri"),
		State:               q.Get("state"),
		CodeChallenge:       q.Get("code_challenge"),
		CodeChallengeMethod: q.Get("code_challenge_method"),
		UserID:              userID,
	})
	if err != nil {
		t.Fatalf("CompleteLogin: %v", err)
	}
	h.see(code)
	return code
}

// postSignIn posts body to POST /auth/github.
func (h *harness) postSignIn(t testing.TB, body any, hdr ...string) response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return h.do(http.MethodPost, "/auth/github", "application/json", bytes.NewReader(b), hdr...)
}

// signIn runs the whole sign-in of the GitHub user userID: authorize,
// approval at the emulator, POST /auth/github. deviceInfo is raw JSON or "".
func (h *harness) signIn(t testing.TB, userID int64, deviceInfo string, hdr ...string) signedIn {
	t.Helper()
	q := h.authorize(t, signinRedirect)
	code := h.approve(t, q, userID)
	body := map[string]any{"code": code, "state": q.Get("state"), "redirect_uri": signinRedirect}
	if deviceInfo != "" {
		body["deviceInfo"] = json.RawMessage(deviceInfo)
	}
	r := h.postSignIn(t, body, hdr...)
	if r.Status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", r.Status, r.Body)
	}
	l := parseSignIn(t, r.Body)
	l.Code = code
	return l
}

// parseSignIn reads a successful sign-in answer.
func parseSignIn(t testing.TB, body []byte) signedIn {
	t.Helper()
	var m struct {
		AuthState map[string]any `json:"authState"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.AuthState == nil {
		t.Fatalf("sign-in answer without authState: %v", err)
	}
	str := func(k string) string { s, _ := m.AuthState[k].(string); return s }
	l := signedIn{Body: body, AuthState: m.AuthState, JWT: str("token"), SessionRT: str("sessionRefreshToken"),
		TokenID: str("tokenId"), GHAccess: str("accessToken"), GHRefresh: str("refreshToken")}
	l.Header, l.Claims = jwtParts(t, l.JWT)
	return l
}

// jwtParts returns the header and the claims of a compact JWS, without
// verifying it.
func jwtParts(t testing.TB, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("a JWT has 3 dot-separated parts, this one %d", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("JWT part %d is not base64url: %v", i, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("JWT part %d is not a JSON object: %v", i, err)
		}
	}
	return header, claims
}

// publishedKey is one key of GET /.well-known/jwks.json.
type publishedKey struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// jwks fetches the published keys, in the order served.
func (h *harness) jwks(t *testing.T) []publishedKey {
	t.Helper()
	r := h.do(http.MethodGet, "/.well-known/jwks.json", "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("jwks: %d %s", r.Status, r.Body)
	}
	var set struct {
		Keys []publishedKey `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &set); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	return set.Keys
}

// jwkIDs lists the key ids of keys.
func jwkIDs(keys []publishedKey) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k.Kid)
	}
	return out
}

// listTokens calls GET /token with the access token jwt.
func (h *harness) listTokens(jwt string) response {
	return h.do(http.MethodGet, "/token", "", nil, "Authorization", "Bearer "+jwt)
}

// sessionPost posts {field: token} to path (/user/refresh or /user/logout).
func (h *harness) sessionPost(t *testing.T, path, field, token string, hdr ...string) response {
	t.Helper()
	b, _ := json.Marshal(map[string]string{field: token})
	return h.do(http.MethodPost, path, "application/json", bytes.NewReader(b), hdr...)
}

// peer opens a second flashauth on h's database, as another replica would
// run: same keys and sessions, its own clock and configuration changes. Its
// logs and the secrets it sees go to h's, so h's secret scan covers them.
func (h *harness) peer(t *testing.T, clock *testkit.Clock, opts ...option) *harness {
	t.Helper()
	p := *h
	p.t, p.clock = t, clock
	for _, o := range opts {
		o(&p.cfg)
	}
	p.app, p.srv = h.open(t, p.cfg, clock)
	return &p
}

// clockAt returns a new clock set to h's time plus d.
func (h *harness) clockAt(d time.Duration) *testkit.Clock {
	return testkit.NewClock(h.clock.Now().Add(d))
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// b64url is unpadded base64url, the encoding of JWT segments.
func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwtSegment encodes v as a JWT segment.
func jwtSegment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64url(b)
}

// forgeJWT builds a compact JWS of header and claims whose signature is
// sign(signing input), or empty when sign is nil.
func forgeJWT(t *testing.T, header, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	in := jwtSegment(t, header) + "." + jwtSegment(t, claims)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(in))
	}
	return in + "." + b64url(sig)
}

// hmacSigner signs with an HMAC keyed by key.
func hmacSigner(h func() hash.Hash, key []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(h, key)
		m.Write(in)
		return m.Sum(nil)
	}
}

// edSigner signs with an Ed25519 key.
func edSigner(priv ed25519.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte { return ed25519.Sign(priv, in) }
}

// claimsWith returns a copy of m with the key/value pairs kv set; a nil value
// deletes the key.
func claimsWith(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

// concurrentPosts sends n identical JSON POSTs at once and returns their
// statuses and bodies, whose secrets it records.
func (h *harness) concurrentPosts(t *testing.T, path, body string, n int) ([]int, [][]byte) {
	t.Helper()
	statuses, bodies := make([]int, n), make([][]byte, n)
	var wg sync.WaitGroup
	gun := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gun
			req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			r, err := send(h.srv.Client(), req)
			if err != nil {
				t.Error(err)
				return
			}
			h.seeJSON(r.Body)
			statuses[i], bodies[i] = r.Status, r.Body
		}()
	}
	close(gun)
	wg.Wait()
	return statuses, bodies
}
