package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// CheckURL accepts an http(s) URL whose host is on the loopback interface
// (localhost, 127.0.0.0/8, ::1), or any http(s) URL when allowRemote is set.
func CheckURL(raw string, allowRemote bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("loadgen: %q is not an http(s) URL", raw)
	}
	if allowRemote {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("loadgen: refusing %q: not a loopback address (pass -allow-remote to load a remote host)", raw)
}

// outcome is one answer, reduced to what the report needs.
type outcome struct {
	status       int    // 0: no HTTP answer
	code         string // error_code, or GitHub's error
	refreshToken string // the rotated GitHub or session refresh token
	sessionToken string // a sign-in's session refresh token
	errText      string // transport error, never holding a token
}

func (o outcome) key() string {
	switch {
	case o.status == 0:
		return "transport error"
	case o.code != "":
		return strconv.Itoa(o.status) + " " + o.code
	}
	return strconv.Itoa(o.status)
}

// refresh is POST /auth/github/refresh (flashauth and the ceiling proxy).
func (r *runner) refresh(ctx context.Context, target, token string) outcome {
	return r.postJSON(ctx, target+"/auth/github/refresh", map[string]string{"refresh_token": token})
}

// sessionRefresh is POST /user/refresh.
func (r *runner) sessionRefresh(ctx context.Context, target, token string) outcome {
	return r.postJSON(ctx, target+"/user/refresh", map[string]string{"refresh_token": token})
}

// exchange is POST /auth/github with a code the emulator minted.
func (r *runner) exchange(ctx context.Context, target, code string) outcome {
	return r.postJSON(ctx, target+"/auth/github", map[string]string{"code": code})
}

// signIn mints a code for login and exchanges it at target.
func (r *runner) signIn(ctx context.Context, target, login string) outcome {
	code, err := r.loginCode(ctx, login)
	if err != nil {
		return outcome{errText: err.Error()}
	}
	return r.exchange(ctx, target, code)
}

// postJSON posts body to u and decodes flashauth's answer.
func (r *runner) postJSON(ctx context.Context, u string, body any) outcome {
	b, err := json.Marshal(body)
	if err != nil {
		return outcome{errText: "encode request: " + err.Error()}
	}
	status, raw, errText := r.send(ctx, u, "application/json", b)
	if status == 0 {
		return outcome{errText: errText}
	}
	var ans struct {
		RefreshToken string `json:"refreshToken"`
		ErrorCode    string `json:"error_code"`
		AuthState    *struct {
			SessionRefreshToken string `json:"sessionRefreshToken"`
		} `json:"authState"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return outcome{status: status, code: "NOT_JSON"}
	}
	out := outcome{status: status, code: ans.ErrorCode, refreshToken: ans.RefreshToken}
	if ans.AuthState != nil {
		out.sessionToken = ans.AuthState.SessionRefreshToken
	}
	return out
}

// direct refreshes token at the GitHub token endpoint of target, as
// flashauth does: form body with the client credentials, JSON answer.
func (r *runner) direct(ctx context.Context, target, token string) outcome {
	form := url.Values{
		"client_id": {r.cfg.ClientID}, "client_secret": {r.cfg.ClientSecret},
		"grant_type": {"refresh_token"}, "refresh_token": {token},
	}
	status, raw, errText := r.send(ctx, target+"/login/oauth/access_token", "application/x-www-form-urlencoded", []byte(form.Encode()))
	if status == 0 {
		return outcome{errText: errText}
	}
	var ans struct {
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return outcome{status: status, code: "NOT_JSON"}
	}
	return outcome{status: status, code: ans.Error, refreshToken: ans.RefreshToken}
}

// send posts body and returns the status and at most 64 KiB of the answer;
// status 0 and a text without the body or any token when no answer came.
func (r *runner) send(ctx context.Context, u, contentType string, body []byte) (int, []byte, string) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, "build request: " + err.Error()
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		// *url.Error names the URL, which never carries a token here.
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, nil, "read answer: " + err.Error()
	}
	return resp.StatusCode, raw, ""
}

// mint asks the emulator for a fresh grant of login (created when unknown)
// and returns its refresh token.
func (r *runner) mint(ctx context.Context, login string) (string, error) {
	var g struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := control(ctx, r.cfg.Client, r.cfg.Emulator, http.MethodPost, "/_emulator/grants", map[string]string{"login": login}, &g); err != nil {
		return "", fmt.Errorf("mint a grant: %w", err)
	}
	if g.RefreshToken == "" {
		return "", errors.New("mint a grant: the emulator issues tokens without a refresh token (classic OAuth App tokens): nothing to refresh")
	}
	r.minted.Add(1)
	return g.RefreshToken, nil
}

// loginCode completes a GitHub login of login at the emulator, as a browser
// would on the authorize page, and returns the code.
func (r *runner) loginCode(ctx context.Context, login string) (string, error) {
	var c struct {
		Code string `json:"code"`
	}
	if err := control(ctx, r.cfg.Client, r.cfg.Emulator, http.MethodPost, "/_emulator/login", map[string]string{"login": login}, &c); err != nil {
		return "", fmt.Errorf("mint a code: %w", err)
	}
	if c.Code == "" {
		return "", errors.New("mint a code: the emulator answered no code")
	}
	return c.Code, nil
}

// upstreamCalls returns the emulator's count of token requests of the kind
// the scenario makes: refreshes, or code exchanges for signin.
func (r *runner) upstreamCalls(ctx context.Context) (int64, error) {
	c, err := Calls(ctx, r.cfg.Client, r.cfg.Emulator)
	if r.cfg.Scenario == ScenarioSignin {
		return c.TokenCode, err
	}
	return c.TokenRefresh, err
}

// EmulatorCalls is the emulator's GET /_emulator/calls.
type EmulatorCalls struct {
	TokenRefresh int64 `json:"token_refresh"`
	TokenCode    int64 `json:"token_code"`
	TokenTotal   int64 `json:"token_total"`
}

// Calls reads the emulator's request counters.
func Calls(ctx context.Context, client *http.Client, emulator string) (EmulatorCalls, error) {
	var c EmulatorCalls
	err := control(ctx, client, emulator, http.MethodGet, "/_emulator/calls", nil, &c)
	return c, err
}

// SetLatency sets the emulator's added latency (PUT /_emulator/latency).
func SetLatency(ctx context.Context, client *http.Client, emulator string, ms int64) error {
	var out struct{}
	return control(ctx, client, emulator, http.MethodPut, "/_emulator/latency", map[string]int64{"ms": ms}, &out)
}

// control calls the emulator's control API.
func control(ctx context.Context, client *http.Client, emulator, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultRequestTimeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(emulator, "/")+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New("emulator " + path + " answered " + strconv.Itoa(resp.StatusCode))
	}
	return json.Unmarshal(b, out)
}
