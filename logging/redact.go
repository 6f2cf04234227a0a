// Package logging builds flashauth's slog loggers. Every logger goes through
// one redaction path: whatever a caller logs, values that look like tokens,
// codes, secrets or JWTs are replaced before they reach the output.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
)

// secretPattern matches GitHub tokens of every prefix (ghu_, ghr_, gho_, ghp_,
// ghs_, github_pat_), JWTs, and long opaque runs of token characters such as
// flashauth's own refresh tokens and OAuth codes.
var secretPattern = regexp.MustCompile(
	`gh[a-z]_[A-Za-z0-9_.\-]{8,}` +
		`|github_pat_[A-Za-z0-9_]{8,}` +
		`|eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*` +
		`|[A-Za-z0-9_\-]{32,}`)

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// secretKeys are attribute names whose values are never logged.
var secretKeys = map[string]bool{
	"token": true, "access_token": true, "refresh_token": true, "code": true, "state": true,
	"secret": true, "client_secret": true, "password": true, "authorization": true, "jwt": true,
	"code_verifier": true, "cookie": true,
}

// Redact returns s with anything that looks like a secret replaced.
func Redact(s string) string {
	return secretPattern.ReplaceAllStringFunc(s, func(m string) string {
		if isHex(m) && len(m) <= 32 || uuidPattern.MatchString(m) {
			return m // request ids, user and session ids: identifiers, not secrets
		}
		return "[REDACTED]"
	})
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// New returns a logger writing to w in format "json" or "text" at level,
// with redaction.
func New(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr}
	var h slog.Handler
	if strings.EqualFold(format, "text") {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(&redactHandler{h})
}

// ParseLevel parses debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
	}
	return l, nil
}

func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if secretKeys[strings.ToLower(a.Key)] {
		return slog.String(a.Key, "[REDACTED]")
	}
	switch a.Value.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Redact(a.Value.String()))
	case slog.KindAny:
		// errors and Stringers become redacted strings
		return slog.String(a.Key, Redact(fmt.Sprint(a.Value.Any())))
	}
	return a
}

// redactHandler also redacts the message itself, which ReplaceAttr does not see.
type redactHandler struct{ slog.Handler }

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	if secretPattern.MatchString(r.Message) {
		nr := slog.NewRecord(r.Time, r.Level, Redact(r.Message), r.PC)
		r.Attrs(func(a slog.Attr) bool { nr.AddAttrs(a); return true })
		r = nr
	}
	return h.Handler.Handle(ctx, r)
}

func (h *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &redactHandler{h.Handler.WithAttrs(as)}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h.Handler.WithGroup(name)}
}
