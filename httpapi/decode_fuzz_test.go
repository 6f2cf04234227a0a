package httpapi

import (
	"errors"
	"testing"

	"github.com/flashbacktech/flashauth"
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
		if flashauth.ValidToken(tok, flashauth.MaxTokenLength) {
			for i := 0; i < len(tok); i++ {
				if tok[i] <= ' ' || tok[i] > '~' {
					t.Fatalf("accepted token with byte %#x", tok[i])
				}
			}
		}
	})
}

// FuzzDecodeSessionToken: the body of /user/refresh and /user/logout, in
// both spellings.
func FuzzDecodeSessionToken(f *testing.F) {
	for _, s := range []string{
		`{"refresh_token":"abc"}`, `{"refreshToken":"abc"}`, `{"refresh_token":"a","refreshToken":"b"}`,
		`{"refresh_token":null,"refreshToken":"b"}`, `{"refreshToken":1}`, `{}`, `[]`, `{"refresh_token":"a b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req sessionTokenRequest
		if err := decodeObject(body, &req); err != nil {
			if flashauth.ErrorCode(err) != flashauth.CodeInvalidRequest {
				t.Fatalf("decode error %v is not INVALID_REQUEST", err)
			}
			return
		}
		f := req.field()
		if f.typed && !f.set {
			t.Fatal("a typed field that was not set")
		}
		if req.RefreshTokenSnake.set && f != req.RefreshTokenSnake {
			t.Fatal("refresh_token present but refreshToken chosen")
		}
	})
}

// FuzzDecodeSignIn: the body of POST /auth/github.
func FuzzDecodeSignIn(f *testing.F) {
	for _, s := range []string{
		`{"code":"abc"}`, `{"code":"abc","state":"s","redirect_uri":"http://x/cb","deviceInfo":{"os":"x"}}`,
		`{"code":null}`, `{"code":1}`, `{"code":"a","state":2}`, `{"code":"a","deviceInfo":[1,2]}`, `{"code":"a","state":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req signInRequest
		if err := decodeObject(body, &req); err != nil {
			if flashauth.ErrorCode(err) != flashauth.CodeInvalidRequest {
				t.Fatalf("decode error %v is not INVALID_REQUEST", err)
			}
			return
		}
		if err := req.check(); err != nil && flashauth.ErrorCode(err) != flashauth.CodeInvalidRequest {
			t.Fatalf("check error %v is not INVALID_REQUEST", err)
		}
	})
}
