package signin

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/ledger"
)

// minRetryAfter is the least Retry-After given to a client when GitHub is
// unavailable.
const minRetryAfter = time.Second

// rejected commits a definitive rejection so it replays within the window.
func rejected(code string) (ledger.Outcome, error) {
	payload, err := json.Marshal(outcome{Code: code})
	return ledger.Outcome{Payload: payload}, err
}

// upstream turns a GitHub error into the operation's result: GitHub's
// verdicts on the code or the account are committed rejections; everything
// else is an error that is not remembered, so a retry runs again.
func (s *Service) upstream(err error) (ledger.Outcome, error) {
	var ue *flashauth.UpstreamError
	if !errors.As(err, &ue) {
		return ledger.Outcome{}, err
	}
	switch ue.Kind {
	case flashauth.UpstreamRejected:
		switch ue.OAuthCode {
		case "bad_verification_code":
			return rejected(flashauth.CodeInvalidCode)
		case "redirect_uri_mismatch":
			return rejected(flashauth.CodeRedirectURIMismatch)
		case "unverified_user_email":
			return rejected(flashauth.CodeEmailNotVerified)
		}
		// A REST 401/403 for a token GitHub just issued is not a verdict on
		// the user: GitHub is not behaving as documented.
		return ledger.Outcome{}, &flashauth.Error{Code: flashauth.CodeUpstreamBadResponse,
			Message: "GitHub answered unexpectedly.", Err: err}
	case flashauth.UpstreamTransient:
		return ledger.Outcome{}, &flashauth.Error{Code: flashauth.CodeUpstreamUnavailable,
			Message: "GitHub is unavailable; try again later.", RetryAfter: max(ue.RetryAfter, minRetryAfter), Err: err}
	case flashauth.UpstreamConfig:
		s.log.Error("GitHub rejected the client credentials; check the GitHub App configuration", "op", ue.Op)
		return ledger.Outcome{}, &flashauth.Error{Code: flashauth.CodeUpstreamCredentials,
			Message: "The GitHub application is misconfigured.", Err: err}
	}
	return ledger.Outcome{}, &flashauth.Error{Code: flashauth.CodeUpstreamBadResponse,
		Message: "GitHub answered unexpectedly.", Err: err}
}

// rejection is the caller-facing error of a committed rejection code.
func rejection(code string) error {
	msg := "The sign-in was rejected."
	switch code {
	case flashauth.CodeInvalidCode:
		msg = "The authorization code is invalid, expired or already used."
	case flashauth.CodeRedirectURIMismatch:
		msg = "The redirect_uri does not match the application's or the login's."
	case flashauth.CodeInvalidState:
		msg = "The state is unknown, expired or already used."
	case flashauth.CodeEmailNotVerified:
		msg = "The GitHub account has no verified primary email address."
	}
	return flashauth.Errorf(code, "%s", msg)
}
