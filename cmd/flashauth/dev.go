package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/logging"
)

// runDev runs the emulator and the service in one process on loopback, with
// SQLite in a throw-away directory, and prints how to try it.
func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("dev takes no arguments; configure it with the environment (FLASHAUTH_ADDR, FLASHAUTH_LOG_LEVEL, ...)")
	}
	dir, err := os.MkdirTemp("", "flashauth-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// dev sets up the database and GitHub itself; the environment may
	// change anything else, and its defaults.
	pinned := map[string]string{"FLASHAUTH_DATABASE_URL": "sqlite:" + filepath.Join(dir, "flashauth.db")}
	defaults := map[string]string{"FLASHAUTH_ADDR": "127.0.0.1:8080", "FLASHAUTH_LOG_FORMAT": "text"}
	devenv := func(k string) string {
		if v, ok := pinned[k]; ok {
			return v
		}
		return envOr(getenv, k, defaults[k])
	}
	// flashauth listens first: the demo page's address is a callback the
	// emulator must know.
	ln, err := net.Listen("tcp", devenv("FLASHAUTH_ADDR"))
	if err != nil {
		return fmt.Errorf("FLASHAUTH_ADDR: %v", err)
	}
	defer ln.Close()
	scheme := "http"
	if devenv("FLASHAUTH_TLS_CERT") != "" {
		scheme = "https"
	}
	demoCallback := scheme + "://" + ln.Addr().String() + "/"

	secret := randomHex(20)
	const clientID = "Iv1.flashauthdev"
	emuLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("emulator listener: %w", err)
	}
	emuURL := "http://" + emuLn.Addr().String()
	// The emulator's server also hosts the dev callback page that shows the
	// request completing a sign-in. It, the demo page and `flashauth
	// login`'s loopback callback (on any port, as GitHub allows OAuth Apps
	// and RFC 8252 asks) are the app's registered callbacks: like
	// github.com, the emulator refuses any other redirect_uri.
	callback := emuURL + devCallbackPath
	emu := githubemu.New(githubemu.Config{ClientID: clientID, ClientSecret: secret, CallbackURL: callback,
		MoreCallbackURLs: []string{demoCallback, "http://127.0.0.1" + callbackPath}, LoopbackAnyPort: true})
	defer emu.Close()
	var cbHandler atomicHandler
	emuMux := http.NewServeMux()
	emuMux.Handle(devCallbackPath, &cbHandler)
	emuMux.Handle("/", emu)
	emuSrv := &http.Server{Handler: emuMux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = emuSrv.Serve(emuLn) }()
	defer emuSrv.Close()

	maps.Copy(pinned, map[string]string{
		"GITHUB_CLIENT_ID":          clientID,
		"GITHUB_CLIENT_SECRET":      secret,
		"GITHUB_CLIENT_SECRET_FILE": "",
		"GITHUB_URL":                emuURL,
		"GITHUB_API_URL":            emuURL,
		// A fresh key each run: the database is thrown away on exit too.
		"FLASHAUTH_SECRET_KEY":          randomHex(32),
		"FLASHAUTH_SECRET_KEY_FILE":     "",
		"FLASHAUTH_SECRET_KEY_OLD":      "",
		"FLASHAUTH_SECRET_KEY_OLD_FILE": "",
	})
	c, err := parseConfig(nil, devenv, stderr)
	if err != nil {
		return err
	}
	user := emu.AddUser(githubemu.User{
		Login: "octocat", Name: "The Octocat", Company: "@github", AvatarURL: "https://avatars.githubusercontent.com/u/583231",
		Emails: []githubemu.Email{{Email: "octocat@example.com", Primary: true, Verified: true, Visibility: "public"}},
	})
	grant, err := emu.MintGrant(user.ID)
	if err != nil {
		return fmt.Errorf("emulator: mint grant: %w", err)
	}
	fmt.Fprintf(stderr, "dev mode: data lives in %s and is deleted on exit\n", dir)
	err = start(ctx, c, stdout, stderr, startOptions{
		listener: ln,
		wrap:     withDemo(demoCallback),
		banner: func(base string) {
			cbHandler.Store(devCallback(base, callback))
			printDevInstructions(stdout, base, emuURL, callback, grant.RefreshToken)
		},
	})
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func printDevInstructions(w io.Writer, base, emuURL, callback, refreshToken string) {
	fmt.Fprintf(w, `GitHub emulator on %[2]s

Demo: open %[1]s/ in a browser to sign in, refresh, race and revoke.

Try a refresh with a token the emulator just minted for "octocat":

  curl -s -X POST %[1]s/auth/github/refresh \
    -H 'Content-Type: application/json' \
    -d '{"refresh_token": "%[3]s"}'

Run it twice within a minute: the second answer is replayed, identical, without
a second call to GitHub. More tokens: curl -s -X POST %[2]s/_emulator/grants -d '{"login":"octocat"}'

Sign in through the emulator: open this in a browser, approve as any user, and
the page you land on shows the request that completes the sign-in:

  %[1]s/auth/github/authorize?redirect=1&redirect_uri=%[4]s

Stop with Ctrl-C.
`, base, emuURL, refreshToken, url.QueryEscape(callback))
}

// atomicHandler serves the handler stored last (404 before that).
type atomicHandler struct{ h atomic.Pointer[http.Handler] }

func (a *atomicHandler) Store(h http.Handler) { a.h.Store(&h) }

func (a *atomicHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := a.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// runEmulator serves the GitHub emulator alone, for tests and benchmarks of
// another process.
func runEmulator(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("emulator", stderr)
	addr := fs.String("addr", envOr(getenv, "GITHUB_EMULATOR_ADDR", "127.0.0.1:9090"), "listen address ($GITHUB_EMULATOR_ADDR)")
	clientID := fs.String("client-id", envOr(getenv, "GITHUB_CLIENT_ID", "Iv1.flashauthdev"), "client id the emulator accepts ($GITHUB_CLIENT_ID)")
	secretFile := fs.String("client-secret-file", getenv("GITHUB_CLIENT_SECRET_FILE"), "file with the client secret ($GITHUB_CLIENT_SECRET_FILE)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	secret := getenv("GITHUB_CLIENT_SECRET")
	if *secretFile != "" {
		var err error
		if secret, err = readSecretFile("GITHUB_CLIENT_SECRET_FILE", *secretFile); err != nil {
			return err
		}
	}
	if secret == "" {
		return errors.New("GITHUB_CLIENT_SECRET (or GITHUB_CLIENT_SECRET_FILE) is required: the emulator checks it like GitHub does")
	}
	log := logging.New(stderr, "text", slog.LevelInfo)
	emu := githubemu.New(githubemu.Config{ClientID: *clientID, ClientSecret: secret, Logger: log})
	defer emu.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "GitHub emulator listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	emu.Close() // release hung requests before waiting for them
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
