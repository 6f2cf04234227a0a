package github

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/flashbacktech/flashauth"
)

// Parse errors of the REST answers.
var (
	errNoUserID = errors.New("no id in the user")
	errNoLogin  = errors.New("no login in the user")
	errNoEmail  = errors.New("an entry has no email")
)

// User returns the user the access token belongs to (GET /user).
func (c *Client) User(ctx context.Context, accessToken string) (flashauth.GitHubUser, error) {
	body, err := c.get(ctx, opUser, c.userURL, accessToken)
	if err != nil {
		return flashauth.GitHubUser{}, err
	}
	// null name, email or company decode as "".
	var raw struct {
		ID        int64  `json:"id"`
		Login     string `json:"login"`
		Name      string `json:"name"`
		Email     string `json:"email"`
		Company   string `json:"company"`
		AvatarURL string `json:"avatar_url"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return flashauth.GitHubUser{}, badResponse(opUser, http.StatusOK, jsonError(err))
	}
	switch {
	case raw.ID <= 0:
		return flashauth.GitHubUser{}, badResponse(opUser, http.StatusOK, errNoUserID)
	case raw.Login == "":
		return flashauth.GitHubUser{}, badResponse(opUser, http.StatusOK, errNoLogin)
	}
	return flashauth.GitHubUser{
		ID:        raw.ID,
		Login:     raw.Login,
		Name:      raw.Name,
		Email:     raw.Email,
		Company:   raw.Company,
		AvatarURL: raw.AvatarURL,
	}, nil
}

// Emails returns the user's email addresses (GET /user/emails).
func (c *Client) Emails(ctx context.Context, accessToken string) ([]flashauth.GitHubEmail, error) {
	body, err := c.get(ctx, opEmails, c.emailsURL, accessToken)
	if err != nil {
		return nil, err
	}
	var raw []struct {
		Email      string `json:"email"`
		Primary    bool   `json:"primary"`
		Verified   bool   `json:"verified"`
		Visibility string `json:"visibility"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, badResponse(opEmails, http.StatusOK, jsonError(err))
	}
	out := make([]flashauth.GitHubEmail, 0, len(raw))
	for _, e := range raw {
		if e.Email == "" {
			return nil, badResponse(opEmails, http.StatusOK, errNoEmail)
		}
		out = append(out, flashauth.GitHubEmail{Email: e.Email, Primary: e.Primary, Verified: e.Verified, Visibility: e.Visibility})
	}
	return out, nil
}

// get calls a REST endpoint with the user's token and returns the body of a
// 200 answer.
func (c *Client) get(ctx context.Context, op, endpoint, accessToken string) ([]byte, error) {
	if !headerSafe(accessToken, '!') {
		// It could not be sent in a header, and GitHub would refuse it anyway.
		return nil, &flashauth.UpstreamError{Kind: flashauth.UpstreamRejected, Op: op, Err: errMalformedBearer}
	}
	r, err := c.send(ctx, op, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+accessToken)
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", apiVersion)
		return req, nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case r.status == http.StatusOK && r.tooLarge:
		return nil, badResponse(op, r.status, errTooLarge)
	case r.status == http.StatusOK:
		return r.body, nil
	case r.status == http.StatusUnauthorized:
		return nil, &flashauth.UpstreamError{Kind: flashauth.UpstreamRejected, Op: op, Status: r.status, Err: errBadCredentials}
	}
	if e := c.unavailable(op, r); e != nil {
		return nil, e
	}
	return nil, badResponse(op, r.status, errUnexpected)
}
