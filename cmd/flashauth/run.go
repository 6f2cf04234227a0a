package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=..."; else it
// comes from the module's build info.
var version = ""

const usage = `usage: flashauth <command> [flags]

commands:
  serve      run the service (configuration from the environment or flags; serve -h lists them)
  dev        run the service with everything embedded: SQLite in a temporary directory and the GitHub emulator
  emulator   run the GitHub emulator alone
  migrate    apply the database migrations and exit (for deploy pipelines)
  admin      operator commands on serve's database: sessions revoke, audit, keys rotate (admin -h lists them)
  version    print the version

client commands (see docs/cli.md):
  login                  sign in with GitHub through a flashauth server (-server URL or $FLASHAUTH_URL)
  github-token           print a valid GitHub access token, refreshing it through flashauth
  github-token credential get|store|erase
                         git credential helper (credential.helper)
  sessions [revoke ID]   list your flashauth sessions, or revoke one
  logout                 end this session and delete the session file
`

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "dev":
		return runDev(ctx, rest, getenv, stdout, stderr)
	case "emulator":
		return runEmulator(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout, stderr)
	case "admin":
		return runAdmin(ctx, rest, getenv, stdout, stderr)
	case "login":
		return runLogin(ctx, rest, getenv, stdout, stderr)
	case "github-token":
		return runGitHubToken(ctx, rest, getenv, stdin, stdout, stderr)
	case "sessions":
		return runSessions(ctx, rest, getenv, stdout)
	case "logout":
		return runLogout(ctx, rest, getenv, stdout)
	case "version":
		fmt.Fprintln(stdout, "flashauth", versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return bi.Main.Version + " (" + s.Value[:12] + ")"
			}
		}
		return bi.Main.Version
	}
	return "unknown"
}

// newFlagSet returns a flag set that reports errors (and -h, as
// flag.ErrHelp: not a failure) instead of exiting.
func newFlagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return fs
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}

// maxSecretFileBytes bounds what a *_FILE setting may hold.
const maxSecretFileBytes = 64 << 10

// readSecretFile reads the secret the file path (named by the variable env)
// holds, without surrounding whitespace: files usually end with a newline.
// Errors name the variable and the file, never what it holds.
func readSecretFile(env, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: cannot read %s", env, path)
	}
	defer f.Close()
	// A secret is short: a path mistyped to a log file, a disk or
	// /dev/urandom must not be read into memory whole (or for ever).
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s: cannot read %s", env, path)
	}
	if len(b) > maxSecretFileBytes {
		return "", fmt.Errorf("%s: %s is larger than %d bytes; it should hold only the secret", env, path, maxSecretFileBytes)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", env, path)
	}
	return s, nil
}
