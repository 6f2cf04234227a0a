package logging

import (
	"bytes"
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
