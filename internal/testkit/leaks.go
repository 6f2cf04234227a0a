package testkit

import (
	"regexp"
	"testing"
)

// tokenShaped matches what must never be printed or logged whatever the
// test knows about it: GitHub tokens (gho_, ghp_, ghr_, ghs_, ghu_ and a
// long body, as GitHub and the emulator mint them) and JWTs (three
// base64url parts, the first two JSON objects). A redacted prefix such as
// "ghr_abcd..." is too short to match.
var tokenShaped = regexp.MustCompile(`gh[oprsu]_[A-Za-z0-9_]{20,}|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}`)

// TokenShaped returns the substrings of s that look like a GitHub token or
// a JWT.
func TokenShaped(s string) []string { return tokenShaped.FindAllString(s, -1) }

// NoTokenShaped fails the test when what (output, logs, an error) holds a
// substring that looks like a GitHub token or a JWT. It reports only the
// length and the first four characters of each.
func NoTokenShaped(tb testing.TB, what, s string) {
	tb.Helper()
	for _, m := range TokenShaped(s) {
		tb.Errorf("%s holds a token-shaped string (%d chars, prefix %.4s)", what, len(m), m)
	}
}
