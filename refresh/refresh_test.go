package refresh

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
)

func TestValidToken(t *testing.T) {
	for tok, want := range map[string]bool{
		"ghr_abc":                        true,
		"ghr_a.b-c_D~!":                  true,
		"":                               false,
		"a b":                            false,
		"a\tb":                           false,
		"a\x7fb":                         false,
		"é":                              false,
		strings.Repeat("a", 4096):        true,
		strings.Repeat("a", 4097):        false,
		"ghr_x\n":                        false,
		"eyJhbGciOiJub25lIn0.e30.":       true,
		"\x00":                           false,
		strings.Repeat("ghr_", 10) + "Z": true,
	} {
		if got := ValidToken(tok); got != want {
			t.Errorf("ValidToken(%q) = %v, want %v", tok, got, want)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	for _, ok := range []string{"compat", "session"} {
		if p, err := ParsePolicy(ok); err != nil || string(p) != ok {
			t.Errorf("ParsePolicy(%q) = %v, %v", ok, p, err)
		}
	}
	if _, err := ParsePolicy("strict"); err == nil {
		t.Error("ParsePolicy accepted an unknown policy")
	}
}

func TestAuthorizePolicy(t *testing.T) {
	owned := flashauth.Lineage{UserID: "u1"}
	unowned := flashauth.Lineage{}
	rows := []struct {
		policy Policy
		caller string
		lin    flashauth.Lineage
		known  bool
		want   string
	}{
		{PolicyCompat, "", owned, true, ""},
		{PolicyCompat, "u1", owned, true, ""},
		{PolicyCompat, "u2", owned, true, flashauth.CodeTokenOwnerMismatch},
		{PolicyCompat, "u2", unowned, true, ""},
		{PolicyCompat, "u2", unowned, false, ""},
		{PolicySession, "", owned, true, flashauth.CodeAuthRequired},
		{PolicySession, "u1", owned, true, ""},
		{PolicySession, "u2", owned, true, flashauth.CodeTokenOwnerMismatch},
		{PolicySession, "u1", unowned, false, flashauth.CodeTokenOwnerMismatch},
		{PolicySession, "u1", unowned, true, flashauth.CodeTokenOwnerMismatch},
	}
	for _, r := range rows {
		s := New(nil, nil, nil, Config{Policy: r.policy})
		err := s.authorize(Caller{UserID: r.caller}, r.lin, r.known)
		got := ""
		if err != nil {
			got = flashauth.ErrorCode(err)
		}
		if got != r.want {
			t.Errorf("%s caller=%q owner=%q known=%v: %q, want %q", r.policy, r.caller, r.lin.UserID, r.known, got, r.want)
		}
	}
}

func TestUpstreamErrorMapping(t *testing.T) {
	rows := []struct {
		err        error
		code       string
		retryAfter time.Duration
	}{
		{&flashauth.UpstreamError{Kind: flashauth.UpstreamTransient, RetryAfter: 42 * time.Second}, flashauth.CodeUpstreamUnavailable, 42 * time.Second},
		{&flashauth.UpstreamError{Kind: flashauth.UpstreamTransient}, flashauth.CodeUpstreamUnavailable, time.Second},
		{&flashauth.UpstreamError{Kind: flashauth.UpstreamConfig, OAuthCode: "incorrect_client_credentials"}, flashauth.CodeUpstreamCredentials, 0},
		{&flashauth.UpstreamError{Kind: flashauth.UpstreamBadResponse}, flashauth.CodeUpstreamBadResponse, 0},
		{errors.New("something else"), flashauth.CodeInternal, 0},
		{context.Canceled, flashauth.CodeInternal, 0},
	}
	for _, r := range rows {
		err := UpstreamError(r.err)
		if flashauth.ErrorCode(err) != r.code || flashauth.RetryAfter(err) != r.retryAfter {
			t.Errorf("UpstreamError(%v) = %s retry %v, want %s retry %v", r.err, flashauth.ErrorCode(err), flashauth.RetryAfter(err), r.code, r.retryAfter)
		}
		if !errors.Is(err, r.err) {
			t.Errorf("UpstreamError(%v) lost the cause", r.err)
		}
	}
}

// Invalid input is refused before anything is looked up or sent.
func TestRefreshRejectsInvalidTokenFirst(t *testing.T) {
	s := New(nil, nil, nil, Config{})
	_, err := s.Refresh(context.Background(), "has space", Caller{})
	if flashauth.ErrorCode(err) != flashauth.CodeInvalidRequest {
		t.Fatalf("err = %v", err)
	}
}
