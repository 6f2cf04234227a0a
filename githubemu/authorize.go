package githubemu

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors of CompleteLogin and of the authorize page.
var (
	ErrUnknownClient       = errors.New("githubemu: unknown client_id")
	ErrInvalidRedirectURI  = errors.New("githubemu: redirect_uri must be an absolute http or https URL")
	ErrRedirectURIMismatch = errors.New("githubemu: redirect_uri does not match the registered callback URL")
	ErrInvalidChallenge    = errors.New("githubemu: code_challenge must be 43 base64url characters with code_challenge_method S256")
)

// LoginParams are the authorize request's parameters plus the user who
// approves it.
type LoginParams struct {
	ClientID, RedirectURI, State, CodeChallenge, CodeChallengeMethod string
	UserID                                                           int64
}

// CompleteLogin does what approving the authorize page does, without a
// browser: it checks the request like GitHub and returns a fresh code bound
// to the redirect URI and the PKCE challenge. An empty RedirectURI means the
// registered CallbackURL (or none, when there is none).
func (e *Emulator) CompleteLogin(p LoginParams) (string, error) {
	redirect, err := e.checkLogin(p)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.users[p.UserID]; !ok {
		return "", ErrUnknownUser
	}
	return e.issueCodeLocked(p.UserID, redirect, p.CodeChallenge, e.clock.Now()), nil
}

// CompleteLoginURL is CompleteLogin for the user userID with the parameters
// of authorizeURL, the URL a client sends the browser to: what a user who
// follows it and approves does.
func (e *Emulator) CompleteLoginURL(authorizeURL string, userID int64) (string, error) {
	u, err := url.Parse(authorizeURL)
	if err != nil {
		return "", errors.New("githubemu: the authorize URL does not parse") // its error would quote the state
	}
	p := loginParams(u.Query())
	p.UserID = userID
	return e.CompleteLogin(p)
}

// registered reports whether redirect matches a registered callback, or
// none is registered.
func (e *Emulator) registered(redirect string) bool {
	if e.cfg.CallbackURL == "" && len(e.cfg.MoreCallbackURLs) == 0 {
		return true
	}
	if redirect == e.cfg.CallbackURL || slices.Contains(e.cfg.MoreCallbackURLs, redirect) {
		return true
	}
	if !e.cfg.LoopbackAnyPort {
		return false
	}
	for _, cb := range append([]string{e.cfg.CallbackURL}, e.cfg.MoreCallbackURLs...) {
		if sameLoopbackCallback(cb, redirect) {
			return true
		}
	}
	return false
}

// sameLoopbackCallback reports whether redirect is the registered loopback
// callback with another port (or none): same http scheme, same loopback
// host, same path and query.
func sameLoopbackCallback(registered, redirect string) bool {
	r, err1 := url.Parse(registered)
	u, err2 := url.Parse(redirect)
	if err1 != nil || err2 != nil || r.Scheme != "http" || u.Scheme != "http" || u.User != nil || u.Fragment != "" {
		return false
	}
	switch r.Hostname() {
	case "127.0.0.1", "::1", "localhost":
	default:
		return false
	}
	return u.Hostname() == r.Hostname() && u.EscapedPath() == r.EscapedPath() && u.RawQuery == r.RawQuery
}

// checkLogin validates an authorize request and returns the redirect URI its
// code is bound to.
func (e *Emulator) checkLogin(p LoginParams) (string, error) {
	if p.ClientID != e.cfg.ClientID {
		return "", ErrUnknownClient
	}
	redirect := p.RedirectURI
	if redirect == "" {
		redirect = e.cfg.CallbackURL
	}
	if redirect != "" {
		u, err := url.Parse(redirect)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", ErrInvalidRedirectURI
		}
		if !e.registered(redirect) {
			return "", ErrRedirectURIMismatch
		}
	}
	// GitHub supports S256 only; "plain" (the RFC default when the method is
	// missing) is refused.
	if p.CodeChallenge != "" || p.CodeChallengeMethod != "" {
		raw, err := base64.RawURLEncoding.DecodeString(p.CodeChallenge)
		if p.CodeChallengeMethod != "S256" || err != nil || len(raw) != 32 {
			return "", ErrInvalidChallenge
		}
	}
	return redirect, nil
}

func (e *Emulator) issueCodeLocked(userID int64, redirect, challenge string, now time.Time) string {
	e.sweepLocked(now)
	code := randomCode()
	e.codes[code] = &authCode{userID: userID, redirectURI: redirect, challenge: challenge, expires: now.Add(e.cfg.CodeTTL)}
	return code
}

func loginParams(v url.Values) LoginParams {
	return LoginParams{
		ClientID:            v.Get("client_id"),
		RedirectURI:         v.Get("redirect_uri"),
		State:               v.Get("state"),
		CodeChallenge:       v.Get("code_challenge"),
		CodeChallengeMethod: v.Get("code_challenge_method"),
	}
}

// serveAuthorizePage answers GET /login/oauth/authorize with a page that
// lists the known users and offers to create one.
func (e *Emulator) serveAuthorizePage(w http.ResponseWriter, r *http.Request) {
	p := loginParams(r.URL.Query())
	redirect, ok := e.authorizeChecks(w, r, p)
	if !ok {
		return
	}
	data := pageData{Params: p, Action: AuthorizePath, Users: e.Users()}
	if u, err := url.Parse(redirect); err == nil {
		data.RedirectHost = u.Host
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := authorizePage.Execute(w, data); err != nil {
		e.log.Error("githubemu: authorize page", "err", err)
	}
}

// serveAuthorizeSubmit answers POST /login/oauth/authorize: it issues a code
// and redirects to the redirect URI with code and state.
func (e *Emulator) serveAuthorizeSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenBody)
	if err := r.ParseForm(); err != nil {
		writePage(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	p := loginParams(r.Form)
	redirect, ok := e.authorizeChecks(w, r, p)
	if !ok {
		return
	}
	if r.Form.Get("action") == "deny" {
		redirectWith(w, r, redirect, p.State,
			"error", "access_denied",
			"error_description", "The user has denied your application access.",
			"error_uri", "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied")
		return
	}
	e.mu.Lock()
	code, msg := e.approveLocked(r.Form.Get("user_id"), strings.TrimSpace(r.Form.Get("login")), p.CodeChallenge, redirect)
	e.mu.Unlock()
	if msg != "" {
		writePage(w, http.StatusBadRequest, "Cannot sign in", msg)
		return
	}
	redirectWith(w, r, redirect, p.State, "code", code)
}

// approveLocked picks the user named by login (created when unknown) or by
// userID and issues a code; msg explains a refusal.
func (e *Emulator) approveLocked(userID, login, challenge, redirect string) (code, msg string) {
	var id int64
	switch {
	case login != "":
		if _, known := e.logins[strings.ToLower(login)]; !known && !validLogin(login) {
			return "", "A login may only contain letters, digits and single hyphens, and cannot begin or end with a hyphen."
		}
		id = e.userByLoginLocked(login).ID
	case userID != "":
		n, err := strconv.ParseInt(userID, 10, 64)
		if _, ok := e.users[n]; err != nil || !ok {
			return "", "That user does not exist."
		}
		id = n
	default:
		return "", "Choose a user or name a new one."
	}
	return e.issueCodeLocked(id, redirect, challenge, e.clock.Now()), ""
}

// authorizeChecks validates an authorize request and answers it when it is
// refused, the way GitHub does: 404 for an unknown client, a redirect to the
// registered callback with error=redirect_uri_mismatch, 400 otherwise.
func (e *Emulator) authorizeChecks(w http.ResponseWriter, r *http.Request, p LoginParams) (string, bool) {
	redirect, err := e.checkLogin(p)
	switch {
	case errors.Is(err, ErrUnknownClient):
		writePage(w, http.StatusNotFound, "Not Found", "No application is registered with this client_id.")
	case errors.Is(err, ErrRedirectURIMismatch):
		redirectWith(w, r, e.cfg.CallbackURL, p.State,
			"error", ErrCodeRedirectURIMismatch,
			"error_description", oauthErrors[ErrCodeRedirectURIMismatch][0],
			"error_uri", "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch")
	case err != nil:
		writePage(w, http.StatusBadRequest, "Bad request", err.Error())
	case redirect == "":
		writePage(w, http.StatusBadRequest, "Bad request", "No redirect_uri was given and no callback URL is registered.")
	default:
		return redirect, true
	}
	return "", false
}

// redirectWith answers 302 to target with kv (pairs) and state added to its
// query.
func redirectWith(w http.ResponseWriter, r *http.Request, target, state string, kv ...string) {
	loc, err := withQuery(target, state, kv...)
	if err != nil {
		writePage(w, http.StatusBadRequest, "Bad request", ErrInvalidRedirectURI.Error())
		return
	}
	http.Redirect(w, r, loc, http.StatusFound)
}

// withQuery returns target with kv (pairs) and, when not empty, state added
// to its query; GitHub keeps the query the redirect URI already has.
func withQuery(target, state string, kv ...string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

type pageData struct {
	Params       LoginParams
	Action       string
	RedirectHost string
	Users        []User
}

func writePage(w http.ResponseWriter, status int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	messagePage.Execute(w, struct{ Title, Message string }{title, msg})
}

const pageStyle = `<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1f2328}
fieldset{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0}label{display:block;margin:.4rem 0}
button{padding:.4rem 1rem;margin-right:.5rem}small{color:#656d76}</style>`

var authorizePage = template.Must(template.New("authorize").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize application · GitHub emulator</title>` + pageStyle + `</head>
<body>
<h1>Authorize {{.Params.ClientID}}</h1>
<p>Sign in to <b>{{.RedirectHost}}</b> as:</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="client_id" value="{{.Params.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.Params.RedirectURI}}">
<input type="hidden" name="state" value="{{.Params.State}}">
<input type="hidden" name="code_challenge" value="{{.Params.CodeChallenge}}">
<input type="hidden" name="code_challenge_method" value="{{.Params.CodeChallengeMethod}}">
<fieldset><legend>Known users</legend>
{{range $i, $u := .Users}}<label><input type="radio" name="user_id" value="{{$u.ID}}"{{if eq $i 0}} checked{{end}}> <b>{{$u.Login}}</b>{{with $u.Name}} ({{.}}){{end}} <small>#{{$u.ID}}</small></label>
{{else}}<p><small>No users yet.</small></p>
{{end}}</fieldset>
<label>Or a new user (login): <input name="login" autocomplete="off"></label>
<p><button type="submit" name="action" value="approve">Approve</button><button type="submit" name="action" value="deny">Cancel</button></p>
</form>
</body></html>
`))

var messagePage = template.Must(template.New("message").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · GitHub emulator</title>` + pageStyle + `</head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

func notFoundHTML(w http.ResponseWriter) {
	writePage(w, http.StatusNotFound, "Not Found", "There is nothing here.")
}
