package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/postgres/pgtest"
)

// signIn signs a new GitHub user in at base and returns the flashauth
// access token and session refresh token.
func (b *testbed) signIn(base, login string) (jwt, sessionRT string) {
	b.tb.Helper()
	jwt, sessionRT, err := b.trySignIn(base, login)
	if err != nil {
		b.tb.Fatal(err)
	}
	return jwt, sessionRT
}

// trySignIn is signIn for goroutines other than the test's, which must not
// call Fatal.
func (b *testbed) trySignIn(base, login string) (jwt, sessionRT string, err error) {
	u := b.up.emu.AddUser(githubemu.User{Login: login})
	const redirect = "http://localhost/cb"
	a, err := b.do(http.MethodGet, base+"/auth/github/authorize?redirect_uri="+url.QueryEscape(redirect), nil)
	if err != nil || a.Status != http.StatusOK {
		return "", "", fmt.Errorf("authorize at %s: %v %v", base, a, err)
	}
	state := a.field("state")
	code, err := b.up.emu.CompleteLoginURL(a.field("url"), u.ID)
	if err != nil {
		return "", "", fmt.Errorf("emulator login: %w", err)
	}
	b.see(state, code)
	body, _ := json.Marshal(map[string]string{"code": code, "state": state, "redirect_uri": redirect})
	a, err = b.do(http.MethodPost, base+"/auth/github", body)
	if err != nil || a.Status != http.StatusOK {
		return "", "", fmt.Errorf("sign-in at %s: %v %v", base, a, err)
	}
	var out struct {
		AuthState struct {
			Token, AccessToken, RefreshToken, SessionRefreshToken string
		}
	}
	if err := json.Unmarshal(a.Body, &out); err != nil {
		return "", "", fmt.Errorf("sign-in at %s: %w", base, err)
	}
	st := out.AuthState
	b.see(st.Token, st.AccessToken, st.RefreshToken, st.SessionRefreshToken)
	return st.Token, st.SessionRefreshToken, nil
}

// bearerGet GETs url with a Bearer token.
func (b *testbed) bearerGet(url, jwt string) int {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+jwt)
	resp, err := b.client.Do(req)
	if err != nil {
		b.tb.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func kidOf(tb testing.TB, jwt string) string {
	tb.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		tb.Fatal(err)
	}
	var hdr struct{ Kid string }
	_ = json.Unmarshal(h, &hdr)
	return hdr.Kid
}

// Sessions across replicas on PostgreSQL: a JWT signed on one replica
// verifies on every other; concurrent session refreshes at different
// replicas rotate once; reuse after the interval revokes the family
// everywhere; replicas rotating the signing key together make one new key.
//
// The replicas run on the real clock, so the test waits for time to pass,
// never for something to happen: a wait is measured from a moment that is
// certainly after the event it counts from (an answer received after the
// commit it reports), and the intervals are wide enough that a loaded
// machine cannot stretch a phase past the next one.
func TestSessionsAcrossReplicas(t *testing.T) {
	const (
		reuseInterval = 2 * time.Second
		// keyRotation must exceed the time from the first replica's start
		// to the last refresh below (it signs; a due key would rotate
		// there, early).
		keyRotation = 8 * time.Second
	)
	b := newTestbed(t)
	env := b.env(pgtest.URL(t),
		"FLASHAUTH_REUSE_INTERVAL", reuseInterval.String(),
		"FLASHAUTH_KEY_ROTATION", keyRotation.String(),
		"FLASHAUTH_ACCESS_TTL", "1h",
	)
	rs := b.start(3, env)
	jwt, rt := b.signIn(rs[0].URL, "alice")
	// The first key was generated before this sign-in was answered.
	keyDue := time.Now().Add(keyRotation)
	for _, r := range rs {
		if s := b.bearerGet(r.URL+"/token", jwt); s != http.StatusOK {
			t.Fatalf("%s does not accept a JWT signed at %s: %d", r.name, rs[0].name, s)
		}
	}

	// 30 concurrent refreshes of one session token, spread over the replicas.
	const n = 30
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body, _ := json.Marshal(map[string]string{"refresh_token": rt})
			a, err := b.do(http.MethodPost, rs[i%3].URL+"/user/refresh", body)
			if err != nil || a.Status != http.StatusOK {
				t.Errorf("refresh %d at %s: %v %v", i, rs[i%3].name, a, err)
				return
			}
			bodies[i] = a.Body
		})
	}
	wg.Wait()
	// The rotation was committed before any of these answers arrived.
	reuseFrom := time.Now().Add(reuseInterval)
	if t.Failed() {
		t.FailNow()
	}
	for i := range n {
		if !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("answer %d differs from answer 0", i)
		}
	}
	var rotated struct{ Token, RefreshToken string }
	_ = json.Unmarshal(bodies[0], &rotated)
	b.see(rotated.Token, rotated.RefreshToken)
	if s := b.bearerGet(rs[2].URL+"/token", rotated.Token); s != http.StatusOK {
		t.Fatalf("rotated JWT at %s: %d", rs[2].name, s)
	}

	if kidOf(t, rotated.Token) != kidOf(t, jwt) {
		t.Fatalf("the signing key rotated before it was due (setup outlasted FLASHAUTH_KEY_ROTATION=%s)", keyRotation)
	}

	// Reuse after the interval, at another replica: the family dies everywhere.
	time.Sleep(time.Until(reuseFrom) + 100*time.Millisecond)
	body, _ := json.Marshal(map[string]string{"refreshToken": rt})
	if a, _ := b.do(http.MethodPost, rs[1].URL+"/user/refresh", body); a.Status != http.StatusUnauthorized || a.field("error_code") != "REFRESH_TOKEN_REUSED" {
		t.Fatalf("reuse after the interval: %v", a)
	}
	body, _ = json.Marshal(map[string]string{"refresh_token": rotated.RefreshToken})
	if a, _ := b.do(http.MethodPost, rs[2].URL+"/user/refresh", body); a.Status != http.StatusUnauthorized {
		t.Fatalf("newest token of a revoked family at %s: %v", rs[2].name, a)
	}
	for _, r := range rs {
		if s := b.bearerGet(r.URL+"/token", rotated.Token); s != http.StatusUnauthorized {
			t.Fatalf("access token of a revoked family at %s: %d", r.name, s)
		}
	}

	// Key rotation: once the key is due, sign-ins at all replicas at once
	// rotate it to exactly one new key, which every replica accepts.
	firstKid := kidOf(t, jwt)
	time.Sleep(time.Until(keyDue) + 100*time.Millisecond)
	jwts := make([]string, 3)
	errs := make([]error, 3)
	for i, r := range rs {
		wg.Go(func() { jwts[i], _, errs[i] = b.trySignIn(r.URL, "user"+r.name[len(r.name)-1:]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	kids := map[string]bool{}
	for i, j := range jwts {
		kids[kidOf(t, j)] = true
		for _, r := range rs {
			if s := b.bearerGet(r.URL+"/token", j); s != http.StatusOK {
				t.Fatalf("JWT from %s at %s: %d", rs[i].name, r.name, s)
			}
		}
	}
	if len(kids) != 1 || kids[firstKid] {
		t.Fatalf("after rotation the replicas sign with %d keys (old key among them: %v), want one new key", len(kids), kids[firstKid])
	}
	a, _ := b.do(http.MethodGet, rs[1].URL+"/.well-known/jwks.json", nil)
	var jwks struct{ Keys []struct{ Kid string } }
	_ = json.Unmarshal(a.Body, &jwks)
	if len(jwks.Keys) != 2 {
		t.Fatalf("JWKS lists %d keys, want the new one and the old one (its tokens are still valid)", len(jwks.Keys))
	}
}
