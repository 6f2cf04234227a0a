package app_test

import (
	"bytes"
	"context"
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

	mu      sync.Mutex
	secrets []string // every token, code and secret the test saw
}

type option func(*app.Config)

func newHarness(t testing.TB, opts ...option) *harness {
	t.Helper()
	h := &harness{t: t, clock: testkit.NewClock(time.UnixMilli(1764120000000)), logs: &testkit.SyncBuffer{}}
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
	level, err := logging.ParseLevel(h.cfg.LogLevel)
	if err != nil {
		h.t.Fatal(err)
	}
	log := logging.New(h.logs, "json", level)
	a, err := app.New(context.Background(), h.cfg, log, h.clock)
	if err != nil {
		h.t.Fatalf("app.New: %v", err)
	}
	h.app = a
	h.srv = httptest.NewServer(a.Handler)
	h.t.Cleanup(func() { h.srv.Close(); a.Close() })
}

func (h *harness) dbPath() string { return strings.TrimPrefix(h.cfg.DatabaseURL, "sqlite:") }

// see records secrets that must never appear in logs or the database.
func (h *harness) see(s ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range s {
		if v != "" {
			h.secrets = append(h.secrets, v)
		}
	}
}

// grant mints a token pair for a fresh emulator user.
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

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.Body)
	}
	return m
}

// do sends a request to flashauth.
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
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// refresh posts a refresh of token and records what comes back as secret.
func (h *harness) refresh(token string, hdr ...string) response {
	h.t.Helper()
	body, _ := json.Marshal(map[string]string{"refresh_token": token})
	r := h.do(http.MethodPost, "/auth/github/refresh", "application/json", bytes.NewReader(body), hdr...)
	if r.Status == http.StatusOK {
		m := r.json(h.t)
		at, _ := m["accessToken"].(string)
		rt, _ := m["refreshToken"].(string)
		h.see(at, rt)
	}
	return r
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
	h.mu.Lock()
	secrets := append([]string(nil), h.secrets...)
	h.mu.Unlock()
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
