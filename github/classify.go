package github

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flashbacktech/flashauth"
)

// Causes of classified answers. They describe, never quote, what GitHub said.
var (
	errRateLimited     = errors.New("rate limited")
	errServerError     = errors.New("server error")
	errUnexpected      = errors.New("unexpected status")
	errTooLarge        = fmt.Errorf("response body exceeds %d bytes", maxBodyBytes)
	errUnknownOAuth    = errors.New("unknown OAuth error code")
	errBadCredentials  = errors.New("bad credentials")
	errMalformedBearer = errors.New("access token is not printable ASCII")
)

// maxRetryAfter caps GitHub's retry hint: beyond a day it is garbage, and a
// cap keeps the arithmetic away from overflow.
const maxRetryAfter = 24 * time.Hour

// oauthKinds maps GitHub's documented OAuth error codes to kinds; any other
// code is BadResponse.
var oauthKinds = map[string]flashauth.UpstreamKind{
	"bad_refresh_token":            flashauth.UpstreamRejected,
	"bad_verification_code":        flashauth.UpstreamRejected,
	"redirect_uri_mismatch":        flashauth.UpstreamRejected,
	"unverified_user_email":        flashauth.UpstreamRejected,
	"incorrect_client_credentials": flashauth.UpstreamConfig,
}

// oauthError turns GitHub's `error` value into an UpstreamError.
func oauthError(op, code string, status int) *flashauth.UpstreamError {
	if kind, ok := oauthKinds[code]; ok {
		return &flashauth.UpstreamError{Kind: kind, Op: op, OAuthCode: code, Status: status}
	}
	return &flashauth.UpstreamError{Kind: flashauth.UpstreamBadResponse, Op: op, OAuthCode: code, Status: status, Err: errUnknownOAuth}
}

// badResponse is an answer that cannot be understood.
func badResponse(op string, status int, cause error) *flashauth.UpstreamError {
	return &flashauth.UpstreamError{Kind: flashauth.UpstreamBadResponse, Op: op, Status: status, Err: cause}
}

// unavailable returns a Transient error when r says "not now" (5xx, 429 or
// a rate-limited 403), and nil otherwise.
func (c *Client) unavailable(op string, r *response) *flashauth.UpstreamError {
	var cause error
	switch {
	case r.status >= 500 && r.status <= 599:
		cause = errServerError
	case r.status == http.StatusTooManyRequests, r.status == http.StatusForbidden && rateLimited(r):
		cause = errRateLimited
	default:
		return nil
	}
	return &flashauth.UpstreamError{
		Kind:       flashauth.UpstreamTransient,
		Op:         op,
		Status:     r.status,
		RetryAfter: retryAfter(r.header, c.clock.Now()),
		Err:        cause,
	}
}

// rateLimited reports whether a 403 is a rate limit rather than a refusal:
// GitHub says so in headers (primary limits, Retry-After) or, on the login
// endpoints, only in an HTML or JSON body.
func rateLimited(r *response) bool {
	if r.header.Get("X-Ratelimit-Remaining") == "0" || r.header.Get("Retry-After") != "" {
		return true
	}
	body := bytes.ToLower(r.body)
	return bytes.Contains(body, []byte("rate limit")) || bytes.Contains(body, []byte("abuse detection"))
}

// retryAfter reads GitHub's hint: Retry-After in seconds or as an HTTP-date,
// else x-ratelimit-reset in Unix seconds. Zero means no usable hint.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return clampSeconds(n)
		}
		if t, err := http.ParseTime(v); err == nil {
			return clampDuration(t.Sub(now))
		}
	}
	if v := strings.TrimSpace(h.Get("X-Ratelimit-Reset")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			if n-now.Unix() > int64(maxRetryAfter/time.Second) {
				return maxRetryAfter
			}
			return clampDuration(time.Unix(n, 0).Sub(now))
		}
	}
	return 0
}

func clampSeconds(n int64) time.Duration {
	if n > int64(maxRetryAfter/time.Second) {
		return maxRetryAfter
	}
	return clampDuration(time.Duration(n) * time.Second)
}

func clampDuration(d time.Duration) time.Duration {
	return min(max(d, 0), maxRetryAfter)
}
