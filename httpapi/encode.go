package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/flashbacktech/flashauth"
)

// maxBody bounds every request body (docs/api.md, "Rules for every endpoint").
const maxBody = 64 << 10

// errorBody is the contract's error shape.
type errorBody struct {
	Success   bool   `json:"success"`
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

// statusOf maps a domain error code to its HTTP status. Only this package
// knows statuses.
func statusOf(code string) int {
	switch code {
	case flashauth.CodeInvalidRequest, flashauth.CodeRedirectURIMismatch, flashauth.CodeInvalidState,
		flashauth.CodeStateRequired:
		return http.StatusBadRequest
	case flashauth.CodeInvalidRefreshToken, flashauth.CodeAuthRequired, flashauth.CodeInvalidCode,
		flashauth.CodeRefreshTokenReused:
		return http.StatusUnauthorized
	case flashauth.CodeTokenOwnerMismatch, flashauth.CodeEmailNotVerified:
		return http.StatusForbidden
	case flashauth.CodeNotFound:
		return http.StatusNotFound
	case flashauth.CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case flashauth.CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case flashauth.CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case flashauth.CodeRateLimited:
		return http.StatusTooManyRequests
	case flashauth.CodeUpstreamBadResponse:
		return http.StatusBadGateway
	case flashauth.CodeUpstreamUnavailable, flashauth.CodeStoreUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeJSON writes v with status. Bodies are small; encoding first means a
// failure cannot leave half a body behind.
func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := bodyPool.Get().(*bytes.Buffer)
	defer putBody(buf)
	buf.Reset()
	// Encode writes what Marshal returns plus the newline, in one piece:
	// nothing when it fails.
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"success":false,"error_code":"INTERNAL_ERROR","message":"An internal error occurred."}` + "\n")
	}
	setFixed(w.Header(), "Content-Type", jsonType)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// bodyPool holds the buffers answers are encoded into.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putBody returns buf to bodyPool unless an unusually large answer grew it.
func putBody(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 {
		bodyPool.Put(buf)
	}
}

// writeError answers err in the contract's error shape. The caller logs.
func writeError(w http.ResponseWriter, err error) {
	code := flashauth.ErrorCode(err)
	status := statusOf(code)
	msg := flashauth.ErrorMessage(err)
	if code == flashauth.CodeInternal {
		msg = "An internal error occurred."
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		ra := flashauth.RetryAfter(err)
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(ra)))
	}
	writeJSON(w, status, errorBody{ErrorCode: code, Message: msg})
}

// retrySeconds rounds a retry hint up to whole seconds, at least 1.
func retrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// decodeJSON reads r's body into v: Content-Type must be application/json,
// the body at most maxBody bytes and exactly one JSON object. Unknown fields
// are ignored (real clients send extra ones).
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if !jsonContentType(r.Header.Get("Content-Type")) {
		return flashauth.Errorf(flashauth.CodeUnsupportedMediaType, "Content-Type must be application/json.")
	}
	// The body is read into a pooled buffer: decoding copies what it keeps
	// (strings, json.RawMessage), so nothing refers to it afterwards.
	buf := bodyPool.Get().(*bytes.Buffer)
	defer putBody(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return flashauth.Errorf(flashauth.CodePayloadTooLarge, "The request body is larger than %d bytes.", maxBody)
		}
		return &flashauth.Error{Code: flashauth.CodeInvalidRequest, Message: "The request body could not be read.", Err: err}
	}
	return decodeObject(buf.Bytes(), v)
}

// jsonContentType reports whether a Content-Type names application/json.
func jsonContentType(ct string) bool {
	if ct == "application/json" {
		return true // what clients send; the parse below agrees
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// decodeObject parses body as exactly one JSON object into v.
func decodeObject(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return flashauth.Errorf(flashauth.CodeInvalidRequest, "The request body must be a JSON object.")
	}
	// A body that is one JSON value and nothing else - what clients send -
	// decodes in one pass. Anything else (Unmarshal checks the syntax of
	// the whole body before it stores into v, so v is untouched by a
	// syntax error) is decoded by the Decoder below, whose verdict and
	// messages are the contract's: it also accepts a valid object followed
	// by a stray ] or }, and it tells extra data from bad JSON.
	if json.Unmarshal(body, v) == nil {
		return nil
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

// tokenField is a string field that must be present and a JSON string; it
// keeps "absent", null and wrong types apart from "".
type tokenField struct {
	set   bool // present in the body
	null  bool // present as null
	typed bool // present as a JSON string
	value string
}

func (f *tokenField) UnmarshalJSON(b []byte) error {
	f.set = true
	f.null = string(b) == "null"
	if err := json.Unmarshal(b, &f.value); err == nil && len(b) > 0 && b[0] == '"' {
		f.typed = true
	}
	return nil
}

// optionalString reports whether f is absent, null or a string.
func (f tokenField) optionalString() bool { return !f.set || f.null || f.typed }

// String returns the value when it was a JSON string, else "" (which every
// validator rejects).
func (f tokenField) String() string {
	if !f.typed {
		return ""
	}
	return f.value
}
