package githubemu

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const restDocs = "https://docs.github.com/rest"

// restError is the body of REST API errors.
type restError struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
	Status           string `json:"status"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func writeRESTError(w http.ResponseWriter, status int, msg, docs string) {
	writeJSON(w, status, restError{Message: msg, DocumentationURL: docs, Status: strconv.Itoa(status)})
}

func notFoundJSON(w http.ResponseWriter) {
	writeRESTError(w, http.StatusNotFound, "Not Found", restDocs)
}

// restGET wraps a REST handler: GET only, User-Agent required, a live
// access token required, GitHub's headers set.
func (e *Emulator) restGET(r *http.Request, h func(http.ResponseWriter, *http.Request, *userRecord)) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			notFoundJSON(w)
			return
		}
		if !e.requireUserAgent(w, r) {
			return
		}
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			writeRESTError(w, http.StatusUnauthorized, "Requires authentication", restDocs+"/users/users#get-the-authenticated-user")
			return
		}
		e.mu.Lock()
		rec, ok := e.userForAccessLocked(token, e.clock.Now())
		var u userRecord
		if ok {
			u = *rec
			u.User = rec.clone()
		}
		e.mu.Unlock()
		if !ok {
			writeRESTError(w, http.StatusUnauthorized, "Bad credentials", restDocs)
			return
		}
		e.restHeaders(w)
		h(w, r, &u)
	}
}

// requireUserAgent answers 403 when the request has no User-Agent, as
// GitHub's REST API does.
func (e *Emulator) requireUserAgent(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("User-Agent") != "" {
		return true
	}
	writeRESTError(w, http.StatusForbidden,
		"Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
		restDocs+"/overview/resources-in-the-rest-api#user-agent-required")
	return false
}

// bearer extracts the token of "Bearer <t>" or "token <t>".
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	token = strings.TrimSpace(token)
	if !ok || token == "" || !strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token") {
		return "", false
	}
	return token, true
}

func (e *Emulator) restHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "4999")
	h.Set("X-RateLimit-Used", "1")
	h.Set("X-RateLimit-Resource", "core")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(e.clock.Now().Add(time.Hour).Unix(), 10))
	id := make([]byte, 8)
	rand.Read(id)
	h.Set("X-GitHub-Request-Id", strings.ToUpper(hex.EncodeToString(id)))
}

// apiUser is GET /user's body: the fields flashauth reads plus enough of the
// rest to look like GitHub.
type apiUser struct {
	Login           string  `json:"login"`
	ID              int64   `json:"id"`
	NodeID          string  `json:"node_id"`
	AvatarURL       string  `json:"avatar_url"`
	GravatarID      string  `json:"gravatar_id"`
	URL             string  `json:"url"`
	HTMLURL         string  `json:"html_url"`
	Type            string  `json:"type"`
	SiteAdmin       bool    `json:"site_admin"`
	Name            *string `json:"name"`
	Company         *string `json:"company"`
	Blog            string  `json:"blog"`
	Location        *string `json:"location"`
	Email           *string `json:"email"`
	Hireable        *bool   `json:"hireable"`
	Bio             *string `json:"bio"`
	TwitterUsername *string `json:"twitter_username"`
	PublicRepos     int     `json:"public_repos"`
	PublicGists     int     `json:"public_gists"`
	Followers       int     `json:"followers"`
	Following       int     `json:"following"`
	CreatedAt       string  `json:"created_at"`
	UpdatedAt       string  `json:"updated_at"`
}

type apiEmail struct {
	Email      string  `json:"email"`
	Primary    bool    `json:"primary"`
	Verified   bool    `json:"verified"`
	Visibility *string `json:"visibility"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// baseURL is where the request came in, standing in for api.github.com.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (e *Emulator) serveUser(w http.ResponseWriter, r *http.Request, u *userRecord) {
	base := baseURL(r)
	api := base
	if strings.HasPrefix(r.URL.Path, enterprisePfx+"/") {
		api += enterprisePfx
	}
	writeJSON(w, http.StatusOK, apiUser{
		Login:     u.Login,
		ID:        u.ID,
		NodeID:    base64.StdEncoding.EncodeToString([]byte("04:User" + strconv.FormatInt(u.ID, 10))),
		AvatarURL: u.AvatarURL,
		URL:       api + "/users/" + u.Login,
		HTMLURL:   base + "/" + u.Login,
		Type:      "User",
		Name:      nullable(u.Name),
		Company:   nullable(u.Company),
		Email:     nullable(u.Email),
		CreatedAt: u.created.Format(time.RFC3339),
		UpdatedAt: u.updated.Format(time.RFC3339),
	})
}

func (e *Emulator) serveEmails(w http.ResponseWriter, r *http.Request, u *userRecord) {
	out := make([]apiEmail, 0, len(u.Emails))
	for _, m := range u.Emails {
		out = append(out, apiEmail{Email: m.Email, Primary: m.Primary, Verified: m.Verified, Visibility: nullable(m.Visibility)})
	}
	writeJSON(w, http.StatusOK, out)
}

// serveRevoke answers DELETE /applications/{client_id}/token (revoke one
// token pair) and /grant (revoke every token of the user), authenticated
// with HTTP Basic client_id:client_secret: 204, or 422 for an unknown token.
func (e *Emulator) serveRevoke(w http.ResponseWriter, r *http.Request, path string) {
	rest := strings.TrimPrefix(path, "/applications/")
	clientID, what, _ := strings.Cut(rest, "/")
	if r.Method != http.MethodDelete || (what != "token" && what != "grant") || clientID != e.cfg.ClientID {
		notFoundJSON(w)
		return
	}
	if !e.requireUserAgent(w, r) {
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok || !e.clientOK(id, secret) {
		writeRESTError(w, http.StatusUnauthorized, "Bad credentials", restDocs)
		return
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenBody)
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.AccessToken == "" {
		writeRESTError(w, http.StatusUnprocessableEntity, "Invalid request.", restDocs+"/apps/oauth-applications")
		return
	}
	e.mu.Lock()
	g, found := e.access[body.AccessToken]
	if found {
		if what == "grant" {
			e.revokeUserLocked(g.userID)
		} else {
			e.killLocked(g)
		}
	}
	e.mu.Unlock()
	if !found {
		writeRESTError(w, http.StatusUnprocessableEntity, "Validation Failed", restDocs+"/apps/oauth-applications")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
