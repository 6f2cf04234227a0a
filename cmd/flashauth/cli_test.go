package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/client"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/logging"
)

// The test binary doubles as the flashauth binary when git runs it as a
// credential helper (TestGitCredentialFill).
func TestMain(m *testing.M) {
	if os.Getenv("FLASHAUTH_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cliServer is a flashauth (real app, SQLite in a temporary directory) in
// front of the GitHub emulator, on the real clock, for the CLI tests.
type cliServer struct {
	URL    string
	emuURL string
	emu    *githubemu.Emulator
}

func newCLIServer(t *testing.T) *cliServer {
	t.Helper()
	const id, secret = "Iv1.clitest", "cli-test-client-secret-0123456789"
	emu := githubemu.New(githubemu.Config{ClientID: id, ClientSecret: secret})
	emuSrv := httptest.NewServer(emu)
	t.Cleanup(func() { emu.Close(); emuSrv.Close() })
	a, err := app.New(context.Background(), app.Config{
		DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "flashauth.db"), ClientID: id, ClientSecret: secret,
		GitHubURL: emuSrv.URL, GitHubAPIURL: emuSrv.URL, ReplayWindow: time.Minute, UpstreamTimeout: 5 * time.Second,
		RefreshAuth: "compat", BreakerFailures: 1000, BreakerCooldown: time.Second, SessionAccessTTL: time.Hour,
		SessionTTL: 720 * time.Hour, ReuseInterval: 10 * time.Second, KeyRotation: 720 * time.Hour,
		SecretKey: []byte(strings.Repeat("s", 32)), Version: "test",
	}, logging.New(io.Discard, "json", 0), flashauth.SystemClock{})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(func() { srv.Close(); a.Close() })
	return &cliServer{URL: srv.URL, emuURL: emuSrv.URL, emu: emu}
}

// cliEnv is the environment of one "machine": its own config directory.
func cliEnv(t *testing.T) map[string]string {
	return map[string]string{"XDG_CONFIG_HOME": t.TempDir(), "HOME": t.TempDir()}
}

// result is what a finished command did.
type result struct {
	err            error
	stdout, stderr string
}

// cli runs one command to its end.
func cli(env map[string]string, stdin string, args ...string) result {
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"flashauth"}, args...), envFrom(env), strings.NewReader(stdin), &out, &errb)
	return result{err, out.String(), errb.String()}
}

// login runs `flashauth login` and does what the user does: opens the
// printed URL, approves at the emulator's page as login, and lets the
// browser follow GitHub's redirect to the CLI's loopback listener. It
// returns the page the browser got there.
func login(t *testing.T, s *cliServer, env map[string]string, loginName string) string {
	t.Helper()
	stderr, lines := newLines(t)
	var stdout testkit.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"flashauth", "login", "-server", s.URL}, envFrom(env), nil, &stdout, stderr)
	}()
	authURL := waitLine(t, lines, regexp.MustCompile(`^\s+(http://\S+/login/oauth/authorize\?\S+)$`))[1]
	go func() {
		for lines.Scan() {
		}
	}()
	callback := approveAtEmulator(t, authURL, loginName)
	if u, err := url.Parse(callback); err != nil || u.Hostname() != "127.0.0.1" || u.Path != callbackPath {
		t.Fatalf("GitHub redirected to %s, not to the loopback listener", callback)
	}
	resp, err := http.Get(callback)
	if err != nil {
		t.Fatalf("the browser's visit to the loopback callback: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := <-done; err != nil {
		t.Fatalf("login: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Signed in") {
		t.Fatalf("callback page: %d %s", resp.StatusCode, page)
	}
	if want := "Signed in to " + s.URL + " as " + loginName + "@"; !strings.HasPrefix(stdout.String(), want) {
		t.Fatalf("login printed %q, want %q...", stdout.String(), want)
	}
	return string(page)
}

// approveAtEmulator opens the authorize page, approves as loginName and
// returns where GitHub redirects the browser.
func approveAtEmulator(t *testing.T, authURL, loginName string) string {
	t.Helper()
	page, err := http.Get(authURL)
	if err != nil || page.StatusCode != http.StatusOK {
		t.Fatalf("emulator authorize page: %v %v", err, page)
	}
	page.Body.Close()
	u, _ := url.Parse(authURL)
	form := u.Query()
	form.Set("login", loginName)
	form.Set("action", "approve")
	u.RawQuery = ""
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.PostForm(u.String(), form)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("approve: %v %v", err, resp)
	}
	resp.Body.Close()
	return resp.Header.Get("Location")
}

// state reads the session file of env.
func state(t *testing.T, env map[string]string) (*cliState, string) {
	t.Helper()
	path, err := statePath(envFrom(env))
	if err != nil {
		t.Fatal(err)
	}
	st, err := loadState(path)
	if err != nil {
		t.Fatalf("session file: %v", err)
	}
	return st, path
}

// editState changes the session file of env.
func editState(t *testing.T, env map[string]string, change func(*cliState)) {
	t.Helper()
	path, _ := statePath(envFrom(env))
	if err := updateState(path, change); err != nil {
		t.Fatal(err)
	}
}

// secretsOf lists the tokens a session file holds.
func secretsOf(st *cliState) []string {
	return []string{st.Session.AccessToken, st.Session.RefreshToken, st.GitHub.AccessToken, st.GitHub.RefreshToken}
}

// checkClean fails when r leaks one of secrets in its error or stderr, or
// its error is not one line.
func checkClean(t *testing.T, r result, secrets ...string) {
	t.Helper()
	if r.err != nil && strings.Contains(r.err.Error(), "\n") {
		t.Errorf("error is not one line: %q", r.err)
	}
	all := r.stderr
	if r.err != nil {
		all += r.err.Error()
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(all, s) {
			t.Errorf("a token leaked into the error or stderr: %q", all)
		}
	}
	testkit.NoTokenShaped(t, "the CLI's error or stderr", all)
}

func githubUserStatus(t *testing.T, s *cliServer, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.emuURL+"/user", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", "cli-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// login stores the session 0600 in the config dir; github-token prints the
// stored token while it is valid, and refreshes it through flashauth (once,
// storing the rotated pair) when it is not.
func TestCLILoginAndGitHubToken(t *testing.T) {
	s := newCLIServer(t)
	env := cliEnv(t)
	login(t, s, env, "octocat")

	st, path := state(t, env)
	if want := filepath.Join(env["XDG_CONFIG_HOME"], "flashauth", "session.json"); path != want {
		t.Errorf("session file at %s, want %s", path, want)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session file mode: %v %v", fi.Mode(), err)
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Errorf("session directory mode %v, want 0700", di.Mode().Perm())
	}
	if st.Server != s.URL || st.User.Email != "octocat@example.com" || st.Session.ID == "" ||
		st.Session.AccessTokenExpiry.Before(time.Now()) || !strings.HasPrefix(st.GitHub.AccessToken, "ghu_") ||
		!strings.HasPrefix(st.GitHub.RefreshToken, "ghr_") || st.GitHub.Expiry.Before(time.Now().Add(7*time.Hour)) {
		t.Fatalf("stored state: server %q user %+v session %q expiries %v %v", st.Server, st.User, st.Session.ID, st.Session.AccessTokenExpiry, st.GitHub.Expiry)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".session-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	s.emu.ResetCalls()
	r := cli(env, "", "github-token")
	if r.err != nil || r.stdout != st.GitHub.AccessToken+"\n" {
		t.Fatalf("github-token with a valid token: %v", r.err)
	}
	if n := s.emu.Calls().TokenRefresh; n != 0 {
		t.Fatalf("a valid token was refreshed (%d calls)", n)
	}

	editState(t, env, func(st *cliState) { st.GitHub.Expiry = time.Now().Add(-time.Minute) })
	r = cli(env, "", "github-token")
	checkClean(t, r, secretsOf(st)...)
	if r.err != nil {
		t.Fatalf("github-token with an expired token: %v", r.err)
	}
	after, _ := state(t, env)
	if n := s.emu.Calls().TokenRefresh; n != 1 {
		t.Fatalf("GitHub saw %d refreshes, want 1", n)
	}
	if r.stdout != after.GitHub.AccessToken+"\n" || after.GitHub.AccessToken == st.GitHub.AccessToken ||
		after.GitHub.RefreshToken == st.GitHub.RefreshToken || after.GitHub.Expiry.Before(time.Now().Add(7*time.Hour)) {
		t.Fatalf("the printed token is not the stored rotated pair")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("the rewritten file has mode %v", fi.Mode().Perm())
	}
	if githubUserStatus(t, s, after.GitHub.AccessToken) != http.StatusOK || githubUserStatus(t, s, st.GitHub.AccessToken) != http.StatusUnauthorized {
		t.Errorf("the new token must work at GitHub and the old one not")
	}
}

// The git credential helper protocol: key=value lines in, username and
// password out for https on the configured host, nothing otherwise; erase
// of our token makes the next get refresh it.
func TestCLICredentialHelper(t *testing.T) {
	s := newCLIServer(t)
	env := cliEnv(t)
	login(t, s, env, "octocat")
	st, _ := state(t, env)

	get := "protocol=https\nhost=github.com\npath=octocat/hello.git\nwwwauth[]=Basic realm=\"GitHub\"\n\n"
	r := cli(env, get, "github-token", "credential", "get")
	want := fmt.Sprintf("username=x-access-token\npassword=%s\npassword_expiry_utc=%d\n", st.GitHub.AccessToken, st.GitHub.Expiry.Unix())
	if r.err != nil || r.stdout != want {
		t.Fatalf("get: %v\n%q", r.err, r.stdout)
	}

	rows := []struct{ name, stdin string }{
		{"other host", "protocol=https\nhost=gitlab.com\n\n"},
		{"plain http", "protocol=http\nhost=github.com\n\n"},
		{"no host", "protocol=https\n"},
		{"empty input", ""},
	}
	for _, tc := range rows {
		if r := cli(env, tc.stdin, "github-token", "credential", "get"); r.err != nil || r.stdout != "" {
			t.Errorf("%s: answered %q, %v; want nothing", tc.name, r.stdout, r.err)
		}
	}
	// -host selects another host (GitHub Enterprise).
	if r := cli(env, "protocol=https\nhost=ghe.example\n", "github-token", "credential", "-host", "ghe.example", "get"); r.err != nil || !strings.Contains(r.stdout, "password=") {
		t.Errorf("-host: %q %v", r.stdout, r.err)
	}
	// An empty -host is refused, not a match for input without a host.
	if r := cli(env, "protocol=https\n\n", "github-token", "credential", "-host", "", "get"); r.err == nil || r.stdout != "" {
		t.Errorf("-host '': answered %q, %v; want an error and nothing", r.stdout, r.err)
	}
	// store and unknown operations read their input and say nothing.
	for _, op := range []string{"store", "frobnicate"} {
		if r := cli(env, get+"username=x-access-token\npassword=whatever\n", "github-token", "credential", op); r.err != nil || r.stdout != "" {
			t.Errorf("%s: %q %v", op, r.stdout, r.err)
		}
	}
	// Input that is not key=value is refused without quoting it.
	r = cli(env, "protocol=https\nghu_notaline\n", "github-token", "credential", "get")
	if r.err == nil || strings.Contains(r.err.Error(), "ghu_notaline") || r.stdout != "" {
		t.Errorf("malformed input: %v %q", r.err, r.stdout)
	}

	// erase of another password changes nothing; of ours, forces a refresh.
	s.emu.ResetCalls()
	if r := cli(env, "protocol=https\nhost=github.com\nusername=x\npassword=someone-elses\n", "github-token", "credential", "erase"); r.err != nil {
		t.Fatal(r.err)
	}
	if r := cli(env, get, "github-token", "credential", "get"); r.stdout != want {
		t.Fatalf("erase of a foreign password changed the answer")
	}
	if r := cli(env, "protocol=https\nhost=github.com\nusername=x-access-token\npassword="+st.GitHub.AccessToken+"\n", "github-token", "credential", "erase"); r.err != nil {
		t.Fatal(r.err)
	}
	r = cli(env, get, "github-token", "credential", "get")
	after, _ := state(t, env)
	if r.err != nil || !strings.Contains(r.stdout, "password="+after.GitHub.AccessToken+"\n") || after.GitHub.AccessToken == st.GitHub.AccessToken || s.emu.Calls().TokenRefresh != 1 {
		t.Fatalf("get after erase: %v, %d refreshes", r.err, s.emu.Calls().TokenRefresh)
	}
}

// git itself, configured with the flashauth binary as credential helper,
// gets the token: `git credential fill`.
func TestGitCredentialFill(t *testing.T) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	if runtime.GOOS == "windows" {
		t.Skip("the helper command line is a POSIX shell command")
	}
	s := newCLIServer(t)
	env := cliEnv(t)
	login(t, s, env, "octocat")
	st, _ := state(t, env)

	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	// The documented form: an absolute path, which git runs verbatim
	// (through the shell) with the operation appended. A path the shell
	// would split needs the "!" form.
	helper := self + " github-token credential"
	if !regexp.MustCompile(`^[A-Za-z0-9_./-]+$`).MatchString(self) {
		helper = "!" + shellQuote(self) + " github-token credential"
	}
	cmd := exec.Command(gitPath, "-c", "credential.helper=", "-c", "credential.helper="+helper, "credential", "fill")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + env["HOME"], "XDG_CONFIG_HOME=" + env["XDG_CONFIG_HOME"],
		"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "FLASHAUTH_TEST_RUN_MAIN=1",
	}
	cmd.Stdin = strings.NewReader("protocol=https\nhost=github.com\npath=octocat/hello.git\n\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git credential fill: %v\n%s", err, stderr.String())
	}
	want := "protocol=https\nhost=github.com\nusername=x-access-token\npassword=" + st.GitHub.AccessToken + "\n"
	if got := stdout.String(); got != want && got != strings.Replace(want, "host=github.com\n", "host=github.com\npath=octocat/hello.git\n", 1) {
		t.Fatalf("git credential fill answered:\n%s\nwant:\n%s", got, want)
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// sessions lists, refreshing an expired access token; revoke ends another
// device's session; logout ends this one and deletes the file.
func TestCLISessionsRevokeLogout(t *testing.T) {
	s := newCLIServer(t)
	laptop, desktop := cliEnv(t), cliEnv(t)
	login(t, s, laptop, "octocat")
	login(t, s, desktop, "octocat")
	lst, _ := state(t, laptop)
	dst, dpath := state(t, desktop)

	r := cli(laptop, "", "sessions")
	if r.err != nil {
		t.Fatalf("sessions: %v", r.err)
	}
	rows := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(rows) != 3 || !strings.HasPrefix(rows[0], "ID") || !regexp.MustCompile(`^`+lst.Session.ID+`\s+\*\s`).MatchString(rows[2]) ||
		!strings.HasPrefix(rows[1], dst.Session.ID+" ") || !strings.Contains(r.stdout, "flashauth-cli on") {
		t.Fatalf("sessions printed:\n%s", r.stdout)
	}

	// An expired access token is renewed with /user/refresh, and stored.
	editState(t, laptop, func(st *cliState) { st.Session.AccessTokenExpiry = time.Now().Add(-time.Minute) })
	if r := cli(laptop, "", "sessions"); r.err != nil || !strings.Contains(r.stdout, lst.Session.ID) {
		t.Fatalf("sessions with an expired access token: %v", r.err)
	}
	renewed, _ := state(t, laptop)
	if renewed.Session.RefreshToken == lst.Session.RefreshToken || renewed.Session.AccessToken == lst.Session.AccessToken ||
		renewed.Session.ID != lst.Session.ID || renewed.Session.AccessTokenExpiry.Before(time.Now()) {
		t.Fatalf("the session was not refreshed and stored")
	}
	// A stored access token the server no longer accepts is renewed too.
	editState(t, laptop, func(st *cliState) { st.Session.AccessToken = "not-a-jwt" })
	if r := cli(laptop, "", "sessions"); r.err != nil {
		t.Fatalf("sessions with a rejected access token: %v", r.err)
	}

	if r := cli(laptop, "", "sessions", "revoke", dst.Session.ID); r.err != nil || r.stdout != "Revoked session "+dst.Session.ID+".\n" {
		t.Fatalf("revoke: %v %q", r.err, r.stdout)
	}
	if r := cli(laptop, "", "sessions"); strings.Contains(r.stdout, dst.Session.ID) || r.err != nil {
		t.Fatalf("the revoked session is still listed: %v\n%s", r.err, r.stdout)
	}
	if r := cli(laptop, "", "sessions", "revoke", "no-such-session"); r.err == nil || !strings.Contains(r.err.Error(), "no session") {
		t.Errorf("revoking an unknown id: %v", r.err)
	}

	// The revoked device cannot refresh its session any more, and says so.
	editState(t, desktop, func(st *cliState) { st.Session.AccessTokenExpiry = time.Time{} })
	r = cli(desktop, "", "sessions")
	checkClean(t, r, secretsOf(dst)...)
	if r.err == nil || !strings.Contains(r.err.Error(), "flashauth login") {
		t.Errorf("sessions of a revoked device: %v", r.err)
	}
	// Its logout still succeeds and removes the file.
	if r := cli(desktop, "", "logout"); r.err != nil || r.stdout != "Signed out.\n" {
		t.Fatalf("logout of a revoked session: %v", r.err)
	}
	if _, err := os.Stat(dpath); !os.IsNotExist(err) {
		t.Errorf("logout left the session file")
	}

	// logout ends the session at the server.
	final, lpath := state(t, laptop)
	if r := cli(laptop, "", "logout"); r.err != nil {
		t.Fatalf("logout: %v", r.err)
	}
	if _, err := os.Stat(lpath); !os.IsNotExist(err) {
		t.Errorf("logout left the session file")
	}
	c, _ := client.New(s.URL)
	if _, err := c.RefreshSession(context.Background(), final.Session.RefreshToken); !client.IsReauthRequired(err) {
		t.Errorf("the logged-out session still refreshes: %v", err)
	}
	r = cli(laptop, "", "sessions")
	if r.err == nil || !strings.Contains(r.err.Error(), "not signed in") {
		t.Errorf("sessions after logout: %v", r.err)
	}
}

// Signing in again on the same machine replaces its session: the old one
// is ended, not left behind.
func TestCLILoginAgainEndsThePreviousSession(t *testing.T) {
	s := newCLIServer(t)
	env := cliEnv(t)
	login(t, s, env, "octocat")
	first, _ := state(t, env)
	login(t, s, env, "octocat")
	second, _ := state(t, env)
	c, _ := client.New(s.URL)
	if _, err := c.RefreshSession(context.Background(), first.Session.RefreshToken); !client.IsReauthRequired(err) {
		t.Errorf("the replaced session still refreshes: %v", err)
	}
	list, err := c.Sessions(context.Background(), second.Session.AccessToken)
	if err != nil || len(list) != 1 || list[0].ID != second.Session.ID {
		t.Errorf("sessions after a second login: %v %+v", err, list)
	}
}

// Revoking this very session signs this machine out.
func TestCLIRevokeOwnSession(t *testing.T) {
	s := newCLIServer(t)
	env := cliEnv(t)
	login(t, s, env, "octocat")
	st, path := state(t, env)
	r := cli(env, "", "sessions", "revoke", st.Session.ID)
	if r.err != nil || !strings.Contains(r.stdout, "signed out") {
		t.Fatalf("revoke own session: %v %q", r.err, r.stdout)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the session file is still there")
	}
}

// Failures are one line on stderr's behalf (run's error) and never carry a
// token.
func TestCLIErrors(t *testing.T) {
	s := newCLIServer(t)
	env := cliEnv(t)

	rows := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"login without server", env, []string{"login"}, "FLASHAUTH_URL"},
		{"login with a bad server", env, []string{"login", "-server", "ftp://x"}, "http"},
		{"login over plain http to another host", env, []string{"login", "-server", "http://auth.example.com"}, "in clear"},
		{"login over plain http to a LAN address", env, []string{"login", "-server", "http://10.0.0.5:8080"}, "in clear"},
		{"token before login", env, []string{"github-token"}, "not signed in"},
		{"sessions before login", env, []string{"sessions"}, "not signed in"},
		{"logout before login", env, []string{"logout"}, "not signed in"},
		{"revoke without id", env, []string{"sessions", "revoke"}, "session id"},
		{"no config dir", map[string]string{}, []string{"github-token"}, "HOME"},
		{"relative XDG_CONFIG_HOME", map[string]string{"XDG_CONFIG_HOME": "rel"}, []string{"github-token"}, "relative"},
		{"credential without op", env, []string{"github-token", "credential"}, "operation"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS != "linux" && strings.Contains(tc.name, "config") {
				t.Skip("config dir rules differ on this OS")
			}
			r := cli(tc.env, "", tc.args...)
			if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", r.err, tc.want)
			}
			checkClean(t, r)
		})
	}

	// A session file others can read is refused.
	login(t, s, env, "octocat")
	st, path := state(t, env)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	r := cli(env, "", "github-token")
	if r.err == nil || !strings.Contains(r.err.Error(), "chmod 600") || r.stdout != "" {
		t.Errorf("a world-readable session file was used: %v", r.err)
	}
	checkClean(t, r, secretsOf(st)...)
	_ = os.Chmod(path, 0o600)

	// A dead GitHub refresh token: one line, no token, sign in again.
	s.emu.RevokeGrant(st.GitHub.RefreshToken)
	editState(t, env, func(st *cliState) { st.GitHub.Expiry = time.Now().Add(-time.Minute) })
	r = cli(env, "", "github-token")
	checkClean(t, r, secretsOf(st)...)
	if r.err == nil || !strings.Contains(r.err.Error(), "INVALID_REFRESH_TOKEN") || !strings.Contains(r.err.Error(), "flashauth login") || r.stdout != "" {
		t.Errorf("dead refresh token: %v", r.err)
	}

	// A damaged file is named, not quoted.
	if err := os.WriteFile(path, []byte(`{"server": "`+st.Session.RefreshToken), 0o600); err != nil {
		t.Fatal(err)
	}
	r = cli(env, "", "sessions")
	checkClean(t, r, secretsOf(st)...)
	if r.err == nil || !strings.Contains(r.err.Error(), "damaged") {
		t.Errorf("damaged file: %v", r.err)
	}
}

// The browser's visit with GitHub's refusal ends login with GitHub's
// reason; a visit with a foreign state is turned away and login keeps
// waiting.
func TestCLILoginRefusedAndForeignState(t *testing.T) {
	s := newCLIServer(t)
	env := cliEnv(t)
	stderr, lines := newLines(t)
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"flashauth", "login", "-server", s.URL}, envFrom(env), nil, io.Discard, stderr)
	}()
	authURL := waitLine(t, lines, regexp.MustCompile(`^\s+(http://\S+/login/oauth/authorize\?\S+)$`))[1]
	go func() {
		for lines.Scan() {
		}
	}()
	u, _ := url.Parse(authURL)
	redirect := u.Query().Get("redirect_uri")

	resp, err := http.Get(redirect + "?code=stolen&state=not-the-state")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a foreign state got %d", resp.StatusCode)
	}
	select {
	case err := <-done:
		t.Fatalf("login ended on a foreign state: %v", err)
	default:
	}

	// The user presses Cancel at GitHub.
	form := u.Query()
	form.Set("action", "deny")
	u.RawQuery = ""
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.PostForm(u.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb, err := http.Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(cb.Body)
	cb.Body.Close()
	err = <-done
	if err == nil || !strings.Contains(err.Error(), "denied") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("login after a denial: %v", err)
	}
	if cb.StatusCode != http.StatusBadRequest || !strings.Contains(string(page), "denied") {
		t.Errorf("the browser's page after a denial: %d %s", cb.StatusCode, page)
	}
	if path, _ := statePath(envFrom(env)); fileExists(path) {
		t.Errorf("a refused login stored a session")
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// The config directory follows os.UserConfigDir's rules, read through getenv.
func TestConfigDir(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("XDG rules apply on Linux")
	}
	rows := []struct {
		env     map[string]string
		want    string
		wantErr bool
	}{
		{map[string]string{"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/home/u"}, "/x/cfg", false},
		{map[string]string{"HOME": "/home/u"}, "/home/u/.config", false},
		{map[string]string{"XDG_CONFIG_HOME": "cfg"}, "", true},
		{map[string]string{}, "", true},
	}
	for _, tc := range rows {
		got, err := configDir(envFrom(tc.env))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("configDir(%v) = %q, %v; want %q (error %v)", tc.env, got, err, tc.want, tc.wantErr)
		}
	}
}

// What the CLI prints about sessions comes partly from others: another
// device's device info and user agent (whoever signed in with the account,
// a thief included) and GitHub's profile. Terminal control sequences in them
// (ESC ... retitles the window, clears or rewrites the screen) and
// bidirectional overrides must not reach the user's terminal.
func TestCLIOutputHasNoTerminalControls(t *testing.T) {
	s := newCLIServer(t)
	laptop := cliEnv(t)
	login(t, s, laptop, "octocat")

	// Another device signs in to the same account with hostile metadata.
	c, err := client.New(s.URL, client.WithUserAgent("evil\u009b2J\u202eagent"))
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "http://127.0.0.1:1/cb"
	az, err := c.Authorize(context.Background(), client.AuthorizeRequest{RedirectURI: redirect})
	if err != nil {
		t.Fatal(err)
	}
	back, _ := url.Parse(approveAtEmulator(t, az.URL, "octocat"))
	if _, err := c.SignIn(context.Background(), client.SignInRequest{
		Code: back.Query().Get("code"), State: back.Query().Get("state"), RedirectURI: redirect,
		DeviceInfo: json.RawMessage(`{"name":"box\u001b]52;c;cHduZWQ=\u0007\u009b2J\u202egnp.exe","client":"x\u001b[8m"}`),
	}); err != nil {
		t.Fatal(err)
	}

	r := cli(laptop, "", "sessions")
	if r.err != nil {
		t.Fatalf("sessions: %v", r.err)
	}
	if i := strings.IndexFunc(r.stdout, func(c rune) bool {
		return c != '\n' && (unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c))
	}); i >= 0 {
		t.Errorf("sessions printed a control character %q:\n%q", r.stdout[i:], r.stdout)
	}
	if !strings.Contains(r.stdout, "box?]52;c;cHduZWQ=") {
		t.Errorf("the other device is not listed with its controls replaced:\n%s", r.stdout)
	}
}

// The session file holds live tokens: it is not written into a directory
// others can write to (they could delete, swap or pre-create it), and a file
// that belongs to someone else is not believed (it would choose the server
// the tokens go to and the tokens git gets).
func TestSessionFileRefusesSharedPlaces(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix modes")
	}
	st := &cliState{Server: "https://auth.example", Session: client.Session{ID: "s", RefreshToken: "sessionrefresh"}}

	shared := filepath.Join(t.TempDir(), "flashauth")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := writeState(filepath.Join(shared, "session.json"), st); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Errorf("writing into a world-writable directory: %v, want a refusal", err)
	}
	if fileExists(filepath.Join(shared, "session.json")) {
		t.Errorf("the session file was written into a world-writable directory")
	}

	own := filepath.Join(t.TempDir(), "flashauth", "session.json")
	if err := writeState(own, st); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(own); err != nil {
		t.Fatalf("own file: %v", err)
	}
	if os.Getuid() != 0 {
		t.Skip("handing a file to another user needs root")
	}
	if err := os.Chown(own, os.Getuid()+4242, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(own); err == nil || !strings.Contains(err.Error(), "another user") {
		t.Errorf("loading another user's session file: %v, want a refusal", err)
	}
}

// -open hands the server's sign-in URL to the platform's handler, which also
// opens files and runs programs: only an http(s) URL is handed over.
func TestOpenBrowserOnlyWeb(t *testing.T) {
	for _, u := range []string{"file:///etc/passwd", "/usr/bin/xterm", "--help", "javascript:alert(1)", "smb://host/share", "https:///nohost"} {
		if err := openBrowser(u); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
			t.Errorf("openBrowser(%q) = %v, want a refusal before anything runs", u, err)
		}
	}
}

// Every client command answers -h with its usage, exit 0, touching nothing.
func TestCLIHelp(t *testing.T) {
	env := cliEnv(t)
	for _, args := range [][]string{{"sessions", "-h"}, {"logout", "--help"}, {"github-token", "-h"}, {"login", "-h"}} {
		r := cli(env, "", args...)
		if r.err != nil || !strings.Contains(r.stdout+r.stderr, "usage") && !strings.Contains(r.stdout+r.stderr, "Usage") {
			t.Errorf("%v: err %v, output %q; want the usage", args, r.err, r.stdout+r.stderr)
		}
	}
}
