// Package apptest runs a whole flashauth for tests: app.New over a real
// SQLite database in a temporary directory and the real GitHub client in
// front of the GitHub emulator, all on one clock the test moves. The HTTP
// tests of httpapi and the wiring tests of app share it. At the end of every
// test it scans the logs and the database files for each secret the test saw.
//
// It is for tests only; production code must not import it.
package apptest

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

// The OAuth app the emulator knows and flashauth is configured with.
const (
	ClientID     = "Iv1.testclient"
	ClientSecret = "test-client-secret-0123456789abcdef"
)

// Harness is a whole flashauth (real SQLite, real GitHub client) in front of
// the emulator, with a clock both share.
type Harness struct {
	T      testing.TB
	Clock  *testkit.Clock
	Emu    *githubemu.Emulator
	EmuSrv *httptest.Server
	Cfg    app.Config
	App    *app.App
	Srv    *httptest.Server
	Logs   *testkit.SyncBuffer
	// secrets are every token, code and secret the test saw; a peer shares
	// them with the harness it was opened from.
	secrets *secretSet
}

// secretSet is the list of secrets the scan at the end of a test looks for.
type secretSet struct {
	mu   sync.Mutex
	list []string
}

// Option changes the configuration New starts flashauth with.
type Option func(*app.Config)

// New starts a flashauth with the test configuration changed by opts, until
// the end of t.
func New(t testing.TB, opts ...Option) *Harness {
	t.Helper()
	h := &Harness{T: t, Clock: testkit.NewClock(time.UnixMilli(1764120000000)), Logs: &testkit.SyncBuffer{}, secrets: &secretSet{}}
	h.Emu = githubemu.New(githubemu.Config{ClientID: ClientID, ClientSecret: ClientSecret, Clock: h.Clock})
	h.EmuSrv = httptest.NewServer(h.Emu)
	t.Cleanup(func() { h.Emu.Close(); h.EmuSrv.Close() })
	h.Cfg = app.Config{
		Addr:             "127.0.0.1:0",
		DatabaseURL:      "sqlite:" + filepath.Join(t.TempDir(), "flashauth.db"),
		ClientID:         ClientID,
		ClientSecret:     ClientSecret,
		GitHubURL:        h.EmuSrv.URL,
		GitHubAPIURL:     h.EmuSrv.URL,
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
		o(&h.Cfg)
	}
	h.See(ClientSecret)
	h.Start()
	t.Cleanup(h.checkNoSecrets)
	return h
}

// Start (re)opens the app on the harness's database.
func (h *Harness) Start() {
	h.T.Helper()
	h.App, h.Srv = h.open(h.T, h.Cfg, h.Clock)
}

// open runs a flashauth with cfg and clock, logging into h's logs (which the
// secret scan covers), until the end of t.
func (h *Harness) open(t testing.TB, cfg app.Config, clock flashauth.Clock) (*app.App, *httptest.Server) {
	t.Helper()
	level, err := logging.ParseLevel(cfg.LogLevel)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, logging.New(h.Logs, "json", level), clock)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(func() { srv.Close(); a.Close() })
	return a, srv
}

func (h *Harness) DBPath() string { return strings.TrimPrefix(h.Cfg.DatabaseURL, "sqlite:") }

// See records secrets that must never appear in logs or the database.
func (h *Harness) See(s ...string) {
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

// SeeJSON records the secret fields of a JSON body, at any depth. Short
// values are test garbage ("x", "has space"), not secrets, and would match
// unrelated log text.
func (h *Harness) SeeJSON(body []byte) {
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && secretFields[k] && len(s) >= 16 && len(s) <= 4096 {
					h.See(s)
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

// Redact replaces every secret h has seen in s.
func (h *Harness) Redact(s string) string {
	h.secrets.mu.Lock()
	defer h.secrets.mu.Unlock()
	for _, sec := range h.secrets.list {
		s = strings.ReplaceAll(s, sec, "[secret]")
	}
	return s
}

// Grant mints a token pair for the emulator user "octo".
func (h *Harness) Grant() githubemu.Grant {
	h.T.Helper()
	u := h.Emu.AddUser(githubemu.User{Login: "octo", Emails: []githubemu.Email{{Email: "octo@example.com", Primary: true, Verified: true}}})
	g, err := h.Emu.MintGrant(u.ID)
	if err != nil {
		h.T.Fatalf("MintGrant: %v", err)
	}
	h.See(g.AccessToken, g.RefreshToken)
	return g
}

// Response is an answer of flashauth, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	TLS    *tls.ConnectionState
}

// JSON returns the body as a JSON object, failing the test when it is not one.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.Body)
	}
	return m
}

// Str returns the non-empty string at the path keys of the body.
func (r Response) Str(t testing.TB, keys ...string) string {
	t.Helper()
	var v any = r.JSON(t)
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

// Send sends req with c and reads the whole answer. It does not fail the
// test, so goroutines may use it.
func Send(c *http.Client, req *http.Request) (Response, error) {
	resp, err := c.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b, TLS: resp.TLS}, nil
}

// Do sends a request to flashauth and records the secrets of its answer.
func (h *Harness) Do(method, path, contentType string, body io.Reader, hdr ...string) Response {
	h.T.Helper()
	req, err := http.NewRequest(method, h.Srv.URL+path, body)
	if err != nil {
		h.T.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := Send(h.Srv.Client(), req)
	if err != nil {
		h.T.Fatalf("%s %s: %v", method, path, err)
	}
	h.SeeJSON(r.Body)
	return r
}

// Refresh posts a refresh of token to POST /auth/github/refresh.
func (h *Harness) Refresh(token string, hdr ...string) Response {
	h.T.Helper()
	body, _ := json.Marshal(map[string]string{"refresh_token": token})
	return h.Do(http.MethodPost, "/auth/github/refresh", "application/json", bytes.NewReader(body), hdr...)
}

// WantError checks a contract error answer.
func WantError(t *testing.T, r Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	m := r.JSON(t)
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
func (h *Harness) checkNoSecrets() {
	h.T.Helper()
	h.secrets.mu.Lock()
	secrets := append([]string(nil), h.secrets.list...)
	h.secrets.mu.Unlock()
	logs := h.Logs.String()
	var files [][]byte
	names, _ := filepath.Glob(h.DBPath() + "*") // the database, its WAL and shm
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err == nil {
			files = append(files, b)
		}
	}
	if len(files) == 0 {
		h.T.Errorf("no database files found at %s", h.DBPath())
	}
	// Also what the test never saw: a token minted and rotated inside.
	testkit.NoTokenShaped(h.T, "the logs", logs)
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			h.T.Errorf("a secret (%d chars, prefix %.4s) appears in the logs", len(s), s)
		}
		for i, f := range files {
			if bytes.Contains(f, []byte(s)) {
				h.T.Errorf("a secret (%d chars, prefix %.4s) appears in database file %s", len(s), s, names[i])
			}
		}
	}
}
