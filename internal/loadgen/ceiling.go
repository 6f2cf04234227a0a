package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Ceiling is the benchmark's upper bound for any broker: a lean proxy that
// answers POST /auth/github/refresh with the same request and response JSON
// as flashauth, and does the same HTTP work - one call to GitHub's token
// endpoint per request, concurrent callers of one token joined in memory
// (single-flight) - and nothing else: no store, no replay after the answer,
// no durability, no audit, no limits. It exists only to be measured
// against; never deploy it (a lost answer loses the lineage).
type Ceiling struct {
	tokenURL         string
	clientID, secret string
	client           *http.Client

	mu    sync.Mutex
	calls map[string]*ceilingCall // in flight
}

type ceilingCall struct {
	done   chan struct{}
	status int
	body   []byte
}

// NewCeiling returns the ceiling proxy in front of the GitHub token endpoint
// at githubURL, with a keep-alive pool sized for conns connections.
func NewCeiling(githubURL, clientID, clientSecret string, conns int) *Ceiling {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConns = conns + 16
	tr.MaxIdleConnsPerHost = conns + 16
	tr.IdleConnTimeout = 90 * time.Second
	// The buffer sizes of flashauth's GitHub client: the same bytes per
	// upstream connection.
	tr.ReadBufferSize, tr.WriteBufferSize = 2<<10, 1<<10
	return &Ceiling{
		tokenURL: strings.TrimRight(githubURL, "/") + "/login/oauth/access_token",
		clientID: clientID, secret: clientSecret,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
		calls:  map[string]*ceilingCall{},
	}
}

// ServeHTTP serves POST /auth/github/refresh and GET /healthz.
func (c *Ceiling) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz" && r.Method == http.MethodGet:
		c.write(w, http.StatusOK, []byte(`{"success":true}`))
		return
	case r.URL.Path != "/auth/github/refresh":
		c.fail(w, http.StatusNotFound, "NOT_FOUND")
		return
	case r.Method != http.MethodPost:
		c.fail(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		return
	}
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || req.RefreshToken == "" || len(req.RefreshToken) > 4096 {
		c.fail(w, http.StatusBadRequest, "INVALID_REQUEST")
		return
	}
	call := c.join(r.Context(), req.RefreshToken)
	select {
	case <-call.done:
		c.write(w, call.status, call.body)
	case <-r.Context().Done():
	}
}

// join returns the call in flight for token, or a new one it starts.
func (c *Ceiling) join(ctx context.Context, token string) *ceilingCall {
	c.mu.Lock()
	if call, ok := c.calls[token]; ok {
		c.mu.Unlock()
		return call
	}
	call := &ceilingCall{done: make(chan struct{})}
	c.calls[token] = call
	c.mu.Unlock()

	go func() {
		// Detached from the caller: the others waiting on this call must
		// get its answer even if the first caller leaves.
		call.status, call.body = c.refresh(context.WithoutCancel(ctx), token)
		c.mu.Lock()
		delete(c.calls, token)
		c.mu.Unlock()
		close(call.done)
	}()
	return call
}

// refresh calls GitHub once and builds flashauth's answer.
func (c *Ceiling) refresh(ctx context.Context, token string) (int, []byte) {
	form := url.Values{"client_id": {c.clientID}, "client_secret": {c.secret},
		"grant_type": {"refresh_token"}, "refresh_token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return errorBody(http.StatusInternalServerError, "INTERNAL_ERROR")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return errorBody(http.StatusServiceUnavailable, "UPSTREAM_UNAVAILABLE")
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return errorBody(http.StatusServiceUnavailable, "UPSTREAM_UNAVAILABLE")
	}
	var gh struct {
		AccessToken           string `json:"access_token"`
		RefreshToken          string `json:"refresh_token"`
		ExpiresIn             int64  `json:"expires_in"`
		RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in"`
		TokenType             string `json:"token_type"`
		Scope                 string `json:"scope"`
		Error                 string `json:"error"`
	}
	switch {
	case json.Unmarshal(raw, &gh) != nil:
		return errorBody(http.StatusBadGateway, "UPSTREAM_BAD_RESPONSE")
	case gh.Error == "bad_refresh_token":
		return errorBody(http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
	case gh.Error != "" || gh.AccessToken == "":
		return errorBody(http.StatusBadGateway, "UPSTREAM_BAD_RESPONSE")
	}
	if gh.RefreshToken == "" {
		gh.RefreshToken = token
	}
	now := time.Now()
	at := func(sec int64) int64 {
		if sec <= 0 {
			return 0
		}
		return now.Add(time.Duration(sec) * time.Second).UnixMilli()
	}
	body, err := json.Marshal(map[string]any{
		"success": true, "token": gh.AccessToken, "accessToken": gh.AccessToken,
		"refreshToken": gh.RefreshToken, "expiresAt": at(gh.ExpiresIn), "expiresIn": gh.ExpiresIn,
		"refreshTokenExpiresAt": at(gh.RefreshTokenExpiresIn), "tokenType": gh.TokenType, "scope": gh.Scope,
	})
	if err != nil {
		return errorBody(http.StatusInternalServerError, "INTERNAL_ERROR")
	}
	return http.StatusOK, body
}

func errorBody(status int, code string) (int, []byte) {
	var b bytes.Buffer
	b.WriteString(`{"success":false,"error_code":"`)
	b.WriteString(code)
	b.WriteString(`","message":"`)
	b.WriteString(strings.ToLower(strings.ReplaceAll(code, "_", " ")))
	b.WriteString(`"}`)
	return status, b.Bytes()
}

func (c *Ceiling) fail(w http.ResponseWriter, status int, code string) {
	_, body := errorBody(status, code)
	c.write(w, status, body)
}

func (c *Ceiling) write(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
