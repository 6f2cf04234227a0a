package apptest

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

// SignInRedirect is the redirect_uri the sign-in tests register their logins with.
const SignInRedirect = "http://localhost/cb"

// SignedIn is one successful GitHub sign-in as the client saw it.
type SignedIn struct {
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

// UserID is the flashauth user the sign-in was for.
func (l SignedIn) UserID() string { s, _ := l.Claims["sub"].(string); return s }

// GitHubUser adds a GitHub account with one verified primary email.
func (h *Harness) GitHubUser(loginName string) githubemu.User {
	return h.Emu.AddUser(githubemu.User{Login: loginName})
}

// Authorize starts a login with GET /auth/github/Authorize and returns the
// query of the GitHub URL it answered, whose "state" is the login's state.
func (h *Harness) Authorize(t testing.TB, redirectURI string) url.Values {
	t.Helper()
	r := h.Do(http.MethodGet, "/auth/github/authorize?redirect_uri="+url.QueryEscape(redirectURI), "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("authorize: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
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

// Approve completes a started login at the emulator as the GitHub user
// userID, with exactly the parameters of the authorize URL (its query q),
// and returns the code GitHub would have redirected with.
func (h *Harness) Approve(t testing.TB, q url.Values, userID int64) string {
	t.Helper()
	code, err := h.Emu.CompleteLoginURL(githubemu.AuthorizePath+"?"+q.Encode(), userID)
	if err != nil {
		t.Fatalf("CompleteLogin: %v", err)
	}
	h.See(code)
	return code
}

// PostSignIn posts body to POST /auth/github.
func (h *Harness) PostSignIn(t testing.TB, body any, hdr ...string) Response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return h.Do(http.MethodPost, "/auth/github", "application/json", bytes.NewReader(b), hdr...)
}

// SignIn runs the whole sign-in of the GitHub user userID: authorize,
// approval at the emulator, POST /auth/github. deviceInfo is raw JSON or "".
func (h *Harness) SignIn(t testing.TB, userID int64, deviceInfo string, hdr ...string) SignedIn {
	t.Helper()
	q := h.Authorize(t, SignInRedirect)
	code := h.Approve(t, q, userID)
	body := map[string]any{"code": code, "state": q.Get("state"), "redirect_uri": SignInRedirect}
	if deviceInfo != "" {
		body["deviceInfo"] = json.RawMessage(deviceInfo)
	}
	r := h.PostSignIn(t, body, hdr...)
	if r.Status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", r.Status, r.Body)
	}
	l := ParseSignIn(t, r.Body)
	l.Code = code
	return l
}

// ParseSignIn reads a successful sign-in answer.
func ParseSignIn(t testing.TB, body []byte) SignedIn {
	t.Helper()
	var m struct {
		AuthState map[string]any `json:"authState"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.AuthState == nil {
		t.Fatalf("sign-in answer without authState: %v", err)
	}
	str := func(k string) string { s, _ := m.AuthState[k].(string); return s }
	l := SignedIn{Body: body, AuthState: m.AuthState, JWT: str("token"), SessionRT: str("sessionRefreshToken"),
		TokenID: str("tokenId"), GHAccess: str("accessToken"), GHRefresh: str("refreshToken")}
	l.Header, l.Claims = JWTParts(t, l.JWT)
	return l
}

// JWTParts returns the header and the claims of a compact JWS, without
// verifying it.
func JWTParts(t testing.TB, tok string) (header, claims map[string]any) {
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

// PublishedKey is one key of GET /.well-known/jwks.json.
type PublishedKey struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS fetches the published keys, in the order served.
func (h *Harness) JWKS(t *testing.T) []PublishedKey {
	t.Helper()
	r := h.Do(http.MethodGet, "/.well-known/jwks.json", "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("jwks: %d %s", r.Status, r.Body)
	}
	var set struct {
		Keys []PublishedKey `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &set); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	return set.Keys
}

// JWKIDs lists the key ids of keys.
func JWKIDs(keys []PublishedKey) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k.Kid)
	}
	return out
}

// ListTokens calls GET /token with the access token jwt.
func (h *Harness) ListTokens(jwt string) Response {
	return h.Do(http.MethodGet, "/token", "", nil, "Authorization", "Bearer "+jwt)
}

// SessionPost posts {field: token} to path (/user/refresh or /user/logout).
func (h *Harness) SessionPost(t *testing.T, path, field, token string, hdr ...string) Response {
	t.Helper()
	b, _ := json.Marshal(map[string]string{field: token})
	return h.Do(http.MethodPost, path, "application/json", bytes.NewReader(b), hdr...)
}

// Peer opens a second flashauth on h's database, as another replica would
// run: same keys and sessions, its own clock and configuration changes. Its
// logs and the secrets it sees go to h's, so h's secret scan covers them.
func (h *Harness) Peer(t *testing.T, clock *testkit.Clock, opts ...Option) *Harness {
	t.Helper()
	p := *h
	p.T, p.Clock = t, clock
	for _, o := range opts {
		o(&p.Cfg)
	}
	p.App, p.Srv = h.open(t, p.Cfg, clock)
	return &p
}

// ClockAt returns a new clock set to h's time plus d.
func (h *Harness) ClockAt(d time.Duration) *testkit.Clock {
	return testkit.NewClock(h.Clock.Now().Add(d))
}

// SortedKeys returns the keys of m, sorted.
func SortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// B64URL is unpadded base64url, the encoding of JWT segments.
func B64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JWTSegment encodes v as a JWT segment.
func JWTSegment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return B64URL(b)
}

// ForgeJWT builds a compact JWS of header and claims whose signature is
// sign(signing input), or empty when sign is nil.
func ForgeJWT(t *testing.T, header, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	in := JWTSegment(t, header) + "." + JWTSegment(t, claims)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(in))
	}
	return in + "." + B64URL(sig)
}

// HMACSigner signs with an HMAC keyed by key.
func HMACSigner(h func() hash.Hash, key []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(h, key)
		m.Write(in)
		return m.Sum(nil)
	}
}

// EdSigner signs with an Ed25519 key.
func EdSigner(priv ed25519.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte { return ed25519.Sign(priv, in) }
}

// ClaimsWith returns a copy of m with the key/value pairs kv set; a nil value
// deletes the key.
func ClaimsWith(m map[string]any, kv ...any) map[string]any {
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

// ConcurrentPosts sends n identical JSON POSTs at once and returns their
// statuses and bodies, whose secrets it records.
func (h *Harness) ConcurrentPosts(t *testing.T, path, body string, n int) ([]int, [][]byte) {
	t.Helper()
	statuses, bodies := make([]int, n), make([][]byte, n)
	var wg sync.WaitGroup
	gun := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gun
			req, err := http.NewRequest(http.MethodPost, h.Srv.URL+path, strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			r, err := Send(h.Srv.Client(), req)
			if err != nil {
				t.Error(err)
				return
			}
			h.SeeJSON(r.Body)
			statuses[i], bodies[i] = r.Status, r.Body
		}()
	}
	close(gun)
	wg.Wait()
	return statuses, bodies
}
