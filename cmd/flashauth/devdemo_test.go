package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flashbacktech/flashauth/internal/testkit"
)

// TestDemoRoutes: the demo answers GET and HEAD of / and its two assets,
// under its own CSP; every other request reaches the API unchanged.
func TestDemoRoutes(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := withDemo("http://127.0.0.1:8080/")(api)
	for _, tc := range []struct {
		method, path string
		status       int
		ctype, body  string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `data-redirect-uri="http://127.0.0.1:8080/"`},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/_dev/demo/demo.js", 200, "text/javascript; charset=utf-8", `"use strict"`},
		{"GET", "/_dev/demo/demo.css", 200, "text/css; charset=utf-8", "body {"},
		{"GET", "/_dev/demo/index.html", 418, "", ""},
		{"GET", "/_dev/demo/", 418, "", ""},
		{"GET", "/index.html", 418, "", ""},
		{"POST", "/", 418, "", ""},
		{"DELETE", "/_dev/demo/demo.js", 418, "", ""},
		{"GET", "/token", 418, "", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.status != 200 {
				return
			}
			if got := rec.Header().Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			csp := rec.Header().Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("CSP %q", csp)
			}
			if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", rec.Header())
			}
			if !strings.Contains(rec.Body.String(), tc.body) || (tc.method == "HEAD" && rec.Body.Len() > 0) {
				t.Errorf("body %.80q, want %q", rec.Body.String(), tc.body)
			}
		})
	}
}

// TestServeHasNoDemo: only dev serves the demo; serve's / is the API's 404.
func TestServeHasNoDemo(t *testing.T) {
	env := map[string]string{
		"FLASHAUTH_ADDR": "127.0.0.1:0", "GITHUB_CLIENT_ID": "Iv1.x", "GITHUB_CLIENT_SECRET": "sek",
		"FLASHAUTH_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "db"),
		"FLASHAUTH_SECRET_KEY":   strings.Repeat("k", 32),
	}
	var stderr testkit.SyncBuffer
	lines, stop := startCmd(t, []string{"serve"}, env, &stderr)
	base := waitLine(t, lines, regexp.MustCompile(`^flashauth listening on (http://\S+)$`))[1]
	go func() {
		for lines.Scan() {
		}
	}()
	for _, path := range []string{"/", "/_dev/demo/demo.js"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			ErrorCode string `json:"error_code"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 404 || body.ErrorCode != "NOT_FOUND" {
			t.Errorf("serve GET %s: %d %q, want 404 NOT_FOUND", path, resp.StatusCode, body.ErrorCode)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// The dev callback page shows a shell command with the callback's code and
// state for the reader to copy. html/template escapes them for HTML, not for
// the shell, so a crafted link (?code=x'$(...)') would put a command of the
// sender's choosing into the reader's terminal: values GitHub never sends
// are not shown.
func TestDevCallbackRefusesShellInjection(t *testing.T) {
	h := devCallback("http://127.0.0.1:8080", "http://127.0.0.1:9090/_dev/callback")
	get := func(query string) string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/_dev/callback?"+query, nil))
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("?%s: CSP %q", query, csp)
		}
		return rec.Body.String()
	}
	for _, q := range []string{
		"code=x%27%3B%20touch%20%2Ftmp%2Fpwned%3B%20%27&state=s",
		"code=abc&state=%27%24(id)%27",
		"code=abc%0Aid&state=s",
		"code=&state=s",
	} {
		body := get(q)
		if strings.Contains(body, "curl") {
			t.Errorf("?%s: the page shows a command:\n%s", q, body)
		}
		if !strings.Contains(body, "Not a sign-in callback") {
			t.Errorf("?%s: no explanation:\n%s", q, body)
		}
	}
	body := get("code=4f2c9a1b0e7d6c5b3a21&state=St4te-_.~x")
	if !strings.Contains(body, `"code": "4f2c9a1b0e7d6c5b3a21", "state": "St4te-_.~x"`) {
		t.Errorf("a genuine callback's command is missing:\n%s", body)
	}
}
