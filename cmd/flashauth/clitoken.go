package main

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flashbacktech/flashauth/client"
)

// runGitHubToken prints a valid GitHub access token, refreshing it through
// flashauth when it is about to expire; `github-token credential OP` is the
// git credential helper.
func runGitHubToken(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "credential" {
		return runCredentialHelper(ctx, args[1:], getenv, stdin, stdout, stderr)
	}
	fs := newFlagSet("github-token", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: flashauth github-token\n       flashauth github-token credential get|store|erase [-host HOST]\n\n"+
			"Prints a GitHub access token valid for at least a minute, refreshing it through flashauth\n"+
			"(and storing the rotated pair) when needed. The credential form is a git credential helper\n"+
			"(see docs/cli.md).\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("github-token: unexpected argument %q (did you mean `github-token credential get`?)", fs.Arg(0))
	}
	tok, err := validGitHubToken(ctx, getenv)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok.AccessToken)
	return nil
}

// validGitHubToken loads the session file and returns a GitHub token valid
// for at least a minute, refreshed (and the rotated pair stored) if needed.
func validGitHubToken(ctx context.Context, getenv func(string) string) (client.Token, error) {
	path, st, c, err := signedIn(getenv)
	if err != nil {
		return client.Token{}, err
	}
	save := func(t client.Token) error {
		st.GitHub = t
		return updateState(path, func(s *cliState) { s.GitHub = t })
	}
	// The access JWT rides along as Bearer: servers with the `session`
	// ownership policy require it; others ignore it.
	bearer := func(ctx context.Context) (string, error) {
		tok, err := sessionAccessToken(ctx, c, st, path, false)
		if err != nil {
			return "", nil // without it a `compat` server still refreshes
		}
		return tok, nil
	}
	ts := client.GitHubTokenSource(ctx, c, st.GitHub, save, client.WithSessionToken(bearer))
	tok, err := ts.GitHubToken(ctx)
	if err != nil {
		return client.Token{}, explain("github-token", err)
	}
	if strings.ContainsAny(tok.AccessToken, "\r\n\x00") {
		return client.Token{}, errors.New("github-token: the server answered a malformed token")
	}
	return tok, nil
}

// sessionAccessToken returns a valid flashauth access JWT, refreshing the
// session through POST /user/refresh (and storing the rotation) when the
// stored one has expired, or when force is set.
func sessionAccessToken(ctx context.Context, c *client.Client, st *cliState, path string, force bool) (string, error) {
	if !force && st.Session.AccessToken != "" && time.Now().Add(30*time.Second).Before(st.Session.AccessTokenExpiry) {
		return st.Session.AccessToken, nil
	}
	sess, err := c.RefreshSession(ctx, st.Session.RefreshToken)
	if err != nil {
		return "", err
	}
	if sess.ID == "" {
		sess.ID = st.Session.ID
	}
	st.Session = sess
	if err := updateState(path, func(s *cliState) { s.Session = sess }); err != nil {
		return "", err
	}
	return sess.AccessToken, nil
}

// explain turns errors into the one line the user sees; a dead token says
// what to do about it.
func explain(cmd string, err error) error {
	if client.IsReauthRequired(err) {
		why := ""
		if code := client.Code(err); code != "" {
			why = " (" + code + ")"
		}
		return fmt.Errorf("%s: the stored session can no longer be refreshed%s; sign in again with `flashauth login`", cmd, why)
	}
	return fmt.Errorf("%s: %w", cmd, err)
}

// Bounds of what a credential helper reads from git.
const (
	maxCredentialInput = 64 << 10
	maxCredentialLines = 1000
)

// runCredentialHelper speaks git's credential helper protocol (see
// gitcredentials(7) and git-credential(1), docs/cli.md): git runs the
// helper with one operation argument (get, store or erase) and writes
// key=value lines to its stdin, ended by a blank line or end of file. For
// `get` of an https URL on the configured host the helper answers
// username=x-access-token and password=<GitHub access token>; for anything
// else it answers nothing, so git asks its next helper. store has nothing
// to do; erase, for the token this helper gave out, marks it expired so the
// next get refreshes it.
func runCredentialHelper(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("github-token credential", stderr)
	host := fs.String("host", envOr(getenv, "FLASHAUTH_GIT_HOST", "github.com"), "the git host the token is for ($FLASHAUTH_GIT_HOST)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("github-token credential: want one operation: get, store or erase")
	}
	if *host == "" {
		// An empty host would match a request that names none.
		return errors.New("github-token credential: -host is empty")
	}
	op := fs.Arg(0)
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	attrs, err := readCredential(stdin)
	if err != nil {
		return fmt.Errorf("github-token credential: %w", err)
	}
	ours := attrs["protocol"] == "https" && strings.EqualFold(attrs["host"], *host)
	switch op {
	case "get":
	case "store":
		return nil
	case "erase":
		if ours {
			return eraseCredential(getenv, attrs["password"])
		}
		return nil
	default:
		// git may add operations; a helper ignores those it does not know.
		return nil
	}
	if !ours {
		return nil
	}
	tok, err := validGitHubToken(ctx, getenv)
	if err != nil {
		return err
	}
	out := "username=x-access-token\npassword=" + tok.AccessToken + "\n"
	if !tok.Expiry.IsZero() {
		// git 2.41+ does not reuse a password past this instant.
		out += fmt.Sprintf("password_expiry_utc=%d\n", tok.Expiry.Unix())
	}
	_, err = io.WriteString(stdout, out)
	return err
}

// readCredential reads git's key=value lines up to a blank line or EOF.
// Values are kept as they are (no quoting exists in the protocol); a key
// given more than once (key[] arrays) keeps its last value, enough for the
// keys this helper reads. Lines are never quoted back in errors: they may
// hold a password.
func readCredential(r io.Reader) (map[string]string, error) {
	attrs := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(r, maxCredentialInput))
	sc.Buffer(make([]byte, 0, 4096), maxCredentialInput)
	for n := 0; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			break
		}
		if n >= maxCredentialLines {
			return nil, errors.New("too many lines on stdin")
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d on stdin is not key=value", n+1)
		}
		attrs[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading stdin: %w", err)
	}
	return attrs, nil
}

// eraseCredential marks the stored access token expired when git reports
// that it was rejected, so that the next get refreshes it.
func eraseCredential(getenv func(string) string, password string) error {
	path, err := statePath(getenv)
	if err != nil {
		return err
	}
	st, err := loadState(path)
	if err != nil || password == "" || subtle.ConstantTimeCompare([]byte(password), []byte(st.GitHub.AccessToken)) != 1 {
		return nil // not our token, or nothing stored: nothing to erase
	}
	return updateState(path, func(s *cliState) {
		if s.GitHub.AccessToken == st.GitHub.AccessToken {
			s.GitHub.Expiry = time.Unix(1, 0) // expired: the next get refreshes
		}
	})
}
