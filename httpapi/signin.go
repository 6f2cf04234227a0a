package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/signin"
)

// handleAuthorize serves GET /auth/github/authorize: where to send the user,
// as JSON, or as a redirect with ?redirect=1. ?pkce=false leaves PKCE out,
// for clients that never send the state back.
func (s *server) handleAuthorize() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		pkce := true
		switch q.Get("pkce") {
		case "", "true":
		case "false":
			pkce = false
		default:
			s.fail(w, r, flashauth.Errorf(flashauth.CodeInvalidRequest, "pkce must be true or false."))
			return
		}
		res, err := s.SignIn.Authorize(r.Context(), signin.AuthorizeRequest{RedirectURI: q.Get("redirect_uri"), WithoutPKCE: !pkce})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		noStore(w)
		body := map[string]any{"success": true, "url": res.URL, "state": res.State}
		if q.Get("redirect") == "1" {
			// Browsers follow Location; the body stays JSON like every answer.
			w.Header().Set("Location", res.URL)
			writeJSON(w, http.StatusFound, body)
			return
		}
		writeJSON(w, http.StatusOK, body)
	})
}

// handleGitHubSignIn serves POST /auth/github (docs/api.md).
func (s *server) handleGitHubSignIn() http.Handler {
	type response struct {
		Success   bool             `json:"success"`
		Message   string           `json:"message"`
		AuthState signin.AuthState `json:"authState"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req signInRequest
		if err := decodeJSON(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		if err := req.check(); err != nil {
			s.fail(w, r, err)
			return
		}
		di := req.DeviceInfo
		if string(di) == "null" {
			di = nil
		}
		done, ok := s.admission.admit(r)
		if !ok {
			return
		}
		defer done()
		st, err := s.SignIn.SignIn(r.Context(), signin.Request{
			Code:        req.Code.String(),
			State:       req.State.String(),
			RedirectURI: req.RedirectURI.String(),
			DeviceInfo:  di,
			IPAddress:   s.requestIP(r),
			UserAgent:   truncate(r.UserAgent(), 512),
		})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		noStore(w)
		writeJSON(w, http.StatusOK, response{Success: true, Message: "Authentication successful", AuthState: st})
	})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// signInRequest is the body of POST /auth/github.
type signInRequest struct {
	Code        tokenField      `json:"code"`
	State       tokenField      `json:"state"`
	RedirectURI tokenField      `json:"redirect_uri"`
	DeviceInfo  json.RawMessage `json:"deviceInfo"`
}

// check validates the types; the sign-in service validates the values.
func (q *signInRequest) check() error {
	if !q.Code.typed || !q.State.optionalString() || !q.RedirectURI.optionalString() {
		return flashauth.Errorf(flashauth.CodeInvalidRequest, "code must be a string; state and redirect_uri, when given, strings.")
	}
	return nil
}
