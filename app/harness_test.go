package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/logging"
)

const (
	testClientID     = "Iv1.testclient"
	testClientSecret = "test-client-secret-0123456789abcdef"
)

// harness is a whole flashauth (real SQLite, real GitHub client) in front of
// the emulator, with a clock both share.
type harness struct {
	t      testing.TB
	clock  *testkit.Clock
	emu    *githubemu.Emulator
	emuSrv *httptest.Server
	cfg    app.Config
	app    *app.App
	srv    *httptest.Server
	logs   *testkit.SyncBuffer
	// secrets are every token, code and secret the test saw; a peer shares
	// them with the harness it was opened from.
	secrets *secretSet
}

// secretSet is the list of secrets the scan at the end of a test looks for.
type secretSet struct {
	mu   sync.Mutex
	list []string
}

type option func(*app.Config)

func newHarness(t testing.TB, opts ...option) *harness {
	t.Helper()
	h := &harness{t: t, clock: testkit.NewClock(time.UnixMilli(1764120000000)), logs: &testkit.SyncBuffer{}, secrets: &secretSet{}}
	h.emu = githubemu.New(githubemu.Config{ClientID: testClientID, ClientSecret: testClientSecret, Clock: h.clock})
	h.emuSrv = httptest.NewServer(h.emu)
	t.Cleanup(func() { h.emu.Close(); h.emuSrv.Close() })
	h.cfg = app.Config{
		Addr:             "127.0.0.1:0",
		DatabaseURL:      "sqlite:" + filepath.Join(t.TempDir(), "flashauth.db"),
		ClientID:         testClientID,
		ClientSecret:     testClientSecret,
		GitHubURL:        h.emuSrv.URL,
		GitHubAPIURL:     h.emuSrv.URL,
		ReplayWindow:     60 * time.Second,
		UpstreamTimeout:  2 * time.Second,
		RefreshAuth:      "compat",
		LogLevel:         "debug",
		LogFormat:        "json",
		BreakerFailures:  1000, // the breaker has its own tests; keep it out of the way
		BreakerCooldown:  time.Second,
		ShutdownTimeout:  5 * time.Second,
		SessionAccessTTL: time.Hour,
		SessionTTL:       30 * 24 * time.Hour,
		ReuseInterval:    10 * time.Second,
		KeyRotation:      30 * 24 * time.Hour,
		Version:          "test",
	}
	for _, o := range opts {
		o(&h.cfg)
	}
	h.see(testClientSecret)
	h.start()
	t.Cleanup(h.checkNoSecrets)
	return h
}

// start (re)opens the app on the harness's database.
func (h *harness) start() {
	h.t.Helper()
	h.app, h.srv = h.open(h.t, h.cfg, h.clock)
}

// open runs a flashauth with cfg and clock, logging into h's logs (which the
// secret scan covers), until the end of t.
func (h *harness) open(t testing.TB, cfg app.Config, clock flashauth.Clock) (*app.App, *httptest.Server) {
	t.Helper()
	level, err := logging.ParseLevel(cfg.LogLevel)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, logging.New(h.logs, "json", level), clock)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(func() { srv.Close(); a.Close() })
	return a, srv
}

func (h *harness) dbPath() string { return strings.TrimPrefix(h.cfg.DatabaseURL, "sqlite:") }

// see records secrets that must never appear in logs or the database.
func (h *harness) see(s ...string) {
	h.secrets.mu.Lock()
	defer h.secrets.mu.Unlock()
	for _, v := range s {
		if v != "" {
			h.secrets.list = append(h.secrets.list, v)
		}
	}
}

// secretFields are the JSON fields whose string values are secrets, in
// requests and answers of every endpoint.
var secretFields = map[string]bool{
	"token": true, "accessToken": true, "refreshToken": true, "sessionRefreshToken": true,
	"refresh_token": true, "code": true, "state": true,
}

// seeJSON records the secret fields of a JSON body, at any depth. Short
// values are test garbage ("x", "has space"), not secrets, and would match
// unrelated log text.
func (h *harness) seeJSON(body []byte) {
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && secretFields[k] && len(s) >= 16 && len(s) <= 4096 {
					h.see(s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var v any
	if json.Unmarshal(body, &v) == nil {
		walk(v)
	}
}

// redact replaces every secret h has seen in s.
func (h *harness) redact(s string) string {
	h.secrets.mu.Lock()
	defer h.secrets.mu.Unlock()
	for _, sec := range h.secrets.list {
		s = strings.ReplaceAll(s, sec, "[secret]")
	}
	return s
}

// grant mints a token pair for the emulator user "octo".
func (h *harness) grant() githubemu.Grant {
	h.t.Helper()
	u := h.emu.AddUser(githubemu.User{Login: "octo", Emails: []githubemu.Email{{Email: "octo@example.com", Primary: true, Verified: true}}})
	g, err := h.emu.MintGrant(u.ID)
	if err != nil {
		h.t.Fatalf("MintGrant: %v", err)
	}
	h.see(g.AccessToken, g.RefreshToken)
	return g
}

// response is an answer of flashauth, read whole.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	TLS    *tls.ConnectionState
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.Body)
	}
	return m
}

// str returns the non-empty string at the path keys of the body.
func (r response) str(t testing.TB, keys ...string) string {
	t.Helper()
	var v any = r.json(t)
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	s, _ := v.(string)
	if s == "" {
		t.Fatalf("no string at %v", keys)
	}
	return s
}

// send sends req with c and reads the whole answer. It does not fail the
// test, so goroutines may use it.
func send(c *http.Client, req *http.Request) (response, error) {
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b, TLS: resp.TLS}, nil
}

// do sends a request to flashauth and records the secrets of its answer.
func (h *harness) do(method, path, contentType string, body io.Reader, hdr ...string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := send(h.srv.Client(), req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	h.seeJSON(r.Body)
	return r
}

// refresh posts a refresh of token.
func (h *harness) refresh(token string, hdr ...string) response {
	h.t.Helper()
	body, _ := json.Marshal(map[string]string{"refresh_token": token})
	return h.do(http.MethodPost, "/auth/github/refresh", "application/json", bytes.NewReader(body), hdr...)
}

// wantError checks a contract error answer.
func wantError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	m := r.json(t)
	if m["success"] != false || m["error_code"] != code {
		t.Fatalf("body = %s, want success=false error_code=%s", r.Body, code)
	}
	if msg, _ := m["message"].(string); msg == "" {
		t.Errorf("empty message")
	}
	if (status == 429 || status == 503) && r.Header.Get("Retry-After") == "" {
		t.Errorf("%d without Retry-After", status)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Errorf("no X-Request-Id")
	}
}

// checkNoSecrets scans the logs and every file of the database for each
// secret the test saw.
func (h *harness) checkNoSecrets() {
	h.t.Helper()
	h.secrets.mu.Lock()
	secrets := append([]string(nil), h.secrets.list...)
	h.secrets.mu.Unlock()
	logs := h.logs.String()
	var files [][]byte
	names, _ := filepath.Glob(h.dbPath() + "*") // the database, its WAL and shm
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err == nil {
			files = append(files, b)
		}
	}
	if len(files) == 0 {
		h.t.Errorf("no database files found at %s", h.dbPath())
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			h.t.Errorf("a secret (%d chars, prefix %.4s) appears in the logs", len(s), s)
		}
		for i, f := range files {
			if bytes.Contains(f, []byte(s)) {
				h.t.Errorf("a secret (%d chars, prefix %.4s) appears in database file %s", len(s), s, names[i])
			}
		}
	}
}
