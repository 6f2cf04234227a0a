package signin_test

import (
	"context"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/signin"
)

func TestSignInUpstreamErrors(t *testing.T) {
	tests := []struct {
		name       string
		secret     string
		fault      *githubemu.Fault
		code       string
		retryAfter time.Duration
	}{
		{name: "server error", fault: &githubemu.Fault{Kind: githubemu.FaultServerError}, code: flashauth.CodeUpstreamUnavailable, retryAfter: time.Second},
		{name: "html rate limit", fault: &githubemu.Fault{Kind: githubemu.FaultRateLimitHTML, RetryAfter: 7 * time.Second}, code: flashauth.CodeUpstreamUnavailable, retryAfter: 7 * time.Second},
		{name: "truncated answer", fault: &githubemu.Fault{Kind: githubemu.FaultTruncatedJSON}, code: flashauth.CodeUpstreamBadResponse},
		{name: "wrong client secret", secret: "wrong", code: flashauth.CodeUpstreamCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{clientSecret: tt.secret})
			gu := octocat(e)
			code := e.loginWithoutState(t, gu.ID)
			if tt.fault != nil {
				e.emu.InjectFault(*tt.fault)
			}
			_, err := e.svc.SignIn(context.Background(), signin.Request{Code: code})
			wantCode(t, err, tt.code)
			if got := flashauth.RetryAfter(err); got != tt.retryAfter {
				t.Errorf("RetryAfter %v, want %v", got, tt.retryAfter)
			}
		})
	}
}

// Transient trouble is not remembered, and the state of the login survives
// it, so the client's retry can succeed.
func TestSignInRetryAfterTransientFailure(t *testing.T) {
	e := newEnv(t, envOptions{})
	gu := octocat(e)
	code, state := e.login(t, gu.ID, "")
	e.emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Count: 1})
	_, err := e.svc.SignIn(context.Background(), signin.Request{Code: code, State: state})
	wantCode(t, err, flashauth.CodeUpstreamUnavailable)
	e.principal(t, e.signIn(t, signin.Request{Code: code, State: state}))
}

// Once the code is spent, reads of /user and /user/emails are retried
// rather than losing the sign-in.
func TestSignInRetriesRESTReads(t *testing.T) {
	e := newEnv(t, envOptions{})
	gu := octocat(e)
	e.emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Path: githubemu.UserPath, Count: 1})
	e.emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultRateLimitJSON, Path: githubemu.EmailsPath, Count: 2})
	e.principal(t, e.signIn(t, signin.Request{Code: e.loginWithoutState(t, gu.ID)}))
	if c := e.emu.Calls(); c.User != 2 || c.Emails != 3 {
		t.Errorf("calls %+v, want 2 user and 3 emails", c)
	}

	// Unavailable for longer: the sign-in fails as unavailable.
	e.emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Path: githubemu.UserPath})
	_, err := e.svc.SignIn(context.Background(), signin.Request{Code: e.loginWithoutState(t, gu.ID)})
	wantCode(t, err, flashauth.CodeUpstreamUnavailable)
}
