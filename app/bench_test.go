package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/githubemu"
)

// newBenchHarness is a harness whose logs are discarded, so the benchmark
// measures the refresh path, not log formatting into a buffer.
func newBenchHarness(b *testing.B) *harness {
	b.Helper()
	h := newHarness(b, func(c *app.Config) { c.LogLevel = "error" })
	return h
}

func postRefresh(b *testing.B, client *http.Client, url, token string) {
	req, _ := http.NewRequest(http.MethodPost, url+"/auth/github/refresh", strings.NewReader(`{"refresh_token":"`+token+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// BenchmarkRefreshUnique: every iteration refreshes a token never seen
// before: claim, upstream call to the in-process emulator over loopback,
// seal, commit, answer.
func BenchmarkRefreshUnique(b *testing.B) {
	h := newBenchHarness(b)
	u := h.emu.AddUser(githubemu.User{Login: "bench"})
	tokens := make([]string, b.N)
	for i := range tokens {
		g, err := h.emu.MintGrant(u.ID)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = g.RefreshToken
	}
	client := h.srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		postRefresh(b, client, h.srv.URL, tokens[i])
	}
}

// BenchmarkRefreshHotToken: one token under parallel load. The first
// request refreshes; every other one is a replay from the ledger.
func BenchmarkRefreshHotToken(b *testing.B) {
	h := newBenchHarness(b)
	g := h.grant()
	client := h.srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			postRefresh(b, client, h.srv.URL, g.RefreshToken)
		}
	})
	b.StopTimer()
	if c := h.emu.Calls().TokenRefresh; c != 1 {
		b.Fatalf("upstream refreshes = %d, want 1", c)
	}
}

// benchSignIn signs a fresh emulator user in and returns the session
// refresh token.
func benchSignIn(b *testing.B, h *harness) string {
	b.Helper()
	u := h.emu.AddUser(githubemu.User{Login: "benchuser"})
	r := h.do(http.MethodGet, "/auth/github/authorize?redirect_uri="+url.QueryEscape("http://localhost/cb"), "", nil)
	var az struct{ URL, State string }
	if err := json.Unmarshal(r.Body, &az); err != nil {
		b.Fatal(err)
	}
	au, _ := url.Parse(az.URL)
	q := au.Query()
	code, err := h.emu.CompleteLogin(githubemu.LoginParams{
		ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"), State: q.Get("state"),
		CodeChallenge: q.Get("code_challenge"), CodeChallengeMethod: q.Get("code_challenge_method"), UserID: u.ID,
	})
	if err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"code": code, "state": az.State, "redirect_uri": "http://localhost/cb"})
	r = h.do(http.MethodPost, "/auth/github", "application/json", bytes.NewReader(body))
	var out struct {
		AuthState struct{ SessionRefreshToken string }
	}
	if err := json.Unmarshal(r.Body, &out); err != nil || out.AuthState.SessionRefreshToken == "" {
		b.Fatalf("sign-in: %d", r.Status)
	}
	return out.AuthState.SessionRefreshToken
}

// BenchmarkSessionRefresh: POST /user/refresh over loopback HTTP on SQLite,
// each iteration rotating the token the previous one returned.
func BenchmarkSessionRefresh(b *testing.B) {
	h := newBenchHarness(b)
	tok := benchSignIn(b, h)
	client := h.srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/user/refresh", strings.NewReader(`{"refresh_token":"`+tok+`"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var out struct{ RefreshToken string }
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
		tok = out.RefreshToken
	}
}
