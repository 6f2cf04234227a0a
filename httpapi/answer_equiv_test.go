package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The token answers write their JSON themselves when no string needs
// escaping; either way the body must be json.Marshal's plus a newline.
func FuzzTokenAnswersAsMarshal(f *testing.F) {
	f.Add("ghu_16C7e42F292c6912E7710c838347Ae178B4a", "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c", "bearer", "", int64(1764148800000), int64(28800), true)
	f.Add("a<b>&c", "\"\\", "bearer\u2028", "repo,gist", int64(0), int64(-1), false)
	f.Add("é", "\x7f", "\x00", "a\xffb", int64(-9223372036854775808), int64(9223372036854775807), true)
	f.Add("", "", "", "", int64(1), int64(2), false)
	f.Fuzz(func(t *testing.T, access, refresh, tokenType, scope string, at, n int64, success bool) {
		ta := tokenAnswer{Success: success, Token: access, AccessToken: access, RefreshToken: refresh, ExpiresAt: at}
		for _, v := range []any{
			gitHubRefreshAnswer{tokenAnswer: ta, ExpiresIn: n, RefreshTokenExpiresAt: at + n, TokenType: tokenType, Scope: scope},
			sessionRefreshAnswer{tokenAnswer: ta, TokenID: scope, SessionExpiresAt: n},
		} {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			writeJSON(rec, http.StatusOK, v)
			if got := rec.Body.String(); got != string(want)+"\n" {
				t.Fatalf("%T:\n got %s\nwant %s", v, got, want)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Fatalf("Content-Type %q", ct)
			}
		}
	})
}
