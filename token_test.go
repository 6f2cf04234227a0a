package flashauth_test

import (
	"context"
	"errors"
	"regexp"
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
		if got := flashauth.ValidToken(tok, flashauth.MaxTokenLength); got != want {
			t.Errorf("ValidToken(%q, MaxTokenLength) = %v, want %v", tok, got, want)
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
		err := flashauth.ErrorFromUpstream(r.err)
		if flashauth.ErrorCode(err) != r.code || flashauth.RetryAfter(err) != r.retryAfter {
			t.Errorf("ErrorFromUpstream(%v) = %s retry %v, want %s retry %v", r.err, flashauth.ErrorCode(err), flashauth.RetryAfter(err), r.code, r.retryAfter)
		}
		if !errors.Is(err, r.err) {
			t.Errorf("ErrorFromUpstream(%v) lost the cause", r.err)
		}
	}
}

// NewID makes distinct UUIDv4 strings (version 4, RFC 4122 variant).
func TestNewID(t *testing.T) {
	uuid4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		id, err := flashauth.NewID()
		if err != nil {
			t.Fatal(err)
		}
		if !uuid4.MatchString(id) {
			t.Fatalf("NewID() = %q, not a UUIDv4", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}
