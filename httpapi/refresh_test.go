package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/app/apptest"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/seal"
)

func TestRefreshSuccessBody(t *testing.T) {
	h := apptest.New(t)
	g := h.Grant()
	start := h.Clock.Now()
	r := h.Refresh(g.RefreshToken)
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	for k, want := range map[string]string{
		"Content-Type":  "application/json; charset=utf-8",
		"Cache-Control": "no-store",
		"Pragma":        "no-cache",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	m := r.JSON(t)
	wantTypes := map[string]string{
		"success": "bool", "token": "string", "accessToken": "string", "refreshToken": "string",
		"expiresAt": "number", "expiresIn": "number", "refreshTokenExpiresAt": "number",
		"tokenType": "string", "scope": "string",
	}
	for k, typ := range wantTypes {
		v, ok := m[k]
		if !ok {
			t.Errorf("field %q missing", k)
			continue
		}
		switch typ {
		case "bool":
			_, ok = v.(bool)
		case "string":
			_, ok = v.(string)
		case "number":
			_, ok = v.(float64)
		}
		if !ok {
			t.Errorf("field %q = %#v, want a %s", k, v, typ)
		}
	}
	if len(m) != len(wantTypes) {
		t.Errorf("fields = %v, want exactly %v", keys(m), keys(wantTypes))
	}
	if m["success"] != true {
		t.Errorf("success = %v", m["success"])
	}
	at, rt := m["accessToken"].(string), m["refreshToken"].(string)
	if m["token"] != at || !strings.HasPrefix(at, "ghu_") || at == g.AccessToken {
		t.Errorf("token/accessToken = %v/%v, want the same new ghu_ token", m["token"], at)
	}
	if !strings.HasPrefix(rt, "ghr_") || rt == g.RefreshToken {
		t.Errorf("refreshToken not rotated: prefix %.4s", rt)
	}
	if got, want := int64(m["expiresAt"].(float64)), start.Add(8*time.Hour).UnixMilli(); got != want {
		t.Errorf("expiresAt = %d, want %d (milliseconds)", got, want)
	}
	if m["expiresIn"] != float64(28800) {
		t.Errorf("expiresIn = %v, want 28800", m["expiresIn"])
	}
	if got, want := int64(m["refreshTokenExpiresAt"].(float64)), start.Add(15897600*time.Second).UnixMilli(); got != want {
		t.Errorf("refreshTokenExpiresAt = %d, want %d", got, want)
	}
	if m["tokenType"] != "bearer" || m["scope"] != "" {
		t.Errorf("tokenType/scope = %v/%v", m["tokenType"], m["scope"])
	}
	// The lineage of the rotation is recorded, by hash only.
	lin, err := h.App.Store.GetLineage(context.Background(), seal.Hash(rt))
	if err != nil || !bytes.Equal(lin.ParentHash, seal.Hash(g.RefreshToken)) {
		t.Errorf("lineage of the new token = %+v, %v; want parent = old token's hash", lin, err)
	}
	old, err := h.App.Store.GetLineage(context.Background(), seal.Hash(g.RefreshToken))
	if err != nil || !bytes.Equal(old.ReplacedBy, seal.Hash(rt)) {
		t.Errorf("lineage of the old token = %+v, %v; want ReplacedBy = new token's hash", old, err)
	}
	// The new refresh token is a real one: it refreshes again.
	if r2 := h.Refresh(rt); r2.Status != http.StatusOK {
		t.Fatalf("refresh with the rotated token: %d %s", r2.Status, r2.Body)
	}
	if c := h.Emu.Calls().TokenRefresh; c != 2 {
		t.Errorf("upstream refreshes = %d, want 2", c)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRefreshReplayWithinWindow(t *testing.T) {
	h := apptest.New(t)
	g := h.Grant()
	first := h.Refresh(g.RefreshToken)
	if first.Status != 200 {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	h.Clock.Advance(59 * time.Second)
	again := h.Refresh(g.RefreshToken)
	if again.Status != 200 || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("retry inside the window: %d, body differs: %v", again.Status, !bytes.Equal(again.Body, first.Body))
	}
	if c := h.Emu.Calls().TokenRefresh; c != 1 {
		t.Fatalf("upstream refreshes = %d after a replay, want 1", c)
	}
	h.Clock.Advance(2 * time.Second)
	late := h.Refresh(g.RefreshToken)
	apptest.WantError(t, late, http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)
	if c := h.Emu.Calls().TokenRefresh; c != 2 {
		t.Fatalf("upstream refreshes = %d, want 2 (after the window GitHub is asked and says no)", c)
	}
	// A definitive rejection is replayed too, without asking GitHub again.
	apptest.WantError(t, h.Refresh(g.RefreshToken), http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)
	if c := h.Emu.Calls().TokenRefresh; c != 2 {
		t.Fatalf("upstream refreshes = %d, want 2 (rejection replayed)", c)
	}
}

func TestRefreshConcurrentExactlyOnce(t *testing.T) {
	h := apptest.New(t)
	g := h.Grant()
	h.Emu.SetLatency(100 * time.Millisecond) // keep the first call in flight while the others arrive
	const n = 100
	statuses, bodies := h.ConcurrentPosts(t, "/auth/github/refresh", `{"refresh_token":"`+g.RefreshToken+`"}`, n)
	for i := range n {
		if statuses[i] != 200 || !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("request %d: status %d, identical body %v", i, statuses[i], bytes.Equal(bodies[i], bodies[0]))
		}
	}
	if c := h.Emu.Calls().TokenRefresh; c != 1 {
		t.Fatalf("upstream refreshes = %d for %d concurrent requests, want 1", c, n)
	}
}

// Every row of the refresh error table of docs/api.md that this issue can trigger, each by
// its real cause.
func TestRefreshErrorRows(t *testing.T) {
	type row struct {
		name       string
		opts       []apptest.Option
		setup      func(h *apptest.Harness) string // returns the token to present
		status     int
		code       string
		retryAfter string // exact Retry-After when known
		upstream   int    // upstream token calls expected, -1 = don't care
	}
	rows := []row{
		{
			name: "unknown token", setup: func(h *apptest.Harness) string { return "ghr_" + strings.Repeat("x", 76) },
			status: 401, code: flashauth.CodeInvalidRefreshToken, upstream: 1,
		},
		{
			name: "reused token after the window",
			setup: func(h *apptest.Harness) string {
				g := h.Grant()
				if r := h.Refresh(g.RefreshToken); r.Status != 200 {
					h.T.Fatalf("setup refresh: %d", r.Status)
				}
				h.Clock.Advance(61 * time.Second)
				return g.RefreshToken
			},
			status: 401, code: flashauth.CodeInvalidRefreshToken, upstream: 2,
		},
		{
			name: "GitHub 5xx",
			setup: func(h *apptest.Harness) string {
				h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Status: 502, Count: 1})
				return h.Grant().RefreshToken
			},
			status: 503, code: flashauth.CodeUpstreamUnavailable, upstream: 1,
		},
		{
			name: "GitHub HTML 429 with Retry-After",
			setup: func(h *apptest.Harness) string {
				h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultRateLimitHTML, Status: 429, RetryAfter: 42 * time.Second, Count: 1})
				return h.Grant().RefreshToken
			},
			status: 503, code: flashauth.CodeUpstreamUnavailable, retryAfter: "42", upstream: 1,
		},
		{
			name: "GitHub truncated JSON",
			setup: func(h *apptest.Harness) string {
				h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultTruncatedJSON, Count: 1})
				return h.Grant().RefreshToken
			},
			status: 502, code: flashauth.CodeUpstreamBadResponse, upstream: 1,
		},
		{
			name: "GitHub hangs past the upstream timeout",
			opts: []apptest.Option{func(c *app.Config) { c.UpstreamTimeout = 300 * time.Millisecond }},
			setup: func(h *apptest.Harness) string {
				h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultHang, Count: 1})
				return h.Grant().RefreshToken
			},
			status: 503, code: flashauth.CodeUpstreamUnavailable, upstream: 1,
		},
		{
			name:   "GitHub unreachable",
			opts:   []apptest.Option{func(c *app.Config) { c.GitHubURL = "http://127.0.0.1:1" }},
			setup:  func(h *apptest.Harness) string { return h.Grant().RefreshToken },
			status: 503, code: flashauth.CodeUpstreamUnavailable, upstream: 0,
		},
		{
			name:   "wrong client secret",
			opts:   []apptest.Option{func(c *app.Config) { c.ClientSecret = "not-the-secret" }},
			setup:  func(h *apptest.Harness) string { return h.Grant().RefreshToken },
			status: 500, code: flashauth.CodeUpstreamCredentials, upstream: 1,
		},
		{
			name: "per-token rate limit",
			opts: []apptest.Option{func(c *app.Config) { c.RateTokenPerMin = 1 }},
			setup: func(h *apptest.Harness) string {
				tok := h.Grant().RefreshToken
				// burstOf(1) = 5: five attempts reach GitHub and fail
				// transiently (nothing is committed, so each retry is an
				// attempt of its own); replays would not count.
				h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Status: 502, Count: 5})
				for range 5 {
					if r := h.Refresh(tok); r.Status != http.StatusServiceUnavailable {
						h.T.Fatalf("setup refresh: %d %s", r.Status, r.Body)
					}
				}
				return tok
			},
			status: 429, code: flashauth.CodeRateLimited, upstream: 5,
		},
		{
			name: "store unavailable",
			setup: func(h *apptest.Harness) string {
				g := h.Grant()
				_ = h.App.Store.Close()
				return g.RefreshToken
			},
			status: 503, code: flashauth.CodeStoreUnavailable, upstream: 0,
		},
		{
			name: "committed outcome cannot be opened",
			setup: func(h *apptest.Harness) string {
				g := h.Grant()
				ctx := context.Background()
				key := seal.Hash(g.RefreshToken)
				now := h.Clock.Now()
				if _, ok, err := h.App.Store.ClaimLedger(ctx, flashauth.LedgerGitHubRefresh, key, "x", now, now.Add(time.Minute)); !ok || err != nil {
					h.T.Fatalf("claim: %v %v", ok, err)
				}
				if err := h.App.Store.CompleteLedger(ctx, flashauth.LedgerGitHubRefresh, key, "x", []byte("garbage"), now.Add(time.Minute), nil); err != nil {
					h.T.Fatal(err)
				}
				return g.RefreshToken
			},
			status: 500, code: flashauth.CodeInternal, upstream: 0,
		},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			h := apptest.New(t, tc.opts...)
			tok := tc.setup(h)
			r := h.Refresh(tok)
			apptest.WantError(t, r, tc.status, tc.code)
			if tc.retryAfter != "" && r.Header.Get("Retry-After") != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", r.Header.Get("Retry-After"), tc.retryAfter)
			}
			if tc.upstream >= 0 {
				if c := h.Emu.Calls().TokenRefresh; c != int64(tc.upstream) {
					t.Errorf("upstream refresh calls = %d, want %d", c, tc.upstream)
				}
			}
		})
	}
}

// Transient failures are never cached: once GitHub recovers, the same token
// refreshes.
func TestRefreshTransientNotCached(t *testing.T) {
	h := apptest.New(t)
	g := h.Grant()
	h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Status: 503, Count: 1})
	apptest.WantError(t, h.Refresh(g.RefreshToken), 503, flashauth.CodeUpstreamUnavailable)
	if r := h.Refresh(g.RefreshToken); r.Status != 200 {
		t.Fatalf("after GitHub recovered: %d %s", r.Status, r.Body)
	}
}

func TestRefreshBadInput(t *testing.T) {
	h := apptest.New(t)
	long := strings.Repeat("a", 5000)
	rows := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"empty body", "application/json", "", 400, flashauth.CodeInvalidRequest},
		{"not JSON", "application/json", "refresh_token=ghr_x", 400, flashauth.CodeInvalidRequest},
		{"array", "application/json", `["ghr_x"]`, 400, flashauth.CodeInvalidRequest},
		{"string", "application/json", `"ghr_x"`, 400, flashauth.CodeInvalidRequest},
		{"null body", "application/json", `null`, 400, flashauth.CodeInvalidRequest},
		{"missing field", "application/json", `{"refreshToken":"ghr_x"}`, 400, flashauth.CodeInvalidRequest},
		{"number", "application/json", `{"refresh_token":12345}`, 400, flashauth.CodeInvalidRequest},
		{"null", "application/json", `{"refresh_token":null}`, 400, flashauth.CodeInvalidRequest},
		{"empty", "application/json", `{"refresh_token":""}`, 400, flashauth.CodeInvalidRequest},
		{"object", "application/json", `{"refresh_token":{"a":1}}`, 400, flashauth.CodeInvalidRequest},
		{"spaces", "application/json", `{"refresh_token":"ghr_ab cd"}`, 400, flashauth.CodeInvalidRequest},
		{"control character", "application/json", `{"refresh_token":"ghr_ab\u0001cd"}`, 400, flashauth.CodeInvalidRequest},
		{"newline", "application/json", `{"refresh_token":"ghr_ab\ncd"}`, 400, flashauth.CodeInvalidRequest},
		{"non-ASCII", "application/json", `{"refresh_token":"ghr_abé"}`, 400, flashauth.CodeInvalidRequest},
		{"5000 characters", "application/json", `{"refresh_token":"` + long + `"}`, 400, flashauth.CodeInvalidRequest},
		{"trailing garbage", "application/json", `{"refresh_token":"ghr_x"} {}`, 400, flashauth.CodeInvalidRequest},
		{"form-encoded", "application/x-www-form-urlencoded", "refresh_token=ghr_x", 415, flashauth.CodeUnsupportedMediaType},
		{"no content type", "", `{"refresh_token":"ghr_x"}`, 415, flashauth.CodeUnsupportedMediaType},
		{"text/plain", "text/plain", `{"refresh_token":"ghr_x"}`, 415, flashauth.CodeUnsupportedMediaType},
		{"200 KB", "application/json", `{"refresh_token":"` + strings.Repeat("a", 200<<10) + `"}`, 413, flashauth.CodePayloadTooLarge},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Do(http.MethodPost, "/auth/github/refresh", tc.contentType, strings.NewReader(tc.body))
			apptest.WantError(t, r, tc.status, tc.code)
		})
	}
	// A charset parameter is fine, and unknown fields are ignored.
	g := h.Grant()
	r := h.Do(http.MethodPost, "/auth/github/refresh", "application/json; charset=utf-8",
		strings.NewReader(`{"refresh_token":"`+g.RefreshToken+`","deviceInfo":{"os":"x"},"activationUid":"u"}`))
	if r.Status != 200 {
		t.Fatalf("charset + unknown fields: %d %s", r.Status, r.Body)
	}
	if c := h.Emu.Calls().TokenRefresh; c != 1 {
		t.Fatalf("upstream calls = %d: bad input must never reach GitHub", c)
	}
}

func TestRoutingErrors(t *testing.T) {
	h := apptest.New(t)
	r := h.Do(http.MethodGet, "/auth/github/refresh", "", nil)
	apptest.WantError(t, r, 405, flashauth.CodeMethodNotAllowed)
	if allow := r.Header.Get("Allow"); !strings.Contains(allow, "POST") {
		t.Errorf("Allow = %q", allow)
	}
	apptest.WantError(t, h.Do(http.MethodGet, "/nope", "", nil), 404, flashauth.CodeNotFound)
	apptest.WantError(t, h.Do(http.MethodPost, "/api/v1/auth/github/refresh", "application/json", strings.NewReader("{}")), 404, flashauth.CodeNotFound)

	// The caller's sane request id is echoed; an insane one is replaced.
	r = h.Do(http.MethodGet, "/healthz", "", nil, "X-Request-Id", "abc-123")
	if r.Header.Get("X-Request-Id") != "abc-123" || r.Status != 200 {
		t.Errorf("sane request id not echoed: %q", r.Header.Get("X-Request-Id"))
	}
	r = h.Do(http.MethodGet, "/healthz", "", nil, "X-Request-Id", "bad id\twith spaces")
	if id := r.Header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") {
		t.Errorf("insane request id kept: %q", id)
	}
	if !strings.Contains(h.Logs.String(), `"request_id":"abc-123"`) {
		t.Errorf("logs do not carry the request id")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	h := apptest.New(t)
	if r := h.Do(http.MethodGet, "/healthz", "", nil); r.Status != 200 || r.JSON(t)["success"] != true {
		t.Fatalf("healthz: %d %s", r.Status, r.Body)
	}
	if r := h.Do(http.MethodGet, "/readyz", "", nil); r.Status != 200 {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
	if r := h.Do(http.MethodGet, "/metrics", "", nil); r.Status != 200 || !bytes.Contains(r.Body, []byte("flashauth_http_requests_total")) {
		t.Fatalf("metrics: %d", r.Status)
	}
	_ = h.App.Store.Close()
	// A passed check answers probes for a second (readyFresh), so that a
	// /readyz flood costs bounded store writes.
	h.Clock.Advance(time.Second)
	apptest.WantError(t, h.Do(http.MethodGet, "/readyz", "", nil), 503, flashauth.CodeStoreUnavailable)
	if r := h.Do(http.MethodGet, "/healthz", "", nil); r.Status != 200 {
		t.Fatalf("healthz must not depend on the store: %d", r.Status)
	}
}
