package github

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/testkit"
)

// Secrets the tests send or receive. No error string may contain any of them.
const (
	testClientID     = "Iv1.0123456789abcdef"
	testClientSecret = "cs_SECRET_0123456789abcdef0123456789abcdef"
	testRefresh      = "ghr_PRESENTEDrefresh0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN"
	testCode         = "code_SECRET_5f4dcc3b5aa765d61d83"
	testVerifier     = "verifier_SECRET_dBjftJeZ4CVPmB92K27uhbUJU1p1r"
	testAccess       = "ghu_PRESENTEDaccess0123456789abcdefghijklm"
	newAccess        = "ghu_ISSUEDaccess0123456789abcdefghijklmnop"
	newRefresh       = "ghr_ISSUEDrefresh0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP"
)

var allSecrets = []string{testClientSecret, testRefresh, testCode, testVerifier, testAccess, newAccess, newRefresh}

// testNow is where the tests' clocks start.
var testNow = time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)

// newTestClient starts a server with h and returns a Client pointed at it
// (BaseURL = server, APIURL = server + "/api/v3", as on GitHub Enterprise),
// using the default HTTP client unless a mutator sets one.
func newTestClient(t *testing.T, h http.Handler, mutate ...func(*Config)) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := Config{
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		BaseURL:      srv.URL,
		APIURL:       srv.URL + "/api/v3",
		Timeout:      5 * time.Second,
		Clock:        testkit.NewClock(testNow),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.hc.CloseIdleConnections)
	return c, srv
}

// wantUpstream asserts that err is an *UpstreamError of the given kind and
// op, and that its string holds no secret.
func wantUpstream(t *testing.T, err error, kind flashauth.UpstreamKind, op string) *flashauth.UpstreamError {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s error", kind)
	}
	assertNoSecrets(t, err)
	var ue *flashauth.UpstreamError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %T (%v), want *flashauth.UpstreamError", err, err)
	}
	if ue.Kind != kind || ue.Op != op {
		t.Fatalf("err = %v: kind %s op %q, want kind %s op %q", err, ue.Kind, ue.Op, kind, op)
	}
	return ue
}

// assertNoSecrets fails when err's string contains any test secret.
func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, s := range allSecrets {
		if strings.Contains(msg, s) {
			t.Errorf("error %q contains a secret", msg)
		}
	}
}

// reply writes a canned answer.
func reply(status int, header map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}
