package flashauth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// GitHubToken is what GitHub's token endpoint answers on success.
// ExpiresIn and RefreshTokenExpiresIn are zero for tokens that do not expire.
type GitHubToken struct {
	AccessToken           string
	RefreshToken          string
	TokenType             string
	Scope                 string
	ExpiresIn             time.Duration
	RefreshTokenExpiresIn time.Duration
}

// GitHubUser is the part of GET /user flashauth uses. ID is the stable key.
type GitHubUser struct {
	ID        int64
	Login     string
	Name      string
	Email     string
	Company   string
	AvatarURL string
}

// GitHubEmail is one entry of GET /user/emails.
type GitHubEmail struct {
	Email      string
	Primary    bool
	Verified   bool
	Visibility string
}

// CodeExchange is a request to trade an authorization code for tokens.
type CodeExchange struct {
	Code         string
	RedirectURI  string // optional
	CodeVerifier string // optional PKCE verifier
}

// GitHub is what flashauth needs of GitHub. Errors are *UpstreamError.
type GitHub interface {
	RefreshToken(ctx context.Context, refreshToken string) (GitHubToken, error)
	ExchangeCode(ctx context.Context, req CodeExchange) (GitHubToken, error)
	User(ctx context.Context, accessToken string) (GitHubUser, error)
	Emails(ctx context.Context, accessToken string) ([]GitHubEmail, error)
}

// UpstreamKind classifies what went wrong talking to GitHub.
type UpstreamKind int

const (
	// UpstreamRejected is a definitive answer about the presented credential
	// (bad_refresh_token, bad_verification_code, redirect_uri_mismatch,
	// unverified_user_email, REST 401): asking again will not help.
	UpstreamRejected UpstreamKind = iota + 1
	// UpstreamTransient is trouble that may pass: timeout, refused
	// connection, 5xx, rate limiting (JSON or HTML). RetryAfter may be set.
	UpstreamTransient
	// UpstreamConfig is an operator fault: incorrect_client_credentials.
	UpstreamConfig
	// UpstreamBadResponse is an answer that cannot be understood: an
	// unparseable body, an unexpected status or error code.
	UpstreamBadResponse
)

func (k UpstreamKind) String() string {
	switch k {
	case UpstreamRejected:
		return "rejected"
	case UpstreamTransient:
		return "transient"
	case UpstreamConfig:
		return "config"
	case UpstreamBadResponse:
		return "bad_response"
	}
	return "unknown"
}

// UpstreamError is the error of every GitHub call. It never holds a token or
// a raw upstream body; OAuthCode is GitHub's `error` value when there was one.
type UpstreamError struct {
	Kind       UpstreamKind
	Op         string // "refresh", "exchange", "user", "emails"
	OAuthCode  string // e.g. "bad_refresh_token"
	Status     int    // HTTP status GitHub answered, 0 when none
	RetryAfter time.Duration
	Err        error // cause (network error, parse error); never holds a secret
}

func (e *UpstreamError) Error() string {
	s := fmt.Sprintf("github %s: %s", e.Op, e.Kind)
	if e.OAuthCode != "" {
		s += " (" + e.OAuthCode + ")"
	}
	if e.Status != 0 {
		s += fmt.Sprintf(" status %d", e.Status)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// ErrorFromUpstream turns a GitHub client error that is not a verdict on the
// caller's credential into the domain error the caller sees: GitHub down or
// rate limiting (UPSTREAM_UNAVAILABLE, with a retry hint), our client
// credentials refused (UPSTREAM_CREDENTIALS_REJECTED), anything else GitHub
// answered (UPSTREAM_BAD_RESPONSE). An error that is not an *UpstreamError
// is INTERNAL_ERROR. The cause stays in the chain.
func ErrorFromUpstream(err error) error {
	var ue *UpstreamError
	if !errors.As(err, &ue) {
		return &Error{Code: CodeInternal, Message: "An internal error occurred.", Err: err}
	}
	switch ue.Kind {
	case UpstreamTransient:
		return &Error{
			Code:       CodeUpstreamUnavailable,
			Message:    "GitHub is unavailable or rate limiting us. Try again later.",
			RetryAfter: max(ue.RetryAfter, time.Second),
			Err:        err,
		}
	case UpstreamConfig:
		return &Error{
			Code:    CodeUpstreamCredentials,
			Message: "GitHub rejected this service's client credentials. The operator must fix the configuration.",
			Err:     err,
		}
	default:
		return &Error{
			Code:    CodeUpstreamBadResponse,
			Message: "GitHub answered something unexpected.",
			Err:     err,
		}
	}
}
