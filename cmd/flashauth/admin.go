package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/audit"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/logging"
	"github.com/flashbacktech/flashauth/session"
)

const adminUsage = `usage: flashauth admin <command> [flags]

commands (on the database serve uses: $FLASHAUTH_DATABASE_URL or -database-url):
  sessions revoke --user ID                      revoke every session of a user
  audit [--user ID] [--since T] [--limit N]      print the audit trail, one JSON object per line, newest first
  keys rotate                                    generate a new signing key now (needs FLASHAUTH_SECRET_KEY)
`

// Bounds of admin audit's -limit.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 100000
)

// runAdmin runs the operator commands: they act on the database serve uses,
// through the same domain packages, so that nothing needs raw SQL.
func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return oneLine(admin(ctx, args, getenv, stdout, stderr))
}

func admin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var words []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") && len(words) < 2 {
		words, args = append(words, args[0]), args[1:]
	}
	switch strings.Join(words, " ") {
	case "sessions revoke":
		return adminRevokeSessions(ctx, args, getenv, stdout, stderr)
	case "audit":
		return adminAudit(ctx, args, getenv, stdout, stderr)
	case "keys rotate":
		return adminRotateKeys(ctx, args, getenv, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, adminUsage)
		return nil
	case "":
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprint(stdout, adminUsage)
			return nil
		}
		fmt.Fprint(stderr, adminUsage)
		return errors.New("admin: no command given")
	}
	fmt.Fprint(stderr, adminUsage)
	return fmt.Errorf("unknown admin command %q", strings.Join(words, " "))
}

// lineError shows an error on one line: drivers (pgx) put each address they
// tried on a line of its own, and a command's error is one line.
type lineError struct{ err error }

func (e lineError) Error() string {
	return strings.Join(strings.Fields(strings.ReplaceAll(e.err.Error(), "\n", " ; ")), " ")
}

func (e lineError) Unwrap() error { return e.err }

func oneLine(err error) error {
	if err == nil || !strings.Contains(err.Error(), "\n") {
		return err
	}
	return lineError{err}
}

// adminFlags is a flag set whose -database-url (and any other setting asked
// for) resolves exactly as serve's: the flag, else the variable, else the
// default.
type adminFlags struct {
	*flag.FlagSet
	getenv func(string) string
	vals   map[string]*string
}

func newAdminFlags(name string, getenv func(string) string, out io.Writer, envs ...string) *adminFlags {
	f := &adminFlags{FlagSet: newFlagSet(name, out), getenv: getenv, vals: map[string]*string{}}
	for _, env := range append([]string{"FLASHAUTH_DATABASE_URL"}, envs...) {
		def, help := "", ""
		for _, s := range settings {
			if s.env == env {
				def, help = s.def, s.help
			}
		}
		f.vals[env] = f.String(flagName(env), envOr(getenv, env, def), help+" ($"+env+")")
	}
	return f
}

// parse parses args and refuses positional arguments.
func (f *adminFlags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", f.Arg(0))
	}
	return nil
}

func (f *adminFlags) get(env string) string { return strings.TrimSpace(*f.vals[env]) }

// openStore opens serve's database. The operator commands other than
// migrate refuse a SQLite file that does not exist: a mistyped path would
// otherwise be created empty and every answer would be "nothing there".
func (f *adminFlags) openStore(ctx context.Context, mustExist bool) (flashauth.Store, error) {
	dbURL := f.get("FLASHAUTH_DATABASE_URL")
	if path, ok := strings.CutPrefix(dbURL, "sqlite:"); ok && mustExist && path != "" {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("FLASHAUTH_DATABASE_URL: no SQLite database at %s (wrong path? `flashauth migrate` creates one)", path)
		}
	}
	return app.OpenStore(ctx, dbURL)
}

// adminDone maps -h to success, the way serve -h is.
func adminDone(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func adminLogger(stderr io.Writer) *slog.Logger {
	return logging.New(stderr, "text", slog.LevelWarn)
}

func adminRevokeSessions(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newAdminFlags("admin sessions revoke", getenv, stderr)
	user := f.String("user", "", "id of the user whose sessions to revoke (required)")
	if err := f.parse(args); err != nil {
		return adminDone(err)
	}
	if *user == "" {
		return errors.New("admin sessions revoke: --user ID is required")
	}
	store, err := f.openStore(ctx, true)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.GetUser(ctx, *user); errors.Is(err, flashauth.ErrNotFound) {
		return fmt.Errorf("admin sessions revoke: no user with id %q", *user)
	} else if err != nil {
		return fmt.Errorf("admin sessions revoke: %w", err)
	}
	clock := flashauth.SystemClock{}
	n, err := store.RevokeUserSessions(ctx, *user, clock.Now())
	if err != nil {
		return fmt.Errorf("admin sessions revoke: %w", err)
	}
	audit.New(store, adminLogger(stderr), clock).Record(ctx, flashauth.AuditEvent{
		Type: audit.TypeRevoke, Outcome: audit.OutcomeOK, UserID: *user,
		Detail: fmt.Sprintf("flashauth admin sessions revoke: %d sessions revoked", n),
	})
	fmt.Fprintf(stdout, "revoked %d sessions of user %s\n", n, *user)
	return nil
}

// auditLine is one event as admin audit prints it; the names are the audit
// log line's.
type auditLine struct {
	ID        int64  `json:"id"`
	Time      string `json:"time"`
	Type      string `json:"type"`
	Outcome   string `json:"outcome"`
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id"`
	IP        string `json:"ip"`
	RequestID string `json:"request_id"`
	Detail    string `json:"detail"`
}

func adminAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newAdminFlags("admin audit", getenv, stderr)
	user := f.String("user", "", "only this user's events")
	since := f.String("since", "", "only events since T: RFC3339 (2026-01-02T15:04:05Z) or a duration back from now (24h, 7d)")
	limit := f.Int("limit", defaultAuditLimit, fmt.Sprintf("print at most the newest N events (1..%d)", maxAuditLimit))
	if err := f.parse(args); err != nil {
		return adminDone(err)
	}
	clock := flashauth.SystemClock{}
	filter := flashauth.AuditFilter{UserID: *user, Limit: *limit}
	if *limit < 1 || *limit > maxAuditLimit {
		return fmt.Errorf("admin audit: --limit wants 1..%d, got %d", maxAuditLimit, *limit)
	}
	if *since != "" {
		t, err := parseSince(*since, clock.Now())
		if err != nil {
			return fmt.Errorf("admin audit: --since: %v", err)
		}
		filter.Since = t
	}
	store, err := f.openStore(ctx, true)
	if err != nil {
		return err
	}
	defer store.Close()
	events, err := store.QueryAudit(ctx, filter)
	if err != nil {
		return fmt.Errorf("admin audit: %w", err)
	}
	enc := json.NewEncoder(stdout)
	for _, e := range events {
		line := auditLine{ID: e.ID, Type: e.Type, Outcome: e.Outcome, UserID: e.UserID, SessionID: e.SessionID,
			IP: e.IPAddress, RequestID: e.RequestID, Detail: e.Detail}
		if !e.Time.IsZero() {
			line.Time = e.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00")
		}
		if err := enc.Encode(line); err != nil {
			return fmt.Errorf("admin audit: %w", err)
		}
	}
	return nil
}

// parseSince reads an instant (RFC3339) or a positive duration back from
// now: Go's units, plus d for days.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if n, err = strconv.Atoi(days); err == nil && n > 0 && n <= 100*365 {
			d = time.Duration(n) * 24 * time.Hour
		} else {
			err = errors.New("bad days")
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("want an RFC3339 time such as 2026-01-02T15:04:05Z or a duration such as 24h or 7d, got %q", s)
	}
	return now.Add(-d), nil
}

func adminRotateKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newAdminFlags("admin keys rotate", getenv, stderr, "FLASHAUTH_ACCESS_TTL", "FLASHAUTH_KEY_ROTATION")
	keyFile := f.String("secret-key-file", getenv("FLASHAUTH_SECRET_KEY_FILE"), "file holding the secret key ($FLASHAUTH_SECRET_KEY_FILE; or set $FLASHAUTH_SECRET_KEY)")
	if err := f.parse(args); err != nil {
		return adminDone(err)
	}
	secret, err := adminSecretKey(getenv("FLASHAUTH_SECRET_KEY"), *keyFile)
	if err != nil {
		return err
	}
	var ttl, rotation time.Duration
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{"FLASHAUTH_ACCESS_TTL", &ttl}, {"FLASHAUTH_KEY_ROTATION", &rotation}} {
		if *d.dst, err = time.ParseDuration(f.get(d.env)); err != nil || *d.dst <= 0 {
			return fmt.Errorf("%s: want a positive duration such as 1h, got %q", d.env, f.get(d.env))
		}
	}
	store, err := f.openStore(ctx, true)
	if err != nil {
		return err
	}
	defer store.Close()
	log := adminLogger(stderr)
	clock := flashauth.SystemClock{}
	svc, err := session.New(store, ledger.New(store, ledger.Options{Clock: clock, Logger: log}), session.Config{
		AccessTTL: ttl, KeyRotation: rotation, SecretKey: secret, Clock: clock, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("admin keys rotate: %w", err)
	}
	k, err := svc.RotateKey(ctx)
	if err != nil {
		return fmt.Errorf("admin keys rotate (is FLASHAUTH_SECRET_KEY the one serve uses?): %w", err)
	}
	fmt.Fprintf(stdout, "signing key generation %d (kid %s) signs from now on; replicas pick it up within a minute, and the previous keys keep verifying the tokens they signed\n", k.Generation, k.ID)
	return nil
}

// adminSecretKey is FLASHAUTH_SECRET_KEY or the content of
// FLASHAUTH_SECRET_KEY_FILE, exactly one of them, at least
// session.MinSecretKeyLen bytes. Errors never quote the key.
func adminSecretKey(value, file string) ([]byte, error) {
	key, err := secretKey("FLASHAUTH_SECRET_KEY", value, file)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, errors.New("FLASHAUTH_SECRET_KEY (or FLASHAUTH_SECRET_KEY_FILE) is required: new signing keys are sealed under it, as serve seals them")
	}
	return []byte(key), nil
}

// runMigrate applies the database's pending migrations and exits: for deploy
// pipelines that migrate before rolling out replicas.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return oneLine(migrate(ctx, args, getenv, stdout, stderr))
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newAdminFlags("migrate", getenv, stderr)
	if err := f.parse(args); err != nil {
		return adminDone(err)
	}
	store, err := f.openStore(ctx, false)
	if err != nil {
		return err
	}
	defer store.Close()
	// Both stores report the version they reached; a store without the
	// method would still have been migrated by opening it.
	v, ok := store.(interface {
		MigrationVersion(context.Context) (int, error)
	})
	if !ok {
		fmt.Fprintln(stdout, "migrations applied")
		return nil
	}
	version, err := v.MigrationVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrate: read the schema version: %w", err)
	}
	fmt.Fprintf(stdout, "migrations applied: schema version %d\n", version)
	return nil
}
