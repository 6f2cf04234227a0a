package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/flashbacktech/flashauth/client"
)

// cliState is what `flashauth login` stores: the server, the user, the
// flashauth session and the GitHub token pair. The file holds live tokens,
// so it is written 0600, atomically, and refused when others can read it.
type cliState struct {
	Server  string         `json:"server"`
	User    client.User    `json:"user"`
	Session client.Session `json:"session"`
	GitHub  client.Token   `json:"github"`
}

// errNotSignedIn is the error of every command that needs a session when
// there is none.
var errNotSignedIn = errors.New("not signed in: run `flashauth login -server URL` first")

// maxStateBytes bounds the state file: it is a few KiB.
const maxStateBytes = 1 << 20

// configDir is os.UserConfigDir computed from getenv, so that tests (and
// users) control it through the environment.
func configDir(getenv func(string) string) (string, error) {
	switch runtime.GOOS {
	case "windows":
		if d := getenv("AppData"); d != "" {
			return d, nil
		}
		return "", errors.New("%AppData% is not set: cannot find the configuration directory")
	case "darwin", "ios":
		if h := getenv("HOME"); h != "" {
			return filepath.Join(h, "Library", "Application Support"), nil
		}
		return "", errors.New("$HOME is not set: cannot find the configuration directory")
	case "plan9":
		if h := getenv("home"); h != "" {
			return filepath.Join(h, "lib"), nil
		}
		return "", errors.New("$home is not set: cannot find the configuration directory")
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		if !filepath.IsAbs(d) {
			return "", errors.New("$XDG_CONFIG_HOME is a relative path: cannot find the configuration directory")
		}
		return d, nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config"), nil
	}
	return "", errors.New("neither $XDG_CONFIG_HOME nor $HOME is set: cannot find the configuration directory")
}

// statePath is the session file: <config dir>/flashauth/session.json.
func statePath(getenv func(string) string) (string, error) {
	d, err := configDir(getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "flashauth", "session.json"), nil
}

// loadState reads the session file at path.
func loadState(path string) (*cliState, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotSignedIn
	}
	if err != nil {
		return nil, fmt.Errorf("session file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("session file: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("session file %s can be read by other users (mode %v); run `chmod 600 %s` or sign in again", path, fi.Mode().Perm(), path)
	}
	if !ownedBySelf(fi) {
		// Someone else's file (planted in a shared directory, or read by
		// root on a user's behalf) would choose the server and the tokens.
		return nil, fmt.Errorf("session file %s belongs to another user; remove it and sign in again", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("session file: %w", err)
	}
	var st cliState
	if len(b) > maxStateBytes || json.Unmarshal(b, &st) != nil || st.Server == "" || st.Session.RefreshToken == "" {
		// The decoder's error is not shown: it could quote the file.
		return nil, fmt.Errorf("session file %s is damaged; sign in again with `flashauth login`", path)
	}
	return &st, nil
}

// writeState replaces the file at path with st: a temporary file in the
// same directory (created 0600), synced, then renamed over it, so a reader
// never sees half a file and no moment exists where the tokens are readable
// by others.
func writeState(path string, st *cliState) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("session file: %w", err)
	}
	// A directory others may write to (or that is not ours) lets them
	// delete, swap or pre-create the file: the tokens go nowhere near it.
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("session file: %w", err)
	} else if runtime.GOOS != "windows" && (fi.Mode().Perm()&0o022 != 0 || !ownedBySelf(fi)) {
		return fmt.Errorf("session file: the directory %s is writable by other users (mode %v) or not yours; run `chmod 700 %s` or set XDG_CONFIG_HOME to a directory of your own", dir, fi.Mode().Perm(), dir)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("session file: %w", err)
	}
	f, err := os.CreateTemp(dir, ".session-*.tmp")
	if err != nil {
		return fmt.Errorf("session file: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("session file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("session file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("session file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("session file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("session file: %w", err)
	}
	ok = true
	return nil
}

// updateState applies change to the file as it is now on disk and writes
// it back: another flashauth process (git runs credential helpers in
// parallel) may have stored a newer pair since this one loaded the file,
// and only the part this process changed must be replaced.
func updateState(path string, change func(*cliState)) error {
	st, err := loadState(path)
	if err != nil {
		return err
	}
	change(st)
	return writeState(path, st)
}

// cliHTTPClient is the HTTP client of the CLI's calls to flashauth.
func cliHTTPClient() *http.Client { return &http.Client{Timeout: 30 * time.Second} }

// signedIn loads the session file getenv points at: its path, its content,
// and an SDK client for the server it names.
func signedIn(getenv func(string) string) (path string, st *cliState, c *client.Client, err error) {
	if path, err = statePath(getenv); err != nil {
		return "", nil, nil, err
	}
	if st, err = loadState(path); err != nil {
		return "", nil, nil, err
	}
	if c, err = newCLIClient(st.Server); err != nil {
		return "", nil, nil, err
	}
	return path, st, c, nil
}

// newCLIClient returns an SDK client for server. Plain http is accepted
// only for a loopback address (flashauth dev): the CLI sends refresh tokens,
// which must not cross a network in clear.
func newCLIClient(server string) (*client.Client, error) {
	if u, err := url.Parse(server); err == nil && strings.EqualFold(u.Scheme, "http") && !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("refusing to send tokens in clear to %s: use an https URL (plain http only for a loopback address such as 127.0.0.1)", u.Redacted())
	}
	return client.New(server, client.WithHTTPClient(cliHTTPClient()), client.WithUserAgent("flashauth-cli/"+versionString()))
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
