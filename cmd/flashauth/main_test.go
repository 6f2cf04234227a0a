package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/internal/testkit"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestServeConfigErrors(t *testing.T) {
	const secret = "s3cr3t-value-that-must-not-leak"
	base := map[string]string{"GITHUB_CLIENT_ID": "Iv1.x", "GITHUB_CLIENT_SECRET": secret, "FLASHAUTH_SECRET_KEY": strings.Repeat("k", 32)}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	rows := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no client id", map[string]string{"GITHUB_CLIENT_SECRET": secret}, nil, "GITHUB_CLIENT_ID"},
		{"no secret", map[string]string{"GITHUB_CLIENT_ID": "Iv1.x"}, nil, "GITHUB_CLIENT_SECRET"},
		{"secret file missing", with("GITHUB_CLIENT_SECRET", "", "GITHUB_CLIENT_SECRET_FILE", "/nonexistent/secret"), nil, "GITHUB_CLIENT_SECRET_FILE"},
		{"both secrets", with("GITHUB_CLIENT_SECRET_FILE", "/etc/hostname"), nil, "only one"},
		{"bad replay window", with("FLASHAUTH_REPLAY_WINDOW", "sixty"), nil, "FLASHAUTH_REPLAY_WINDOW"},
		{"negative timeout", with("FLASHAUTH_UPSTREAM_TIMEOUT", "-1s"), nil, "FLASHAUTH_UPSTREAM_TIMEOUT"},
		{"bad audit retention", with("FLASHAUTH_AUDIT_RETENTION", "90d"), nil, "FLASHAUTH_AUDIT_RETENTION"},
		{"zero audit retention", base, []string{"-audit-retention", "0s"}, "FLASHAUTH_AUDIT_RETENTION"},
		{"bad policy", with("FLASHAUTH_GITHUB_REFRESH_AUTH", "strict"), nil, "FLASHAUTH_GITHUB_REFRESH_AUTH"},
		{"bad database", with("FLASHAUTH_DATABASE_URL", "mysql://x"), nil, "FLASHAUTH_DATABASE_URL"},
		{"bad github url", with("GITHUB_URL", "github.com"), nil, "GITHUB_URL"},
		{"bad rate", with("FLASHAUTH_RATE_IP", "lots"), nil, "FLASHAUTH_RATE_IP"},
		{"bad proxy", with("FLASHAUTH_TRUSTED_PROXIES", "10.0.0.0/99"), nil, "FLASHAUTH_TRUSTED_PROXIES"},
		{"short secret key", with("FLASHAUTH_SECRET_KEY", "short"), nil, "FLASHAUTH_SECRET_KEY"},
		{"no secret key", with("FLASHAUTH_SECRET_KEY", ""), nil, "FLASHAUTH_SECRET_KEY (or FLASHAUTH_SECRET_KEY_FILE) is required"},
		{"both secret keys", with("FLASHAUTH_SECRET_KEY_FILE", "/etc/hostname"), nil, "only one of FLASHAUTH_SECRET_KEY and FLASHAUTH_SECRET_KEY_FILE"},
		{"secret key file missing", with("FLASHAUTH_SECRET_KEY", "", "FLASHAUTH_SECRET_KEY_FILE", "/nonexistent/key"), nil, "FLASHAUTH_SECRET_KEY_FILE"},
		{"short old secret key", with("FLASHAUTH_SECRET_KEY_OLD", "short"), nil, "FLASHAUTH_SECRET_KEY_OLD"},
		{"tls half", with("FLASHAUTH_TLS_CERT", "/x.pem"), nil, "FLASHAUTH_TLS_KEY"},
		{"flag overrides env", base, []string{"-replay-window", "soon"}, "FLASHAUTH_REPLAY_WINDOW"},
		{"bad log level", with("FLASHAUTH_LOG_LEVEL", "loud"), nil, "FLASHAUTH_LOG_LEVEL"},
		{"relative redirect uri", with("FLASHAUTH_REDIRECT_URIS", "https://app.example/cb,/callback"), nil, "FLASHAUTH_REDIRECT_URIS"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"flashauth", "serve"}, tc.args...)
			err := run(context.Background(), args, envFrom(tc.env), nil, &stdout, &stderr)
			if err == nil {
				t.Fatal("serve started with a bad configuration")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error is more than one line: %q", err)
			}
			all := err.Error() + stdout.String() + stderr.String()
			if strings.Contains(all, secret) {
				t.Errorf("the client secret was printed")
			}
		})
	}
}

func TestHelpDoesNotPrintSecrets(t *testing.T) {
	const secret = "s3cr3t-value-that-must-not-leak"
	var out bytes.Buffer
	err := run(context.Background(), []string{"flashauth", "serve", "-h"},
		envFrom(map[string]string{"GITHUB_CLIENT_SECRET": secret, "FLASHAUTH_SECRET_KEY": strings.Repeat("k", 40)}), nil, &out, &out)
	if err != nil {
		t.Fatalf("serve -h: %v", err)
	}
	if !strings.Contains(out.String(), "GITHUB_CLIENT_SECRET") || strings.Contains(out.String(), secret) || strings.Contains(out.String(), "kkkk") {
		t.Fatalf("help output wrong or leaks a secret:\n%s", out.String())
	}
}

func TestVersionAndUsage(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"flashauth", "version"}, envFrom(nil), nil, &out, &out); err != nil || !strings.HasPrefix(out.String(), "flashauth ") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"flashauth", "frobnicate"}, envFrom(nil), nil, &out, &out); err == nil {
		t.Fatal("unknown command accepted")
	}
	if err := run(context.Background(), []string{"flashauth"}, envFrom(nil), nil, &out, &out); err == nil {
		t.Fatal("no command accepted")
	}
}

// lineWriter hands what a command prints to the test line by line.
type lineWriter struct {
	pw *io.PipeWriter
	mu sync.Mutex
}

func newLines(t *testing.T) (*lineWriter, *bufio.Scanner) {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	return &lineWriter{pw: pw}, bufio.NewScanner(pr)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pw.Write(p)
}

// startCmd runs a subcommand in the background and returns its stdout lines
// and a function that stops it and returns its error.
func startCmd(t *testing.T, args []string, env map[string]string, stderr io.Writer) (*bufio.Scanner, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, lines := newLines(t)
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"flashauth"}, args...), envFrom(env), nil, out, stderr)
		out.pw.Close()
		done <- err
	}()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("command did not stop within 15s of cancellation")
			return nil
		}
	}
	t.Cleanup(func() { cancel() })
	return lines, stop
}

func waitLine(t *testing.T, lines *bufio.Scanner, re *regexp.Regexp) []string {
	t.Helper()
	for lines.Scan() {
		if m := re.FindStringSubmatch(lines.Text()); m != nil {
			return m
		}
	}
	t.Fatalf("no line matching %s", re)
	return nil
}

func TestDevPrintsAWorkingCurl(t *testing.T) {
	var stderr testkit.SyncBuffer
	lines, stop := startCmd(t, []string{"dev"}, map[string]string{"FLASHAUTH_ADDR": "127.0.0.1:0"}, &stderr)
	base := waitLine(t, lines, regexp.MustCompile(`^flashauth listening on (http://\S+)$`))[1]
	emuURL := waitLine(t, lines, regexp.MustCompile(`^GitHub emulator on (http://\S+)$`))[1]
	refreshCmd := waitCommand(t, lines)
	grantsCmd := waitLine(t, lines, regexp.MustCompile(`More tokens: (curl .*)$`))[1]
	signInURL := waitLine(t, lines, regexp.MustCompile(`^\s+(http://\S+/auth/github/authorize\?\S+)$`))[1]
	go func() {
		for lines.Scan() {
		}
	}()
	token := regexp.MustCompile(`"refresh_token": "(ghr_[A-Za-z0-9_]+)"`).FindStringSubmatch(refreshCmd)
	if token == nil || !strings.Contains(refreshCmd, base+"/auth/github/refresh") {
		t.Fatalf("printed command does not refresh a minted token at %s:\n%s", base, refreshCmd)
	}
	// What a person gets by pasting the command into a shell, twice.
	b1, b2 := runPrinted(t, refreshCmd), runPrinted(t, refreshCmd)
	var out struct {
		Success      bool
		RefreshToken string
	}
	if err := json.Unmarshal(b1, &out); err != nil || !out.Success || !bytes.Equal(b1, b2) {
		t.Fatalf("the printed curl does not work and replay:\n%s\n%s", b1, b2)
	}
	if err := json.Unmarshal(runPrinted(t, grantsCmd), &out); err != nil || !strings.HasPrefix(out.RefreshToken, "ghr_") {
		t.Fatalf("the printed grants command does not mint a token: %v %+v", err, out)
	}
	signInSecrets := followDevSignIn(t, base, signInURL)
	// Like github.com, the emulator knows the app's one callback URL.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(emuURL + "/login/oauth/authorize?client_id=Iv1.flashauthdev&redirect_uri=" + url.QueryEscape("http://evil.example/cb"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, emuURL+devCallbackPath+"?") ||
		!strings.Contains(loc, "error=redirect_uri_mismatch") {
		t.Errorf("authorize with a foreign redirect_uri: %d %q, want a redirect_uri_mismatch to the dev callback", resp.StatusCode, loc)
	}
	// `flashauth login` against dev, as docs/cli.md describes: its loopback
	// callback on whatever port is free is one dev's emulator accepts.
	env := cliEnv(t)
	login(t, &cliServer{URL: base}, env, "octocat")
	if r := cli(env, "", "github-token"); r.err != nil || !strings.HasPrefix(r.stdout, "ghu_") {
		t.Fatalf("github-token after login against dev: %v %s", r.err, r.stderr)
	}
	if err := stop(); err != nil {
		t.Fatalf("dev did not exit cleanly: %v", err)
	}
	// dev's log (stdout is what it shows the person, tokens included).
	for _, s := range append(signInSecrets, token[1], out.RefreshToken) {
		if strings.Contains(stderr.String(), s) {
			t.Errorf("dev logged a secret (%d chars, prefix %.4s)", len(s), s)
		}
	}
	testkit.NoTokenShaped(t, "dev's log", stderr.String())
}

// waitCommand returns the next printed curl command, its continuation
// lines joined as a shell joins them.
func waitCommand(t *testing.T, lines *bufio.Scanner) string {
	t.Helper()
	cmd := strings.TrimSuffix(waitLine(t, lines, regexp.MustCompile(`^\s+(curl .*)$`))[1], "\\")
	for strings.HasSuffix(lines.Text(), "\\") && lines.Scan() {
		cmd += " " + strings.TrimSuffix(strings.TrimSpace(lines.Text()), "\\")
	}
	return cmd
}

// runPrinted runs a command dev printed the way a person pasting it would:
// with sh and curl when they exist, else by reading curl's -X, -H and -d
// options (single-quoted, as printed) and sending the request itself.
func runPrinted(t *testing.T, cmd string) []byte {
	t.Helper()
	if _, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command("sh", "-c", cmd).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return out
	}
	m := regexp.MustCompile(`^curl -s -X (\w+) (\S+)((?: -H '[^']*')*) -d '([^']*)'$`).FindStringSubmatch(strings.Join(strings.Fields(cmd), " "))
	if m == nil {
		t.Fatalf("cannot read the printed command: %s", cmd)
	}
	req, err := http.NewRequest(m[1], m[2], strings.NewReader(m[4]))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range regexp.MustCompile(`-H '([^:]+): ([^']*)'`).FindAllStringSubmatch(m[3], -1) {
		req.Header.Set(h[1], h[2])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

// SIGTERM (here: cancellation of run's context, which main wires to the
// signals) stops accepting but lets an in-flight refresh finish and commit.
func TestServeShutdownDrainsInFlight(t *testing.T) {
	emu := githubemu.New(githubemu.Config{ClientID: "Iv1.t", ClientSecret: "sek"})
	emuSrv := httptest.NewServer(emu)
	t.Cleanup(func() { emu.Close(); emuSrv.Close() })
	u := emu.AddUser(githubemu.User{Login: "a"})
	g, err := emu.MintGrant(u.ID)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"FLASHAUTH_ADDR": "127.0.0.1:0", "FLASHAUTH_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "db"),
		"GITHUB_CLIENT_ID": "Iv1.t", "GITHUB_CLIENT_SECRET": "sek", "GITHUB_URL": emuSrv.URL, "GITHUB_API_URL": emuSrv.URL,
		"FLASHAUTH_SECRET_KEY": strings.Repeat("k", 32),
	}
	var stderr testkit.SyncBuffer
	lines, stop := startCmd(t, []string{"serve"}, env, &stderr)
	base := waitLine(t, lines, regexp.MustCompile(`^flashauth listening on (http://\S+)$`))[1]

	emu.SetLatency(500 * time.Millisecond)
	type result struct {
		status int
		body   []byte
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Post(base+"/auth/github/refresh", "application/json", strings.NewReader(`{"refresh_token":"`+g.RefreshToken+`"}`))
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		res <- result{status: resp.StatusCode, body: b}
	}()
	for deadline := time.Now().Add(5 * time.Second); emu.Calls().TokenRefresh == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the refresh never reached GitHub")
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	r := <-res
	if r.err != nil || r.status != 200 {
		t.Fatalf("in-flight refresh during shutdown: %v %d %s", r.err, r.status, r.body)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil || body["success"] != true {
		t.Fatalf("body: %s", r.body)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still accepting after shutdown")
	}

	// Restarted on the same database, the old token replays what was committed.
	emu.SetLatency(0)
	lines, stop = startCmd(t, []string{"serve"}, env, &stderr)
	base = waitLine(t, lines, regexp.MustCompile(`^flashauth listening on (http://\S+)$`))[1]
	resp, err := http.Post(base+"/auth/github/refresh", "application/json", strings.NewReader(`{"refresh_token":"`+g.RefreshToken+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(b, r.body) || emu.Calls().TokenRefresh != 1 {
		t.Fatalf("replay after restart: identical=%v upstream=%d", bytes.Equal(b, r.body), emu.Calls().TokenRefresh)
	}
	_ = stop()
	if strings.Contains(stderr.String(), g.RefreshToken) || strings.Contains(stderr.String(), "sek\"") {
		t.Fatal("a secret reached the logs")
	}
	testkit.NoTokenShaped(t, "serve's log", stderr.String())
}

// followDevSignIn does what a person does with the printed sign-in URL:
// opens it, approves at the emulator's page, lands on the dev callback page
// and runs the request it shows. It returns the code it used and the
// tokens the sign-in answered.
func followDevSignIn(t *testing.T, base, signInURL string) []string {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(signInURL)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-in URL: %v %v", err, resp)
	}
	resp.Body.Close()
	authorize, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	page, err := http.Get(authorize.String())
	if err != nil || page.StatusCode != 200 {
		t.Fatalf("emulator authorize page: %v %v", err, page)
	}
	page.Body.Close()
	form := authorize.Query()
	form.Set("login", "octocat")
	form.Set("action", "approve")
	authorize.RawQuery = ""
	resp, err = noFollow.PostForm(authorize.String(), form)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("approve: %v %v", err, resp)
	}
	resp.Body.Close()
	cb, err := http.Get(resp.Header.Get("Location"))
	if err != nil || cb.StatusCode != 200 {
		t.Fatalf("dev callback page: %v %v", err, cb)
	}
	html, _ := io.ReadAll(cb.Body)
	cb.Body.Close()
	m := regexp.MustCompile(`-d '(\{.*\})'`).FindStringSubmatch(strings.ReplaceAll(string(html), "&#34;", `"`))
	if m == nil {
		t.Fatalf("callback page shows no request:\n%s", html)
	}
	var body struct{ Code string }
	_ = json.Unmarshal([]byte(m[1]), &body)
	signIn, err := http.Post(base+"/auth/github", "application/json", strings.NewReader(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer signIn.Body.Close()
	var out struct {
		Success   bool
		AuthState struct {
			User                                                  struct{ Email string }
			Token, AccessToken, RefreshToken, SessionRefreshToken string
		}
	}
	if err := json.NewDecoder(signIn.Body).Decode(&out); err != nil || signIn.StatusCode != 200 || !out.Success ||
		out.AuthState.User.Email != "octocat@example.com" || out.AuthState.Token == "" {
		t.Fatalf("sign-in with the callback page's request: %d %+v %v", signIn.StatusCode, out, err)
	}
	st := out.AuthState
	return []string{body.Code, st.Token, st.AccessToken, st.RefreshToken, st.SessionRefreshToken}
}

// `flashauth emulator` serves the emulator out of process: the control API
// mints a grant and the token endpoint refreshes it like GitHub.
func TestEmulatorCommand(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("emu-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr testkit.SyncBuffer
	lines, stop := startCmd(t, []string{"emulator", "-addr", "127.0.0.1:0", "-client-id", "Iv1.cmd"},
		map[string]string{"GITHUB_CLIENT_SECRET_FILE": secretFile}, &stderr)
	base := waitLine(t, lines, regexp.MustCompile(`^GitHub emulator listening on (http://\S+)$`))[1]
	go func() {
		for lines.Scan() {
		}
	}()
	resp, err := http.Post(base+"/_emulator/grants", "application/json", strings.NewReader(`{"login":"cli"}`))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&g)
	resp.Body.Close()
	if !strings.HasPrefix(g.RefreshToken, "ghr_") {
		t.Fatalf("grant: %d %+v", resp.StatusCode, g)
	}
	form := url.Values{"client_id": {"Iv1.cmd"}, "client_secret": {"emu-secret"}, "grant_type": {"refresh_token"}, "refresh_token": {g.RefreshToken}}
	req, _ := http.NewRequest(http.MethodPost, base+"/login/oauth/access_token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if at, _ := tok["access_token"].(string); !strings.HasPrefix(at, "ghu_") {
		t.Fatalf("refresh at the emulator: %v", tok["error"])
	}
	if err := stop(); err != nil {
		t.Fatalf("emulator did not stop cleanly: %v", err)
	}
	if err := run(context.Background(), []string{"flashauth", "emulator"}, envFrom(nil), nil, io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "GITHUB_CLIENT_SECRET") {
		t.Fatalf("emulator without a secret: %v", err)
	}
}

// TestConfigRefusesBeforeOpeningAnything: settings that the GitHub client or
// the HTTP layer would reject later, or silently never match, are refused
// by parseConfig with one line naming the variable and quoting no secret.
func TestConfigRefusesBeforeOpeningAnything(t *testing.T) {
	const password = "hunter2-password"
	base := map[string]string{"GITHUB_CLIENT_ID": "Iv1.x", "GITHUB_CLIENT_SECRET": "sek", "FLASHAUTH_SECRET_KEY": strings.Repeat("k", 32)}
	rows := []struct{ env, value string }{
		{"GITHUB_URL", "https://"},
		{"GITHUB_URL", "https://github.com?x=1"},
		{"GITHUB_URL", "https://github.com/#top"},
		{"GITHUB_API_URL", "https://octo:" + password + "@ghe.example/api/v3"},
		{"GITHUB_API_URL", "https//api.github.com"},
		{"FLASHAUTH_RATE_IP", "NaN"},
		{"FLASHAUTH_RATE_TOKEN", "Inf"},
		{"FLASHAUTH_RATE_USER", "1e400"},
		{"FLASHAUTH_MAX_REFRESHES", "-1"},
		{"FLASHAUTH_MAX_REFRESHES", "many"},
		{"FLASHAUTH_MAX_REFRESHES", "1.5"},
		{"FLASHAUTH_CORS_ORIGINS", "https://app.example/"},
		{"FLASHAUTH_CORS_ORIGINS", "https://app.example, *"},
		{"FLASHAUTH_CORS_ORIGINS", "app.example"},
		{"FLASHAUTH_CORS_ORIGINS", "https://app.example/login"},
		{"FLASHAUTH_CORS_ORIGINS", "https://" + password + "@app.example"},
		{"FLASHAUTH_PUBLIC_URL", "auth.example.com"},
		{"FLASHAUTH_PUBLIC_URL", "https://auth.example.com/?x=1"},
		{"FLASHAUTH_PUBLIC_URL", "https://octo:" + password + "@auth.example.com"},
		{"FLASHAUTH_PUBLIC_URL", "ftp://auth.example.com"},
		// Read at start anyway; unreadable, serve would fail only after listening.
		{"FLASHAUTH_TLS_CERT", filepath.Join(t.TempDir(), "missing.pem")},
	}
	for _, tc := range rows {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			env := map[string]string{tc.env: tc.value}
			if tc.env == "FLASHAUTH_TLS_CERT" {
				env["FLASHAUTH_TLS_KEY"] = tc.value
			}
			for k, v := range base {
				env[k] = v
			}
			_, err := parseConfig(nil, envFrom(env), io.Discard)
			if err == nil {
				t.Fatalf("%s=%q accepted", tc.env, tc.value)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.env+":") || strings.Contains(msg, "\n") || strings.Contains(msg, password) {
				t.Errorf("error %q: want one line starting with %s: and no password", msg, tc.env)
			}
		})
	}
}

func TestConfigAcceptsGoodURLsAndOrigins(t *testing.T) {
	cert, key := selfSignedPair(t)
	env := map[string]string{"GITHUB_CLIENT_ID": "Iv1.x", "GITHUB_CLIENT_SECRET": "sek", "FLASHAUTH_SECRET_KEY": strings.Repeat("k", 32),
		"FLASHAUTH_TLS_CERT": cert, "FLASHAUTH_TLS_KEY": key,
		"GITHUB_URL": "https://ghe.example/", "GITHUB_API_URL": "https://ghe.example/api/v3",
		"FLASHAUTH_CORS_ORIGINS": "https://App.Example, http://localhost:3000", "FLASHAUTH_RATE_IP": "0.5",
		"FLASHAUTH_PUBLIC_URL": "https://auth.example.com/flashauth/"}
	c, err := parseConfig(nil, envFrom(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// Browsers send Origin in lower case; an exact match needs the same.
	if got, want := strings.Join(c.CORSOrigins, " "), "https://app.example http://localhost:3000"; got != want {
		t.Errorf("CORSOrigins = %q, want %q", got, want)
	}
	// jwks_uri is PublicURL + "/.well-known/jwks.json": no double slash.
	if c.GitHubURL != "https://ghe.example/" || c.GitHubAPIURL != "https://ghe.example/api/v3" || c.RateIPPerMinute != 0.5 ||
		c.PublicURL != "https://auth.example.com/flashauth" {
		t.Errorf("config = %+v", c)
	}
}

// The defaults serve runs with are the app's: tests that run "at the
// default configuration" (app) use the same constants.
func TestConfigDefaults(t *testing.T) {
	env := envFrom(map[string]string{"GITHUB_CLIENT_ID": "Iv1.x", "GITHUB_CLIENT_SECRET": "sek", "FLASHAUTH_SECRET_KEY": strings.Repeat("k", 32)})
	c, err := parseConfig(nil, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditRetention != app.DefaultAuditRetention || c.RateIPPerMinute != app.DefaultRateIP ||
		c.RateTokenPerMin != app.DefaultRateToken || c.RateUserPerMin != app.DefaultRateUser {
		t.Errorf("defaults: audit retention %v, rates %v/%v/%v; want the app's %v, %v/%v/%v", c.AuditRetention,
			c.RateIPPerMinute, c.RateTokenPerMin, c.RateUserPerMin,
			app.DefaultAuditRetention, app.DefaultRateIP, app.DefaultRateToken, app.DefaultRateUser)
	}
	if c.MaxRefreshes != app.DefaultMaxRefreshes {
		t.Errorf("MaxRefreshes %d, want the app's default %d", c.MaxRefreshes, app.DefaultMaxRefreshes)
	}
	c, err = parseConfig([]string{"-audit-retention", "720h"}, env, io.Discard)
	if err != nil || c.AuditRetention != 720*time.Hour {
		t.Errorf("-audit-retention 720h: %v, %v", c.AuditRetention, err)
	}
	// 0 lifts the bound.
	for _, args := range [][]string{{"-max-refreshes", "64"}, {"-max-refreshes", "0"}} {
		c, err = parseConfig(args, env, io.Discard)
		if want, _ := strconv.Atoi(args[1]); err != nil || c.MaxRefreshes != want {
			t.Errorf("%v: MaxRefreshes %d, %v", args, c.MaxRefreshes, err)
		}
	}
}

// selfSignedPair writes a certificate and its key as PEM files.
func selfSignedPair(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: pkcs8}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// TestConfigDocTable holds the settings table of docs/configuration.md to
// the code (the README links it): every
// variable it lists exists with the stated default, every setting is in it,
// and each is a flag of serve.
func TestConfigDocTable(t *testing.T) {
	readme, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	defaults := map[string]string{}
	for _, s := range settings {
		defaults[s.env] = s.def
	}
	seen := map[string]bool{}
	code := regexp.MustCompile("`([^`]*)`")
	for line := range strings.SplitSeq(string(readme), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || !strings.Contains(cells[1], "`") || strings.Contains(cells[1], "---") {
			continue
		}
		var names, defs []string
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			names = append(names, m[1])
		}
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			defs = append(defs, m[1])
		}
		for i, name := range names {
			want, ok := defaults[name]
			if !ok {
				t.Errorf("docs/configuration.md lists %s, which is no setting", name)
				continue
			}
			seen[name] = true
			var got string
			switch {
			case len(defs) == len(names):
				got = defs[i]
			case len(defs) == 1:
				got = defs[0]
			}
			if got != want {
				t.Errorf("docs/configuration.md: %s defaults to %q, the code to %q", name, got, want)
			}
		}
	}
	for _, s := range settings {
		if !seen[s.env] {
			t.Errorf("docs/configuration.md does not list %s", s.env)
		}
	}
	var help bytes.Buffer
	if err := run(context.Background(), []string{"flashauth", "serve", "-h"}, envFrom(nil), nil, &help, &help); err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !strings.Contains(help.String(), "-"+flagName(s.env)+" ") || !strings.Contains(help.String(), "$"+s.env+")") {
			t.Errorf("serve -h does not offer -%s ($%s)", flagName(s.env), s.env)
		}
	}
}
