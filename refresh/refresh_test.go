package refresh

import (
	"context"
	"testing"

	"github.com/flashbacktech/flashauth"
)

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

// Invalid input is refused before anything is looked up or sent.
func TestRefreshRejectsInvalidTokenFirst(t *testing.T) {
	s := New(nil, nil, nil, Config{})
	_, err := s.Refresh(context.Background(), "has space", Caller{})
	if flashauth.ErrorCode(err) != flashauth.CodeInvalidRequest {
		t.Fatalf("err = %v", err)
	}
}

// A verdict's Copy (what callers that joined a refresh in flight get) is
// equal to it and shares no token with it; a rejection copies as itself.
func TestVerdictCopy(t *testing.T) {
	orig := verdict{Token: &Token{AccessToken: "a", RefreshToken: "r", TokenType: "bearer", Scope: "s", ExpiresIn: 60}}
	cp := orig.Copy()
	if cp.Token == orig.Token || *cp.Token != *orig.Token || cp.Code != orig.Code {
		t.Fatalf("copy %+v of %+v: want an equal token behind another pointer", cp.Token, orig.Token)
	}
	cp.Token.AccessToken = "changed"
	if orig.Token.AccessToken != "a" {
		t.Fatal("changing the copy changed the original")
	}
	if rej := (verdict{Code: flashauth.CodeInvalidRefreshToken}).Copy(); rej.Token != nil || rej.Code != flashauth.CodeInvalidRefreshToken {
		t.Fatalf("rejection copied as %+v", rej)
	}
}
