package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flashbacktech/flashauth"
)

// RefreshToken trades a refresh token for a new access token (and, for
// expiring tokens, a rotated refresh token). The request is never re-sent
// once it may have reached GitHub: the refresh token is single-use.
func (c *Client) RefreshToken(ctx context.Context, refreshToken string) (flashauth.GitHubToken, error) {
	// url.Values{client_id, client_secret, grant_type: refresh_token,
	// refresh_token}.Encode(), with the part that never changes encoded
	// once (New).
	return c.token(ctx, opRefresh, c.refreshForm+url.QueryEscape(refreshToken))
}

// ExchangeCode trades an authorization code for tokens. Like a refresh
// token, the code is single-use, and the request is never re-sent once it
// may have reached GitHub.
func (c *Client) ExchangeCode(ctx context.Context, req flashauth.CodeExchange) (flashauth.GitHubToken, error) {
	form := url.Values{
		"client_id":     {c.clientID},
		"client_secret": {c.clientSecret},
		"code":          {req.Code},
	}
	if req.RedirectURI != "" {
		form.Set("redirect_uri", req.RedirectURI)
	}
	if req.CodeVerifier != "" {
		form.Set("code_verifier", req.CodeVerifier)
	}
	return c.token(ctx, opExchange, form.Encode())
}

// token posts form to the token endpoint and classifies the answer.
func (c *Client) token(ctx context.Context, op string, body string) (flashauth.GitHubToken, error) {
	r, err := c.send(ctx, op, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		// Without GetBody net/http cannot rewind the body, so it cannot
		// re-send a request that was written: its HTTP/2 transport would
		// otherwise retry a stream the server reset with PROTOCOL_ERROR
		// after reading the whole request, on a fresh connection each time.
		req.GetBody = nil
		// The JSON Accept, not the REST one: that one earns a 406, and no
		// Accept at all earns a form-encoded body.
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	})
	if err != nil {
		return flashauth.GitHubToken{}, err
	}
	switch {
	case r.status == http.StatusOK && r.tooLarge:
		return flashauth.GitHubToken{}, badResponse(op, r.status, errTooLarge)
	case r.status == http.StatusOK:
		tok, code, err := parseTokenResponse(r.body)
		if err != nil {
			return flashauth.GitHubToken{}, badResponse(op, r.status, err)
		}
		if code != "" {
			return flashauth.GitHubToken{}, oauthError(op, code, r.status)
		}
		return tok, nil
	case r.status == http.StatusBadRequest || r.status == http.StatusUnauthorized:
		// GitHub answers OAuth errors with 200, but an RFC 6749 style 400 or
		// 401 carrying a documented code means the same thing.
		if _, code, err := parseTokenResponse(r.body); err == nil {
			if _, known := oauthKinds[code]; known {
				return flashauth.GitHubToken{}, oauthError(op, code, r.status)
			}
		}
	}
	if e := c.unavailable(op, r); e != nil {
		return flashauth.GitHubToken{}, e
	}
	return flashauth.GitHubToken{}, badResponse(op, r.status, errUnexpected)
}

// Parse errors of the token response. None quotes the body.
var (
	errMalformed     = errors.New("malformed JSON")
	errNoAccessToken = errors.New("no access_token in the answer")
	errBadExpiry     = errors.New("an expiry is not a whole, non-negative number of seconds")
	errBadErrorCode  = errors.New("the error field is not an OAuth error code")
)

// maxExpirySeconds bounds expires_in values (about 100 years) so that they
// convert to a time.Duration without overflow.
const maxExpirySeconds = 100 * 365 * 24 * 60 * 60

// seconds is an expiry GitHub sends as a JSON number or, in older answers, a
// numeric string. Absent, null and "" mean "does not expire" (zero).
type seconds int64

func (s *seconds) UnmarshalJSON(b []byte) error {
	text := string(b)
	switch {
	case text == "null":
		*s = 0
		return nil
	case strings.HasPrefix(text, `"`):
		if err := json.Unmarshal(b, &text); err != nil {
			return errBadExpiry
		}
		if text == "" {
			*s = 0
			return nil
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 || n > maxExpirySeconds {
		return errBadExpiry
	}
	*s = seconds(n)
	return nil
}

// parseTokenResponse parses a JSON answer of the token endpoint. It returns
// the token, or GitHub's OAuth error code (a 200 with `error` is not a
// success), or a parse error that never quotes the body.
func parseTokenResponse(body []byte) (flashauth.GitHubToken, string, error) {
	var raw struct {
		AccessToken           string  `json:"access_token"`
		RefreshToken          string  `json:"refresh_token"`
		TokenType             string  `json:"token_type"`
		Scope                 string  `json:"scope"`
		ExpiresIn             seconds `json:"expires_in"`
		RefreshTokenExpiresIn seconds `json:"refresh_token_expires_in"`
		Error                 string  `json:"error"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return flashauth.GitHubToken{}, "", jsonError(err)
	}
	if raw.Error != "" {
		if !oauthCodeShape(raw.Error) {
			return flashauth.GitHubToken{}, "", errBadErrorCode
		}
		return flashauth.GitHubToken{}, raw.Error, nil
	}
	if raw.AccessToken == "" {
		return flashauth.GitHubToken{}, "", errNoAccessToken
	}
	return flashauth.GitHubToken{
		AccessToken:           raw.AccessToken,
		RefreshToken:          raw.RefreshToken,
		TokenType:             raw.TokenType,
		Scope:                 raw.Scope,
		ExpiresIn:             time.Duration(raw.ExpiresIn) * time.Second,
		RefreshTokenExpiresIn: time.Duration(raw.RefreshTokenExpiresIn) * time.Second,
	}, "", nil
}

// oauthCodeShape reports whether s looks like an OAuth error code
// (snake_case, short). Anything else stays out of errors and logs: it could
// be an echo of anything.
func oauthCodeShape(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return s != ""
}

// jsonError rewords an encoding/json error without the bytes it may quote.
func jsonError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, errBadExpiry):
		return errBadExpiry
	case errors.As(err, &syntax):
		return fmt.Errorf("%w: syntax error at byte %d", errMalformed, syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		// Field is a path of our own struct tags, never input.
		return fmt.Errorf("%w: field %s has the wrong type", errMalformed, typ.Field)
	case errors.As(err, &typ):
		return fmt.Errorf("%w: not the expected JSON type", errMalformed)
	}
	return errMalformed
}
