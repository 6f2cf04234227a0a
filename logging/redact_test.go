package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	secrets := []string{
		"ghu_" + strings.Repeat("a1B2", 9),
		"ghr_" + strings.Repeat("xY9z", 19),
		"gho_16C7e42F292c6912E7710c838347Ae178B4a",
		"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
		"Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5",
	}
	for _, s := range secrets {
		if got := Redact("before " + s + " after"); strings.Contains(got, s) {
			t.Errorf("Redact kept %q: %q", s, got)
		}
	}
	for _, keep := range []string{"request failed", "3f2a9c0d1e2b4a5c6d7e8f90", "POST /auth/github/refresh", "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"} {
		if got := Redact(keep); got != keep {
			t.Errorf("Redact(%q) = %q, want unchanged", keep, got)
		}
	}
}

func TestLoggerRedactsEverywhere(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "json", slog.LevelDebug)
	tok := "ghr_" + strings.Repeat("Q", 76)
	log.Info("refreshing "+tok, "err", errors.New("failed for "+tok), "refresh_token", "short", "detail", tok)
	log.With("x", tok).WithGroup("g").Info("m", "y", tok)
	if strings.Contains(buf.String(), tok) || strings.Contains(buf.String(), `"short"`) {
		t.Fatalf("secret in log: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "[REDACTED]") {
		t.Fatal("nothing redacted")
	}
}

// TestRedactQueryAndFormValues: OAuth codes are 20 hex digits, too short to
// look opaque, and states or verifiers may be short too; where a string names
// them as query or form parameters (a URL in a net/url error, a form body),
// the value goes whatever its shape.
func TestRedactQueryAndFormValues(t *testing.T) {
	tests := []struct{ in, secret string }{
		{`parse "http://127.0.0.1:1/cb?code=0123456789abcdef0123&state=xyz": invalid port`, "0123456789abcdef0123"},
		{`parse "http://127.0.0.1:1/cb?code=0123456789abcdef0123&state=st8te-short": invalid port`, "st8te-short"},
		{`Get "https://app.example/cb?STATE=abc&x=1": EOF`, "abc&"},
		{"client_id=Iv1.x&client_secret=hunter2&grant_type=refresh_token", "hunter2"},
		{"refresh_token=ghr_x&code_verifier=short-verifier", "short-verifier"},
		{`body {"code": "0123456789abcdef0123", "state":"s1"}`, "0123456789abcdef0123"},
		{`body {"code": "0123456789abcdef0123", "state":"s1"}`, `"s1"`},
		{"Authorization: Bearer abc.def", "abc.def"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); strings.Contains(got, tt.secret) {
			t.Errorf("Redact(%q) = %q, kept %q", tt.in, got, tt.secret)
		}
	}
	// Names that merely end like a secret parameter, and what operators need.
	for _, keep := range []string{
		"error_code=INVALID_REFRESH_TOKEN status=401",
		`{"error_code":"RATE_LIMITED","message":"slow down"}`,
		"request_id=3f2a9c0d1e2b4a5c6d7e8f90 user_id=6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
		"github refresh: rejected (bad_refresh_token) status 200",
	} {
		if got := Redact(keep); got != keep {
			t.Errorf("Redact(%q) = %q, want unchanged", keep, got)
		}
	}
}

// TestRedactsSecretKeySpellings: attribute keys are matched however the
// caller spells them, and a group named like a secret hides its members.
func TestRedactsSecretKeySpellings(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "json", slog.LevelDebug)
	const short = "s3cr3t"
	log.Info("m", "refreshToken", short, "Client-Secret", short, "authorization_code", "c0de", "session_refresh_token", short,
		"x-api-key", short, "Proxy-Authorization", short, "codeVerifier", short, "set-cookie", short,
		slog.Group("token", "value", short))
	for _, leak := range []string{short, "c0de"} {
		if strings.Contains(buf.String(), leak) {
			t.Errorf("secret %q in log: %s", leak, buf.String())
		}
	}
	buf.Reset()
	// A kid is a public key's thumbprint (43 characters), published in the JWKS.
	const kid = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	log.Info("m", "token_id", "tid-1", "error_code", "RATE_LIMITED", "kid", kid, "status_code", 401, "user_id", "u-1")
	for _, keep := range []string{`"tid-1"`, `"RATE_LIMITED"`, kid, `401`, `"u-1"`} {
		if !strings.Contains(buf.String(), keep) {
			t.Errorf("%s was redacted: %s", keep, buf.String())
		}
	}
}

// TestRedactsBytes: fmt would print a []byte (a raw body, a
// json.RawMessage) as decimal numbers, which no pattern recognises.
func TestRedactsBytes(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "json", slog.LevelDebug)
	tok := "ghr_" + strings.Repeat("b7", 38)
	log.Info("m", "body", []byte(`{"x":"`+tok+`"}`), "raw", json.RawMessage(`"`+tok+`"`))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["body"] != `{"x":"[REDACTED]"}` || line["raw"] != `"[REDACTED]"` {
		t.Errorf("body, raw = %q, %q; want the tokens redacted", line["body"], line["raw"])
	}
}
