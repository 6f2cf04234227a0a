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
	"time"
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

// mint asks the emulator for a fresh grant of login (created when unknown)
// and returns its refresh token.
func (r *runner) mint(ctx context.Context, login string) (string, error) {
	var g struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := r.control(ctx, http.MethodPost, "/_emulator/grants", map[string]string{"login": login}, &g); err != nil {
		return "", fmt.Errorf("mint a grant: %w", err)
	}
	if g.RefreshToken == "" {
		return "", errors.New("mint a grant: the emulator issues tokens without a refresh token (classic OAuth App tokens): nothing to refresh")
	}
	r.minted.Add(1)
	return g.RefreshToken, nil
}

// mintSet mints a fresh hot set.
func (r *runner) mintSet(ctx context.Context, login string) ([]string, error) {
	set := make([]string, r.cfg.HotTokens)
	for i := range set {
		t, err := r.mint(ctx, login)
		if err != nil {
			return nil, err
		}
		set[i] = t
	}
	return set, nil
}

// rotateHot replaces the hot set every HotPeriod, before flashauth's replay
// window of the current set runs out.
func (r *runner) rotateHot(ctx context.Context) {
	t := time.NewTicker(r.cfg.HotPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if set, err := r.mintSet(ctx, "flashload-hot"); err == nil {
			r.hot.Store(&set)
		}
	}
}

// upstreamCalls returns the emulator's count of refresh requests.
func (r *runner) upstreamCalls(ctx context.Context) (int64, error) {
	var c struct {
		TokenRefresh int64 `json:"token_refresh"`
	}
	err := r.control(ctx, http.MethodGet, "/_emulator/calls", nil, &c)
	return c.TokenRefresh, err
}

// control calls the emulator's control API.
func (r *runner) control(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.cfg.Emulator+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.cfg.Client.Do(req)
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
