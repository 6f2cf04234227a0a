// Package flashauth holds the domain of the flashauth service: its types, the
// interfaces of its stores and of GitHub, and the one error type every layer
// speaks. Only the HTTP package maps error codes to status codes.
package flashauth

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. They are the `error_code` values of the wire contract.
const (
	CodeInvalidRequest       = "INVALID_REQUEST"
	CodeInvalidRefreshToken  = "INVALID_REFRESH_TOKEN"
	CodeAuthRequired         = "AUTH_REQUIRED"
	CodeTokenOwnerMismatch   = "TOKEN_OWNER_MISMATCH"
	CodeNotFound             = "NOT_FOUND"
	CodeMethodNotAllowed     = "METHOD_NOT_ALLOWED"
	CodePayloadTooLarge      = "PAYLOAD_TOO_LARGE"
	CodeUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	CodeRateLimited          = "RATE_LIMITED"
	CodeStoreUnavailable     = "STORE_UNAVAILABLE"
	CodeUpstreamBadResponse  = "UPSTREAM_BAD_RESPONSE"
	CodeUpstreamUnavailable  = "UPSTREAM_UNAVAILABLE"
	CodeUpstreamCredentials  = "UPSTREAM_CREDENTIALS_REJECTED"
	CodeInternal             = "INTERNAL_ERROR"
	CodeInvalidCode          = "INVALID_CODE"
	CodeRedirectURIMismatch  = "REDIRECT_URI_MISMATCH"
	CodeInvalidState         = "INVALID_STATE"
	CodeStateRequired        = "STATE_REQUIRED"
	CodeEmailNotVerified     = "EMAIL_NOT_VERIFIED"
	CodeRefreshTokenReused   = "REFRESH_TOKEN_REUSED"
)

// Error is the error type of the domain. Message is safe to show to a caller:
// it never holds a token, a secret or an upstream body. Err, the cause, is for
// logs only and must not hold secrets either.
type Error struct {
	Code       string
	Message    string
	RetryAfter time.Duration // for RATE_LIMITED, STORE_UNAVAILABLE, UPSTREAM_UNAVAILABLE
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// INTERNAL_ERROR when there is none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the caller-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "An internal error occurred."
}

// RetryAfter returns the retry hint of the first *Error in err's chain.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// Store sentinel errors. Stores wrap driver errors in *Error with
// CodeStoreUnavailable when the database cannot be reached.
var (
	// ErrNotFound: the row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a uniqueness or compare-and-swap condition failed.
	ErrConflict = errors.New("conflict")
	// ErrClaimLost: a ledger claim is no longer held by the caller.
	ErrClaimLost = errors.New("ledger claim lost")
)
