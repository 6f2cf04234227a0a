package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/flashbacktech/flashauth"
)

// The error_code values flashauth answers (see docs/api.md); they are the
// server's own constants, so the two cannot drift apart.
const (
	CodeInvalidRequest       = flashauth.CodeInvalidRequest
	CodeInvalidRefreshToken  = flashauth.CodeInvalidRefreshToken
	CodeAuthRequired         = flashauth.CodeAuthRequired
	CodeTokenOwnerMismatch   = flashauth.CodeTokenOwnerMismatch
	CodeNotFound             = flashauth.CodeNotFound
	CodeMethodNotAllowed     = flashauth.CodeMethodNotAllowed
	CodePayloadTooLarge      = flashauth.CodePayloadTooLarge
	CodeUnsupportedMediaType = flashauth.CodeUnsupportedMediaType
	CodeRateLimited          = flashauth.CodeRateLimited
	CodeStoreUnavailable     = flashauth.CodeStoreUnavailable
	CodeUpstreamBadResponse  = flashauth.CodeUpstreamBadResponse
	CodeUpstreamUnavailable  = flashauth.CodeUpstreamUnavailable
	CodeUpstreamCredentials  = flashauth.CodeUpstreamCredentials
	CodeInternal             = flashauth.CodeInternal
	CodeInvalidCode          = flashauth.CodeInvalidCode
	CodeRedirectURIMismatch  = flashauth.CodeRedirectURIMismatch
	CodeInvalidState         = flashauth.CodeInvalidState
	CodeStateRequired        = flashauth.CodeStateRequired
	CodeEmailNotVerified     = flashauth.CodeEmailNotVerified
	CodeRefreshTokenReused   = flashauth.CodeRefreshTokenReused
)

// ErrReauthRequired matches (with errors.Is) every error after which only a
// new sign-in helps: the refresh token presented is dead (expired, revoked,
// already used) or its reuse revoked the session. Retrying is pointless.
var ErrReauthRequired = errors.New("flashauth: the refresh token is no longer valid; sign in again")

// Error is an error answer of flashauth: any status outside 2xx. Use it with
// errors.As. Its text holds the status, the code and the server's message,
// never a token.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is the answer's error_code; empty when the body was not
	// flashauth's JSON (a proxy's error page, for instance).
	Code string
	// Message is the server's human sentence, or the status text.
	Message string
	// RetryAfter is the Retry-After the server sent (429 and 503); zero
	// when there was none.
	RetryAfter time.Duration
	// RequestID is the answer's X-Request-Id: quote it when reporting a
	// problem, the server's logs carry it.
	RequestID string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("flashauth: ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.RequestID != "" {
		b.WriteString(" [request " + e.RequestID + "]")
	}
	return b.String()
}

// Is reports whether e matches target: ErrReauthRequired for the codes
// after which only a new sign-in helps.
func (e *Error) Is(target error) bool {
	return target == ErrReauthRequired && (e.Code == CodeInvalidRefreshToken || e.Code == CodeRefreshTokenReused)
}

// IsReauthRequired reports whether err means the user must sign in again.
func IsReauthRequired(err error) bool { return errors.Is(err, ErrReauthRequired) }

// IsRetryable reports whether err is a temporary condition worth retrying
// later (after its RetryAfter, when set): rate limits, an unreachable store
// or GitHub, or a 502/503/504 from something in front of flashauth.
func IsRetryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case CodeRateLimited, CodeStoreUnavailable, CodeUpstreamUnavailable:
		return true
	case "":
		return e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusGatewayTimeout || e.Status == http.StatusTooManyRequests
	}
	return false
}

// Code returns the error_code of the *Error in err's chain, or "".
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// maxMessage bounds the message kept from an answer.
const maxMessage = 512

// decodeError turns a non-2xx answer into an *Error. Only a JSON body of
// flashauth's shape is believed; any other body is dropped (it could echo
// anything) and the status text stands in for the message.
func decodeError(resp *http.Response, raw []byte) *Error {
	e := &Error{
		Status:     resp.StatusCode,
		RetryAfter: retryAfter(resp.Header.Get("Retry-After")),
		RequestID:  clean(resp.Header.Get("X-Request-Id"), 128),
	}
	var body struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(raw, &body) == nil && body.ErrorCode != "" && validCode(body.ErrorCode) {
		e.Code = body.ErrorCode
		e.Message = clean(body.Message, maxMessage)
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// validCode accepts UPPER_SNAKE codes of reasonable length.
func validCode(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// clean keeps s on one line and at most n bytes: error strings end up in
// terminals and logs.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		// A cut UTF-8 sequence at the end is dropped, not kept broken.
		s = strings.ToValidUTF8(s[:n], "")
	}
	return strings.TrimSpace(s)
}

// retryAfter parses Retry-After: delay seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}
