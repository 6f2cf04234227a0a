package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/app/apptest"
	"github.com/flashbacktech/flashauth/githubemu"
)

// newBenchHarness is a harness that logs errors only, so the benchmark
// measures the refresh path, not log formatting into a buffer.
func newBenchHarness(b *testing.B) *apptest.Harness {
	b.Helper()
	return apptest.New(b, func(c *app.Config) { c.LogLevel = "error" })
}

// postBench posts {"refresh_token": token} to path and requires a 200. It
// skips the harness's bookkeeping (the secret scan's records), which would
// grow with b.N.
func postBench(b *testing.B, client *http.Client, url, path, token string) apptest.Response {
	req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(`{"refresh_token":"`+token+`"}`))
	req.Header.Set("Content-Type", "application/json")
	r, err := apptest.Send(client, req)
	if err != nil {
		b.Fatal(err)
	}
	if r.Status != http.StatusOK {
		b.Fatalf("status %d", r.Status)
	}
	return r
}

// mintTokens has the emulator issue n GitHub refresh tokens of one user,
// before the clock starts.
func mintTokens(b *testing.B, h *apptest.Harness, n int) []string {
	b.Helper()
	u := h.Emu.AddUser(githubemu.User{Login: "bench"})
	tokens := make([]string, n)
	for i := range tokens {
		g, err := h.Emu.MintGrant(u.ID)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = g.RefreshToken
	}
	return tokens
}

// BenchmarkRefreshUnique: every iteration refreshes a token never seen
// before: claim, upstream call to the in-process emulator over loopback,
// seal, commit, answer.
func BenchmarkRefreshUnique(b *testing.B) {
	h := newBenchHarness(b)
	tokens := mintTokens(b, h, b.N)
	client := h.Srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		postBench(b, client, h.Srv.URL, "/auth/github/refresh", tokens[i])
	}
}

// BenchmarkRefreshUniqueParallel is BenchmarkRefreshUnique from 32
// concurrent clients (16 per CPU on the 2-CPU reference machine): what the
// ledger's write path does under load, where concurrent claims and commits
// share the single SQLite writer.
func BenchmarkRefreshUniqueParallel(b *testing.B) {
	h := newBenchHarness(b)
	tokens := mintTokens(b, h, b.N)
	client := h.Srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	var next atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			postBench(b, client, h.Srv.URL, "/auth/github/refresh", tokens[next.Add(1)-1])
		}
	})
}

// BenchmarkRefreshHotToken: one token under parallel load. The first
// request refreshes; every other one is a replay from the ledger.
func BenchmarkRefreshHotToken(b *testing.B) {
	h := newBenchHarness(b)
	g := h.Grant()
	client := h.Srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			postBench(b, client, h.Srv.URL, "/auth/github/refresh", g.RefreshToken)
		}
	})
	b.StopTimer()
	if c := h.Emu.Calls().TokenRefresh; c != 1 {
		b.Fatalf("upstream refreshes = %d, want 1", c)
	}
}

// BenchmarkSessionRefresh: POST /user/refresh over loopback HTTP on SQLite,
// each iteration rotating the token the previous one returned.
func BenchmarkSessionRefresh(b *testing.B) {
	h := newBenchHarness(b)
	tok := h.SignIn(b, h.GitHubUser("benchuser").ID, "").SessionRT
	client := h.Srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var out struct{ RefreshToken string }
		if err := json.Unmarshal(postBench(b, client, h.Srv.URL, "/user/refresh", tok).Body, &out); err != nil {
			b.Fatal(err)
		}
		tok = out.RefreshToken
	}
}
