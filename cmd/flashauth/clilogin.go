package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/flashbacktech/flashauth/client"
)

// callbackPath is the path of the loopback redirect_uri.
const callbackPath = "/callback"

// runLogin signs in with GitHub through flashauth: it listens on a loopback
// port, asks flashauth for GitHub's authorize URL with that redirect_uri,
// waits for GitHub to send the browser back with code and state, completes
// the sign-in and stores the session.
func runLogin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("login", stderr)
	server := fs.String("server", getenv("FLASHAUTH_URL"), "flashauth base URL ($FLASHAUTH_URL)")
	open := fs.Bool("open", false, "open the sign-in URL in a browser (xdg-open, open or the Windows URL handler)")
	port := fs.Int("port", 0, "loopback port of the callback (0: any free port); a fixed port lets the operator list http://127.0.0.1:PORT/callback in FLASHAUTH_REDIRECT_URIS")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the browser to come back")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("login takes no arguments, got %q", fs.Arg(0))
	}
	if *server == "" {
		return errors.New("login: no server: pass -server URL or set FLASHAUTH_URL")
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("login: -port %d is not a port", *port)
	}
	path, err := statePath(getenv)
	if err != nil {
		return err
	}
	c, err := newCLIClient(*server)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("login: loopback listener: %w", err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + callbackPath

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	az, err := c.Authorize(ctx, client.AuthorizeRequest{RedirectURI: redirect})
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}

	cb := newCallback(az.State)
	srv := &http.Server{Handler: cb, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx) // lets the browser's page be written
	}()

	fmt.Fprintf(stderr, "Open this URL in a browser to sign in with GitHub:\n\n  %s\n\nWaiting for the browser to come back to %s ...\n", az.URL, redirect)
	if *open {
		if err := openBrowser(az.URL); err != nil {
			fmt.Fprintf(stderr, "Could not open a browser (%v); open the URL yourself.\n", err)
		}
	}

	var got callbackResult
	select {
	case got = <-cb.results:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("login: no answer from the browser within %s", *timeout)
		}
		return ctx.Err()
	}
	outcome := func() error {
		if got.err != nil {
			return got.err
		}
		res, err := c.SignIn(ctx, client.SignInRequest{Code: got.code, State: got.state, RedirectURI: redirect, DeviceInfo: deviceInfo()})
		if err != nil {
			return fmt.Errorf("login: %w", err)
		}
		prev, _ := loadState(path)
		st := &cliState{Server: c.BaseURL(), User: res.User, Session: res.Session, GitHub: res.GitHub}
		if err := writeState(path, st); err != nil {
			return err
		}
		// The session this machine held before is replaced: end it, so
		// that re-logins do not pile up sessions. Best effort: it may be
		// dead already, or on a server that is gone.
		if prev != nil && prev.Session.ID != res.Session.ID {
			if pc, err := newCLIClient(prev.Server); err == nil {
				_ = pc.Logout(ctx, prev.Session.RefreshToken)
			}
		}
		who := res.User.Email
		if who == "" {
			who = res.User.Name
		}
		fmt.Fprintf(stdout, "Signed in to %s as %s (session %s).\n", c.BaseURL(), clip(who, 200), clip(res.Session.ID, 100))
		return nil
	}()
	cb.finish(outcome)
	return outcome
}

// callbackResult is what the browser brought back.
type callbackResult struct {
	code, state string
	err         error // GitHub's refusal
}

// callback serves the loopback redirect_uri. It takes the first request
// that carries the login's state, hands it to the waiting command and
// answers the browser once the sign-in is done. Requests with another state
// are refused and ignored: anything on this machine can reach the port.
type callback struct {
	state   string
	results chan callbackResult
	once    sync.Once
	done    chan struct{}
	mu      sync.Mutex
	outcome error
}

func newCallback(state string) *callback {
	return &callback{state: state, results: make(chan callbackResult, 1), done: make(chan struct{})}
}

// finish records the sign-in's outcome for the browser's page.
func (cb *callback) finish(err error) {
	cb.mu.Lock()
	cb.outcome = err
	cb.mu.Unlock()
	select {
	case <-cb.done:
	default:
		close(cb.done)
	}
}

var callbackPage = template.Must(template.New("cb").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flashauth login</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 34rem; margin: 3rem auto">
<h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

func (cb *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	page := func(status int, title, msg string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = callbackPage.Execute(w, struct{ Title, Message string }{title, msg})
	}
	if r.URL.Path != callbackPath || r.Method != http.MethodGet {
		page(http.StatusNotFound, "Not found", "This is the flashauth CLI's sign-in callback.")
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(cb.state)) != 1 {
		page(http.StatusBadRequest, "Wrong sign-in", "This link does not belong to the sign-in the flashauth CLI is waiting for.")
		return
	}
	res := callbackResult{code: q.Get("code"), state: q.Get("state")}
	if e := q.Get("error"); e != "" || res.code == "" {
		why := q.Get("error_description")
		if why == "" {
			why = e
		}
		res = callbackResult{err: fmt.Errorf("login: GitHub did not sign you in: %s", clip(why, 200))}
	}
	taken := false
	cb.once.Do(func() { cb.results <- res; taken = true })
	if !taken {
		page(http.StatusConflict, "Already used", "The flashauth CLI already received this sign-in; you can close this window.")
		return
	}
	select {
	case <-cb.done:
	case <-r.Context().Done():
		return
	}
	cb.mu.Lock()
	err := cb.outcome
	cb.mu.Unlock()
	if err != nil {
		page(http.StatusBadRequest, "Sign-in failed", err.Error())
		return
	}
	page(http.StatusOK, "Signed in", "The flashauth CLI is signed in. You can close this window.")
}

// deviceInfo describes this machine for the session list.
func deviceInfo() json.RawMessage {
	host, _ := os.Hostname()
	b, _ := json.Marshal(map[string]string{"client": "flashauth-cli", "os": runtime.GOOS, "name": host})
	return b
}

// clip keeps s on one line, at most n bytes, and safe for a terminal: what
// it is given comes from others (GitHub's error text, a user's name, a
// session's device info and user agent), and a control character (ESC
// starts the terminal's escape sequences: retitle the window, rewrite the
// screen, on some terminals answer back into the input) or a bidirectional
// override would let them rewrite what the user sees. Those become '?'.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !unicode.IsSpace(r) || unicode.Is(unicode.Bidi_Control, r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	return s
}

// openBrowser opens url with the platform's handler, without waiting. Only
// an http(s) URL is handed over: the URL comes from the server, and the
// platform handlers also open files and run programs (file:, a path, a
// leading "-" read as an option).
func openBrowser(url string) error {
	if u, err := neturl.Parse(url); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("the sign-in URL is not an http(s) URL")
	}
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
