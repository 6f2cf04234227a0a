package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
)

// RefreshGitHubRequest is the body of POST /auth/github/refresh.
type RefreshGitHubRequest struct {
	// RefreshToken is the GitHub refresh token (ghr_...) to rotate.
	RefreshToken string
	// AccessToken, when set, is a flashauth access JWT sent as Bearer: the
	// `session` ownership policy requires it.
	AccessToken string
}

// RefreshGitHub rotates a GitHub refresh token through flashauth: POST
// /auth/github/refresh. Presenting the same token again within the replay
// window returns the same pair; once it is dead the error matches
// ErrReauthRequired.
func (c *Client) RefreshGitHub(ctx context.Context, req RefreshGitHubRequest) (Token, error) {
	if req.RefreshToken == "" {
		return Token{}, errors.New("flashauth client: RefreshGitHub needs a refresh token")
	}
	var out struct {
		AccessToken           string `json:"accessToken"`
		RefreshToken          string `json:"refreshToken"`
		ExpiresAt             int64  `json:"expiresAt"`
		RefreshTokenExpiresAt int64  `json:"refreshTokenExpiresAt"`
		TokenType             string `json:"tokenType"`
		Scope                 string `json:"scope"`
	}
	err := c.do(ctx, call{method: http.MethodPost, path: "/auth/github/refresh", bearer: req.AccessToken,
		body: map[string]string{"refresh_token": req.RefreshToken}}, &out)
	if err != nil {
		return Token{}, err
	}
	if out.AccessToken == "" {
		return Token{}, errors.New("flashauth client: the refresh answer carries no access token")
	}
	return Token{
		AccessToken:        out.AccessToken,
		RefreshToken:       out.RefreshToken,
		TokenType:          out.TokenType,
		Scope:              out.Scope,
		Expiry:             fromMillis(out.ExpiresAt),
		RefreshTokenExpiry: fromMillis(out.RefreshTokenExpiresAt),
	}, nil
}

// AuthorizeRequest is the query of GET /auth/github/authorize.
type AuthorizeRequest struct {
	// RedirectURI is where GitHub sends the user back with code and state.
	RedirectURI string
	// DisablePKCE asks for a URL without a PKCE challenge (?pkce=false),
	// for clients that cannot send the state back with the code.
	DisablePKCE bool
}

// Authorize starts a GitHub sign-in: GET /auth/github/authorize. Send the
// user to the answer's URL; GitHub redirects to RedirectURI with code and
// state, which SignIn takes.
func (c *Client) Authorize(ctx context.Context, req AuthorizeRequest) (Authorization, error) {
	q := url.Values{}
	if req.RedirectURI != "" {
		q.Set("redirect_uri", req.RedirectURI)
	}
	if req.DisablePKCE {
		q.Set("pkce", "false")
	}
	var out struct {
		URL   string `json:"url"`
		State string `json:"state"`
	}
	if err := c.do(ctx, call{method: http.MethodGet, path: "/auth/github/authorize", query: q}, &out); err != nil {
		return Authorization{}, err
	}
	if out.URL == "" {
		return Authorization{}, errors.New("flashauth client: the authorize answer carries no URL")
	}
	return Authorization{URL: out.URL, State: out.State}, nil
}

// SignInRequest is the body of POST /auth/github.
type SignInRequest struct {
	// Code is the authorization code GitHub redirected with.
	Code string
	// State is the state GitHub redirected with (required when the login
	// was started with Authorize and PKCE).
	State string
	// RedirectURI is the redirect_uri the login was started with.
	RedirectURI string
	// DeviceInfo is any JSON describing the device; GET /token shows it.
	DeviceInfo json.RawMessage
}

// SignIn completes a GitHub sign-in: POST /auth/github exchanges the code,
// opens a flashauth session and returns it with the GitHub token pair.
func (c *Client) SignIn(ctx context.Context, req SignInRequest) (SignInResult, error) {
	if req.Code == "" {
		return SignInResult{}, errors.New("flashauth client: SignIn needs a code")
	}
	body := map[string]any{"code": req.Code}
	if req.State != "" {
		body["state"] = req.State
	}
	if req.RedirectURI != "" {
		body["redirect_uri"] = req.RedirectURI
	}
	if len(req.DeviceInfo) > 0 {
		if !json.Valid(req.DeviceInfo) {
			return SignInResult{}, errors.New("flashauth client: SignIn: DeviceInfo is not valid JSON")
		}
		body["deviceInfo"] = req.DeviceInfo
	}
	var out struct {
		Message   string `json:"message"`
		AuthState struct {
			User struct {
				Email    string `json:"email"`
				Name     string `json:"name"`
				ImageURL string `json:"imageUrl"`
			} `json:"user"`
			Token               string `json:"token"`
			AccessToken         string `json:"accessToken"`
			RefreshToken        string `json:"refreshToken"`
			ExpiresAt           int64  `json:"expiresAt"`
			Provider            string `json:"provider"`
			SessionRefreshToken string `json:"sessionRefreshToken"`
			TokenID             string `json:"tokenId"`
			SessionExpiresAt    int64  `json:"sessionExpiresAt"`
		} `json:"authState"`
	}
	if err := c.do(ctx, call{method: http.MethodPost, path: "/auth/github", body: body}, &out); err != nil {
		return SignInResult{}, err
	}
	st := out.AuthState
	if st.Token == "" || st.SessionRefreshToken == "" {
		return SignInResult{}, errors.New("flashauth client: the sign-in answer carries no session")
	}
	return SignInResult{
		Message:  out.Message,
		Provider: st.Provider,
		User:     User{Email: st.User.Email, Name: st.User.Name, ImageURL: st.User.ImageURL},
		Session: Session{
			ID:                 st.TokenID,
			AccessToken:        st.Token,
			AccessTokenExpiry:  jwtExpiry(st.Token),
			RefreshToken:       st.SessionRefreshToken,
			RefreshTokenExpiry: fromMillis(st.SessionExpiresAt),
		},
		GitHub: Token{
			AccessToken:  st.AccessToken,
			RefreshToken: st.RefreshToken,
			TokenType:    "bearer",
			Expiry:       fromMillis(st.ExpiresAt),
		},
	}, nil
}

// RefreshSession rotates a flashauth session refresh token: POST
// /user/refresh. The old token is dead afterwards (a retry within the reuse
// interval gets the same answer; later reuse revokes the session, and the
// error matches ErrReauthRequired).
func (c *Client) RefreshSession(ctx context.Context, refreshToken string) (Session, error) {
	if refreshToken == "" {
		return Session{}, errors.New("flashauth client: RefreshSession needs a refresh token")
	}
	var out struct {
		Token            string `json:"token"`
		RefreshToken     string `json:"refreshToken"`
		ExpiresAt        int64  `json:"expiresAt"`
		TokenID          string `json:"tokenId"`
		SessionExpiresAt int64  `json:"sessionExpiresAt"`
	}
	if err := c.do(ctx, call{method: http.MethodPost, path: "/user/refresh", body: map[string]string{"refresh_token": refreshToken}}, &out); err != nil {
		return Session{}, err
	}
	if out.Token == "" || out.RefreshToken == "" {
		return Session{}, errors.New("flashauth client: the session refresh answer carries no tokens")
	}
	return Session{
		ID:                 out.TokenID,
		AccessToken:        out.Token,
		AccessTokenExpiry:  fromMillis(out.ExpiresAt),
		RefreshToken:       out.RefreshToken,
		RefreshTokenExpiry: fromMillis(out.SessionExpiresAt),
	}, nil
}

// Logout ends the session of refreshToken: POST /user/logout. Ending an
// already revoked session succeeds too.
func (c *Client) Logout(ctx context.Context, refreshToken string) error {
	if refreshToken == "" {
		return errors.New("flashauth client: Logout needs a refresh token")
	}
	return c.do(ctx, call{method: http.MethodPost, path: "/user/logout", body: map[string]string{"refresh_token": refreshToken}}, nil)
}

// Sessions lists the active sessions of the user of accessToken, newest
// first: GET /token. An expired access token answers AUTH_REQUIRED: renew it
// with RefreshSession.
func (c *Client) Sessions(ctx context.Context, accessToken string) ([]SessionInfo, error) {
	var out struct {
		// The items of GET /token (docs/api.md): first the fields
		// SessionInfo takes over as they are, then the times it converts.
		Tokens []struct {
			ID         string          `json:"id"`
			DeviceInfo json.RawMessage `json:"deviceInfo"` // JSON null when none
			IPAddress  string          `json:"ipAddress"`
			UserAgent  string          `json:"userAgent"`
			Provider   string          `json:"provider"`
			Current    bool            `json:"current"`
			// Milliseconds since the epoch, 0 for none.
			CreatedAt  int64 `json:"createdAt"`
			LastUsedAt int64 `json:"lastUsedAt"`
			ExpiresAt  int64 `json:"expiresAt"`
		} `json:"tokens"`
	}
	if err := c.do(ctx, call{method: http.MethodGet, path: "/token", bearer: accessToken}, &out); err != nil {
		return nil, err
	}
	list := make([]SessionInfo, 0, len(out.Tokens))
	for _, t := range out.Tokens {
		di := t.DeviceInfo
		if string(di) == "null" {
			di = nil
		}
		list = append(list, SessionInfo{
			ID: t.ID, CreatedAt: fromMillis(t.CreatedAt), LastUsedAt: fromMillis(t.LastUsedAt), ExpiresAt: fromMillis(t.ExpiresAt),
			DeviceInfo: di, IPAddress: t.IPAddress, UserAgent: t.UserAgent, Provider: t.Provider, Current: t.Current,
		})
	}
	return list, nil
}

// RevokeSession revokes one of the caller's sessions: DELETE /token/{id}.
// Another user's or an unknown id answers NOT_FOUND.
func (c *Client) RevokeSession(ctx context.Context, accessToken, id string) error {
	if id == "" {
		return errors.New("flashauth client: RevokeSession needs a session id")
	}
	return c.do(ctx, call{method: http.MethodDelete, path: "/token/" + url.PathEscape(id), bearer: accessToken}, nil)
}

// JWKS fetches the public keys that verify access tokens: GET
// /.well-known/jwks.json.
func (c *Client) JWKS(ctx context.Context) (JWKS, error) {
	var out JWKS
	err := c.do(ctx, call{method: http.MethodGet, path: "/.well-known/jwks.json"}, &out)
	return out, err
}

// Discovery fetches the OpenID Connect discovery document, GET
// /.well-known/openid-configuration: the issuer of access tokens and the
// absolute URL of their keys, for verifiers that start from it.
func (c *Client) Discovery(ctx context.Context) (Discovery, error) {
	var out Discovery
	err := c.do(ctx, call{method: http.MethodGet, path: "/.well-known/openid-configuration"}, &out)
	return out, err
}

// Healthz reports whether the process is up: GET /healthz.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, call{method: http.MethodGet, path: "/healthz"}, nil)
}

// Readyz reports whether the server can serve (its store is reachable and
// writable): GET /readyz. A store outage is an *Error with STORE_UNAVAILABLE.
func (c *Client) Readyz(ctx context.Context) error {
	return c.do(ctx, call{method: http.MethodGet, path: "/readyz"}, nil)
}
