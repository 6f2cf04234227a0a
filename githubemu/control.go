package githubemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The control API lets another process (tests of the flashauth binary, the
// `flashauth emulator` command's users) drive the emulator's knobs. It has no
// authentication: never expose an emulator beyond a development machine.

const maxControlBody = 1 << 20

// GrantJSON is a grant as the control API returns it; durations in seconds.
type GrantJSON struct {
	UserID                int64  `json:"user_id"`
	Login                 string `json:"login"`
	AccessToken           string `json:"access_token"`
	RefreshToken          string `json:"refresh_token,omitempty"`
	ExpiresIn             int64  `json:"expires_in,omitempty"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in,omitempty"`
}

// FaultJSON is a fault as the control API takes it.
type FaultJSON struct {
	Kind              FaultKind `json:"kind"`
	Path              string    `json:"path,omitempty"`
	Count             int       `json:"count,omitempty"`
	RetryAfterSeconds int       `json:"retry_after_seconds,omitempty"`
	Status            int       `json:"status,omitempty"`
}

// userRef names a user by id or by login.
type userRef struct {
	UserID int64  `json:"user_id"`
	Login  string `json:"login"`
}

func (e *Emulator) controlRoutes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /_emulator/users", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.Users())
	})
	m.HandleFunc("POST /_emulator/users", func(w http.ResponseWriter, r *http.Request) {
		var u User
		if decodeControl(w, r, &u) {
			writeJSON(w, http.StatusOK, e.AddUser(u))
		}
	})
	m.HandleFunc("POST /_emulator/grants", e.controlGrant)
	m.HandleFunc("POST /_emulator/login", e.controlLogin)
	m.HandleFunc("POST /_emulator/revoke", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Token string `json:"token"`
		}
		if !decodeControl(w, r, &req) {
			return
		}
		e.mu.Lock()
		found := e.revokeLocked(req.Token)
		e.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]bool{"revoked": found})
	})
	m.HandleFunc("POST /_emulator/faults", func(w http.ResponseWriter, r *http.Request) {
		var f FaultJSON
		if !decodeControl(w, r, &f) {
			return
		}
		if f.Kind == 0 || f.Count < 0 || f.RetryAfterSeconds < 0 {
			controlError(w, http.StatusBadRequest, "kind is required; count and retry_after_seconds cannot be negative")
			return
		}
		e.InjectFault(Fault{Kind: f.Kind, Path: f.Path, Count: f.Count,
			RetryAfter: time.Duration(f.RetryAfterSeconds) * time.Second, Status: f.Status})
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	m.HandleFunc("DELETE /_emulator/faults", func(w http.ResponseWriter, r *http.Request) {
		e.ClearFaults()
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	m.HandleFunc("PUT /_emulator/latency", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			MS *int64 `json:"ms"`
		}
		if !decodeControl(w, r, &req) {
			return
		}
		if req.MS == nil || *req.MS < 0 {
			controlError(w, http.StatusBadRequest, "ms must be a number of milliseconds, 0 or more")
			return
		}
		e.SetLatency(time.Duration(*req.MS) * time.Millisecond)
		writeJSON(w, http.StatusOK, map[string]int64{"ms": *req.MS})
	})
	m.HandleFunc("GET /_emulator/calls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.Calls())
	})
	m.HandleFunc("POST /_emulator/reset-calls", func(w http.ResponseWriter, r *http.Request) {
		e.ResetCalls()
		writeJSON(w, http.StatusOK, e.Calls())
	})
	return m
}

// controlGrant mints a token pair for a user named by id or login; an
// unknown login is created.
func (e *Emulator) controlGrant(w http.ResponseWriter, r *http.Request) {
	var ref userRef
	if !decodeControl(w, r, &ref) {
		return
	}
	e.mu.Lock()
	u, err := e.resolveUserLocked(ref)
	var g *grant
	if err == nil {
		g = e.issueLocked(u.ID, e.clock.Now())
	}
	e.mu.Unlock()
	if err != nil {
		controlError(w, statusOfControlErr(err), err.Error())
		return
	}
	out := e.grantOf(g)
	writeJSON(w, http.StatusOK, GrantJSON{
		UserID: u.ID, Login: u.Login,
		AccessToken: out.AccessToken, RefreshToken: out.RefreshToken,
		ExpiresIn:             int64(out.ExpiresIn / time.Second),
		RefreshTokenExpiresIn: int64(out.RefreshTokenExpiresIn / time.Second),
	})
}

// controlLogin completes a login without a browser and returns the code and
// the URL the browser would have been sent to.
func (e *Emulator) controlLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		userRef
		ClientID            string `json:"client_id"`
		RedirectURI         string `json:"redirect_uri"`
		State               string `json:"state"`
		CodeChallenge       string `json:"code_challenge"`
		CodeChallengeMethod string `json:"code_challenge_method"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	if req.ClientID == "" {
		req.ClientID = e.cfg.ClientID
	}
	p := LoginParams{ClientID: req.ClientID, RedirectURI: req.RedirectURI, State: req.State,
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: req.CodeChallengeMethod}
	redirect, err := e.checkLogin(p)
	if err != nil {
		controlError(w, http.StatusBadRequest, err.Error())
		return
	}
	e.mu.Lock()
	u, err := e.resolveUserLocked(req.userRef)
	var code string
	if err == nil {
		code = e.issueCodeLocked(u.ID, redirect, p.CodeChallenge, e.clock.Now())
	}
	e.mu.Unlock()
	if err != nil {
		controlError(w, statusOfControlErr(err), err.Error())
		return
	}
	out := map[string]any{"code": code, "user_id": u.ID, "login": u.Login}
	if redirect != "" {
		// checkLogin parsed redirect already, so this cannot fail.
		out["redirect_url"], _ = withQuery(redirect, p.State, "code", code)
	}
	writeJSON(w, http.StatusOK, out)
}

var errNoUserRef = errors.New("user_id or login is required")

func (e *Emulator) resolveUserLocked(ref userRef) (User, error) {
	switch {
	case ref.UserID != 0:
		rec, ok := e.users[ref.UserID]
		if !ok {
			return User{}, ErrUnknownUser
		}
		return rec.clone(), nil
	case ref.Login != "":
		return e.userByLoginLocked(ref.Login), nil
	}
	return User{}, errNoUserRef
}

func statusOfControlErr(err error) int {
	if errors.Is(err, ErrUnknownUser) {
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		controlError(w, http.StatusBadRequest, fmt.Sprintf("invalid JSON body: %v", err))
		return false
	}
	return true
}

func controlError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
