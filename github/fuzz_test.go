package github

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParseTokenResponse checks that the token-response parser never panics,
// never returns a token together with an error or an OAuth code, only
// returns code-shaped OAuth codes, only returns sane durations, and never
// quotes the body in an error.
func FuzzParseTokenResponse(f *testing.F) {
	seeds := []string{
		`{"access_token":"ghu_16C7e42F292c6912E7710c838347Ae178B4a","expires_in":28800,"refresh_token":"ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d16D5B1A9Dc86A1498","refresh_token_expires_in":15811200,"scope":"","token_type":"bearer"}`,
		`{"access_token":"ghu_x","expires_in":"28800","refresh_token_expires_in":"15897600","token_type":"bearer"}`,
		`{"access_token":"gho_16C7e42F292c6912E7710c838347Ae178B4a","scope":"repo,gist","token_type":"bearer"}`,
		`{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired.","error_uri":"https://docs.github.com"}`,
		`{"error":"incorrect_client_credentials"}`,
		`{"error":"Not A Code <b>"}`,
		`{"access_token":"ghu_abc","refresh_tok`,
		`access_token=ghu_abc&scope=&token_type=bearer`,
		`<html><body>You have exceeded a secondary rate limit.</body></html>`,
		`{"access_token":"ghu_abc","expires_in":-5}`,
		`{"access_token":"ghu_abc","expires_in":1e3}`,
		`{"access_token":"ghu_abc","expires_in":"99999999999999999999"}`,
		`{"access_token":12}`,
		`[]`, `null`, ``, `{}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, code, err := parseTokenResponse(body)
		switch {
		case err != nil:
			if tok.AccessToken != "" || code != "" {
				t.Fatalf("err %v came with token %q / code %q", err, tok.AccessToken, code)
			}
			msg := err.Error()
			if len(msg) > 120 {
				t.Fatalf("error %q is suspiciously long", msg)
			}
			// No run of 16 input bytes may appear in the error.
			for i := 0; i+16 <= len(body); i++ {
				if bytes.Contains([]byte(msg), body[i:i+16]) {
					t.Fatalf("error %q quotes the body", msg)
				}
			}
		case code != "":
			if !oauthCodeShape(code) || tok.AccessToken != "" {
				t.Fatalf("code %q, token %q", code, tok.AccessToken)
			}
		default:
			if tok.AccessToken == "" {
				t.Fatal("success without an access token")
			}
			for _, d := range []time.Duration{tok.ExpiresIn, tok.RefreshTokenExpiresIn} {
				if d < 0 || d%time.Second != 0 || d > maxExpirySeconds*time.Second {
					t.Fatalf("expiry %s out of range", d)
				}
			}
		}
	})
}
