// Package logging builds flashauth's slog loggers. Every logger goes through
// one redaction path: whatever a caller logs, values that look like tokens,
// codes, secrets or JWTs are replaced before they reach the output.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// secretPattern matches GitHub tokens of every prefix (ghu_, ghr_, gho_, ghp_,
// ghs_ with '.' and '-', github_pat_), JWTs, and long opaque runs of token
// characters such as flashauth's own refresh tokens, states and PKCE
// verifiers. GitHub's OAuth codes (20 hex digits) are too short to tell from
// identifiers; paramPattern and jsonParamPattern catch them by name.
var secretPattern = regexp.MustCompile(
	`gh[a-z]_[A-Za-z0-9_.\-]{8,}` +
		`|github_pat_[A-Za-z0-9_]{8,}` +
		`|eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*` +
		`|[A-Za-z0-9_\-]{32,}`)

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// secretParam names query, form and JSON parameters whose values are secrets
// whatever their shape. It does not match error_code, token_type or tokenId.
const secretParam = `\w*(?i:token|secret|password|passwd|verifier|api_key|apikey)|(?i:code|state)`

var (
	// paramPattern matches name=value in a query string or a form body,
	// such as the URLs net/url quotes in its errors.
	paramPattern = regexp.MustCompile(`\b(` + secretParam + `)=[^&\s"'<>;,)]*`)
	// jsonParamPattern matches "name": "value" in a JSON object.
	jsonParamPattern = regexp.MustCompile(`"(` + secretParam + `)"(\s*:\s*)"(?:[^"\\]|\\.)*"`)
	// credentialPattern matches the credentials of an Authorization header.
	// Lowercase letters only ("bearer token", "basic auth") are English,
	// not a credential, and are kept.
	credentialPattern = regexp.MustCompile(`\b((?i:bearer|basic)\s+)[A-Za-z0-9._~+/\-]*[A-Z0-9._~+/\-][A-Za-z0-9._~+/\-]*=*`)
)

// secretKeys are normalized attribute names (lower case, without '_', '-'
// and '.') whose values are never logged; secretKeySuffixes extend them to
// names such as refreshToken, client-secret, codeVerifier or x-api-key.
var (
	secretKeys = map[string]bool{
		"code": true, "state": true, "jwt": true, "passwd": true,
		"authcode": true, "oauthcode": true, "authorizationcode": true,
	}
	secretKeySuffixes = []string{"token", "secret", "password", "verifier", "apikey",
		"privatekey", "secretkey", "cookie", "authorization"}
)

// publicKeys are attribute names whose values are public though they look
// opaque: a kid is a signing key's thumbprint, published in the JWKS, and
// operators match it against tokens.
var publicKeys = map[string]bool{"kid": true}

// secretKey reports whether an attribute or a group named key holds
// secrets. Names such as token_id, error_code or kid stay visible.
func secretKey(key string) bool {
	k := strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == '.' {
			return -1
		}
		return unicode.ToLower(r)
	}, key)
	if secretKeys[k] {
		return true
	}
	for _, s := range secretKeySuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// Redact returns s with anything that looks like a secret replaced.
func Redact(s string) string {
	if s == "" {
		return s // most audit details and attributes: no pattern can match
	}
	s = paramPattern.ReplaceAllString(s, "${1}=[REDACTED]")
	s = jsonParamPattern.ReplaceAllString(s, `"${1}"${2}"[REDACTED]"`)
	s = credentialPattern.ReplaceAllString(s, "${1}[REDACTED]")
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

// replaceAttr redacts attributes named like secrets, or inside a group
// named like one (ReplaceAttr never sees the group itself), and scrubs
// every other string, error and Stringer.
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if secretKey(a.Key) || slices.ContainsFunc(groups, secretKey) {
		return slog.String(a.Key, "[REDACTED]")
	}
	if publicKeys[a.Key] && a.Value.Kind() == slog.KindString {
		return a
	}
	switch a.Value.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Redact(a.Value.String()))
	case slog.KindAny:
		return slog.String(a.Key, Redact(anyString(a.Value.Any())))
	}
	return a
}

// anyString renders v for redaction: errors and Stringers as fmt does, byte
// slices (raw bodies, json.RawMessage) as text, since fmt's list of decimal
// numbers would hide a token from every pattern.
func anyString(v any) string {
	switch v.(type) {
	case error, fmt.Stringer:
		return fmt.Sprint(v)
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
		return string(rv.Bytes())
	}
	return fmt.Sprint(v)
}

// redactHandler also redacts the message itself, which ReplaceAttr does not see.
type redactHandler struct{ slog.Handler }

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	if msg := Redact(r.Message); msg != r.Message {
		nr := slog.NewRecord(r.Time, r.Level, msg, r.PC)
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
