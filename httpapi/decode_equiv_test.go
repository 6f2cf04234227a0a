package httpapi

import (
	"bytes"
	"encoding/json"
	"mime"
	"testing"

	"github.com/flashbacktech/flashauth"
)

// refTokenField and refDecodeObject are the decoder as it was before its
// one-pass fast paths: a json.Decoder for every body and json.Unmarshal
// for every token field. The fast paths must decide every body the same
// way, with the same message and the same values.
type refTokenField tokenField

func (f *refTokenField) UnmarshalJSON(b []byte) error {
	f.set = true
	f.null = string(b) == "null"
	if err := json.Unmarshal(b, &f.value); err == nil && len(b) > 0 && b[0] == '"' {
		f.typed = true
	}
	return nil
}

func refDecodeObject(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return flashauth.Errorf(flashauth.CodeInvalidRequest, "The request body must be a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return flashauth.Errorf(flashauth.CodeInvalidRequest, "The request body is not valid JSON or a field has the wrong type.")
	}
	if dec.More() {
		return flashauth.Errorf(flashauth.CodeInvalidRequest, "The request body must hold exactly one JSON object.")
	}
	return nil
}

func FuzzDecodeObjectAsBefore(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `[]`, `{"refresh_token":"ghr_abc"}`, `{"refresh_token":"ghr_abc"}}`, `{"refresh_token":"ghr_abc"}]`,
		`{"refresh_token":"ghr_abc"} {}`, `{"refresh_token":"ghr_abc"} x`, `{"refresh_token":"ghr_abc"}  `,
		`{"refresh_token":"a\u0062c"}`, `{"refresh_token":"a\\b"}`, `{"refresh_token":"a\"b"}`, `{"refresh_token":"é"}`,
		"{\"refresh_token\":\"a\xffb\"}", `{"refresh_token":"a","refresh_token":5}`, `{"refresh_token":5,"refresh_token":"a"}`,
		`{"refresh_token":null}`, `{"refresh_token":123}`, `{"refresh_token":["a"]}`, `{"refresh_token":""}`,
		`{"refreshToken":"abc","deviceInfo":{"os":"linux"}}`, `{"refresh_token":"a","refreshToken":1}`, `{`, `{"a":`,
		"{\"refresh_token\":\"a\tb\"}", `{"refresh_token":"~ !"}`, `{"refresh_token":"\u2028"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got sessionTokenRequest
		gotErr := decodeObject(body, &got)
		var want struct {
			RefreshTokenSnake refTokenField `json:"refresh_token"`
			RefreshTokenCamel refTokenField `json:"refreshToken"`
		}
		wantErr := refDecodeObject(body, &want)
		if flashauth.ErrorMessage(gotErr) != flashauth.ErrorMessage(wantErr) || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("body %q: error %v, before %v", body, gotErr, wantErr)
		}
		if wantErr == nil && (got.RefreshTokenSnake != tokenField(want.RefreshTokenSnake) ||
			got.RefreshTokenCamel != tokenField(want.RefreshTokenCamel)) {
			t.Fatalf("body %q: decoded %+v, before %+v", body, got, want)
		}
	})
}

func TestJSONContentTypeAsParsed(t *testing.T) {
	for _, ct := range []string{
		"application/json", "application/json; charset=utf-8", "Application/JSON", "application/json ",
		"application/jsonx", "text/plain", "", "application/json; charset", "application/json;",
	} {
		mt, _, err := mime.ParseMediaType(ct)
		if want := err == nil && mt == "application/json"; jsonContentType(ct) != want {
			t.Errorf("jsonContentType(%q) = %v, want %v", ct, !want, want)
		}
	}
}
