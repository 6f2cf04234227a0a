package httpapi

import (
	"errors"
	"testing"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/refresh"
)

// FuzzDecodeRefreshRequest feeds arbitrary bodies to the refresh decoder and
// validator: they must never panic, and every rejection is INVALID_REQUEST.
// The seeds run in every `go test`.
func FuzzDecodeRefreshRequest(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `"x"`, `{"refresh_token":"ghr_abc"}`, `{"refresh_token":null}`,
		`{"refresh_token":123}`, `{"refresh_token":""}`, `{"refresh_token":"a b"}`, `{"refresh_token":"\u0000"}`,
		`{"refresh_token":"ghr_x"} trailing`, `{"refresh_token":["a"]}`, `{"refresh_token":{"a":1}}`,
		`{"refresh_token":"ghr_x","deviceInfo":{"os":"linux"}}`, `{"refresh_token":"\ud800"}`, `{`, `{"a":`,
		`   {"refresh_token":"ghr_x"}   `, `{"refresh_token":"ghr_x","refresh_token":"ghr_y"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req struct {
			RefreshToken tokenField `json:"refresh_token"`
		}
		err := decodeObject(body, &req)
		if err != nil {
			var fe *flashauth.Error
			if !errors.As(err, &fe) || fe.Code != flashauth.CodeInvalidRequest {
				t.Fatalf("decode error %v is not INVALID_REQUEST", err)
			}
			return
		}
		tok := req.RefreshToken.String()
		if refresh.ValidToken(tok) {
			for i := 0; i < len(tok); i++ {
				if tok[i] <= ' ' || tok[i] > '~' {
					t.Fatalf("accepted token with byte %#x", tok[i])
				}
			}
		}
	})
}
