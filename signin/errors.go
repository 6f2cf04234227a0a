package signin

import (
	"errors"

	"github.com/flashbacktech/flashauth"
)

// rejected is a definitive rejection, committed so it replays within the
// window.
func rejected(code string) (verdict, error) {
	return verdict{Code: code}, nil
}

// upstream turns a GitHub error into the operation's result: GitHub's
// verdicts on the code or the account are committed rejections; everything
// else is an error that is not remembered, so a retry runs again.
func upstream(err error) (verdict, error) {
	var ue *flashauth.UpstreamError
	if errors.As(err, &ue) && ue.Kind == flashauth.UpstreamRejected {
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
		return verdict{}, &flashauth.Error{Code: flashauth.CodeUpstreamBadResponse,
			Message: "GitHub answered unexpectedly.", Err: err}
	}
	return verdict{}, flashauth.ErrorFromUpstream(err)
}

// rejection is the caller-facing error of a committed rejection code.
func rejection(code string) *flashauth.Error {
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
