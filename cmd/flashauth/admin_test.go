package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/postgres/pgtest"
	"github.com/flashbacktech/flashauth/session"
)

// The operator commands run against both stores, as serve does.
func forEachStore(t *testing.T, test func(t *testing.T, dbURL string)) {
	t.Run("sqlite", func(t *testing.T) {
		test(t, "sqlite:"+filepath.Join(t.TempDir(), "flashauth.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		test(t, pgtest.URL(t))
	})
}

// runCmd runs flashauth with args and env and returns its stdout.
func runCmd(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"flashauth"}, args...), envFrom(env), nil, &stdout, &stderr)
	all := stdout.String() + stderr.String()
	if err != nil {
		all += err.Error()
	}
	testkit.NoTokenShaped(t, "the output of flashauth "+strings.Join(args, " "), all)
	return stdout.String(), err
}

// openDB opens the database at dbURL for the test's own checks.
func openDB(t *testing.T, dbURL string) flashauth.Store {
	t.Helper()
	st, err := app.OpenStore(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("open %s: %v", app.RedactURL(dbURL), err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// wantOneLine fails unless err is one line that mentions want and none of the
// secrets.
func wantOneLine(t *testing.T, err error, want string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one naming %q", want)
	}
	msg := err.Error()
	if !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line mentioning %q", msg, want)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error %q quotes a secret", msg)
		}
	}
}

func TestMigrateCommand(t *testing.T) {
	forEachStore(t, func(t *testing.T, dbURL string) {
		for range 2 { // the second run finds nothing to do
			out, err := runCmd(t, map[string]string{"FLASHAUTH_DATABASE_URL": dbURL}, "migrate")
			if err != nil {
				t.Fatalf("migrate: %v", err)
			}
			if !strings.HasPrefix(out, "migrations applied: schema version ") || strings.Count(out, "\n") != 1 {
				t.Errorf("migrate printed %q", out)
			}
		}
		// The flag wins over the variable, as for serve.
		if _, err := runCmd(t, map[string]string{"FLASHAUTH_DATABASE_URL": "mysql://nope"}, "migrate", "-database-url", dbURL); err != nil {
			t.Errorf("migrate -database-url: %v", err)
		}
		st := openDB(t, dbURL)
		if _, err := st.ListSigningKeys(context.Background()); err != nil {
			t.Errorf("the migrated schema has no signing_keys table: %v", err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		const password = "hunter2-db-password"
		_, err := runCmd(t, map[string]string{"FLASHAUTH_DATABASE_URL": "postgres://flashauth:" + password + "@127.0.0.1:1/x?connect_timeout=1"}, "migrate")
		wantOneLine(t, err, "PostgreSQL", password)
		_, err = runCmd(t, map[string]string{"FLASHAUTH_DATABASE_URL": "mysql://u:" + password + "@db/x"}, "migrate")
		wantOneLine(t, err, "FLASHAUTH_DATABASE_URL", password)
		_, err = runCmd(t, nil, "migrate", "extra")
		wantOneLine(t, err, "unexpected argument")
	})
}

// seedSessions migrates dbURL and opens sessions: two for alice, one for bob.
func seedSessions(t *testing.T, dbURL string) (st flashauth.Store, alice, bob flashauth.User) {
	t.Helper()
	st = openDB(t, dbURL)
	ctx := context.Background()
	svc, err := session.New(st, ledger.New(st, ledger.Options{}), session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	users := make([]flashauth.User, 2)
	for i, login := range []string{"alice", "bob"} {
		u, _, err := st.UpsertGitHubUser(ctx, flashauth.User{ID: "user-" + login, GitHubID: int64(100 + i), Login: login,
			Email: login + "@example.com", CreatedAt: now, UpdatedAt: now},
			flashauth.Organization{ID: "org-" + login, Name: login, CreatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		users[i] = u
		for range 2 - i {
			if _, err := svc.Open(ctx, u, session.Meta{Provider: "GITHUB"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st, users[0], users[1]
}

func TestAdminSessionsRevoke(t *testing.T) {
	forEachStore(t, func(t *testing.T, dbURL string) {
		st, alice, bob := seedSessions(t, dbURL)
		ctx := context.Background()
		env := map[string]string{"FLASHAUTH_DATABASE_URL": dbURL}
		out, err := runCmd(t, env, "admin", "sessions", "revoke", "--user", alice.ID)
		if err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if want := "revoked 2 sessions of user " + alice.ID + "\n"; out != want {
			t.Errorf("printed %q, want %q", out, want)
		}
		if s, _ := st.ListSessions(ctx, alice.ID, time.Now()); len(s) != 0 {
			t.Errorf("alice still has %d sessions", len(s))
		}
		if s, _ := st.ListSessions(ctx, bob.ID, time.Now()); len(s) != 1 {
			t.Errorf("bob has %d sessions, want his one untouched", len(s))
		}
		events, err := st.QueryAudit(ctx, flashauth.AuditFilter{UserID: alice.ID, Limit: 10})
		if err != nil || len(events) != 1 || events[0].Type != "revoke" || !strings.Contains(events[0].Detail, "2 sessions revoked") {
			t.Errorf("audit trail: %+v %v", events, err)
		}
		// Again: nothing left to revoke, still a success.
		if out, err := runCmd(t, env, "admin", "sessions", "revoke", "-user", alice.ID); err != nil || !strings.HasPrefix(out, "revoked 0 sessions") {
			t.Errorf("second revoke: %q %v", out, err)
		}
		_, err = runCmd(t, env, "admin", "sessions", "revoke", "--user", "no-such-user")
		wantOneLine(t, err, "no user with id")
		_, err = runCmd(t, env, "admin", "sessions", "revoke")
		wantOneLine(t, err, "--user")
	})
}

// TestAdminRefusesMissingSQLiteFile: a mistyped path is an error, not a new
// empty database that has "no sessions" and "no events".
func TestAdminRefusesMissingSQLiteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "typo.db")
	env := map[string]string{"FLASHAUTH_DATABASE_URL": "sqlite:" + path, "FLASHAUTH_SECRET_KEY": strings.Repeat("k", 32)}
	for _, args := range [][]string{
		{"admin", "sessions", "revoke", "--user", "u"},
		{"admin", "audit"},
		{"admin", "keys", "rotate"},
	} {
		_, err := runCmd(t, env, args...)
		wantOneLine(t, err, "no SQLite database at")
		if _, err := os.Stat(path); err == nil {
			t.Fatalf("%v created %s", args, path)
		}
	}
}

func TestAdminAudit(t *testing.T) {
	forEachStore(t, func(t *testing.T, dbURL string) {
		st := openDB(t, dbURL)
		now := time.Now()
		for i, e := range []flashauth.AuditEvent{
			{Time: now.Add(-72 * time.Hour), Type: "signin", Outcome: "ok", UserID: "alice", RequestID: "r0"},
			{Time: now.Add(-3 * time.Hour), Type: "github_refresh", Outcome: "ok", UserID: "bob", IPAddress: "192.0.2.1", RequestID: "r1"},
			{Time: now.Add(-2 * time.Hour), Type: "session_refresh", Outcome: "rejected", UserID: "alice", SessionID: "s1", RequestID: "r2", Detail: "d"},
			{Time: now.Add(-time.Hour), Type: "revoke", Outcome: "ok", UserID: "alice", RequestID: "r3"},
		} {
			if err := st.AppendAudit(context.Background(), e); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
		}
		env := map[string]string{"FLASHAUTH_DATABASE_URL": dbURL}
		rows := []struct {
			name string
			args []string
			want []string // request ids, in the printed order
		}{
			{"everything, newest first", nil, []string{"r3", "r2", "r1", "r0"}},
			{"user", []string{"--user", "alice"}, []string{"r3", "r2", "r0"}},
			{"since a duration", []string{"--since", "24h"}, []string{"r3", "r2", "r1"}},
			{"since days", []string{"--since", "4d"}, []string{"r3", "r2", "r1", "r0"}},
			{"since RFC3339", []string{"--since", now.Add(-150 * time.Minute).UTC().Format(time.RFC3339)}, []string{"r3", "r2"}},
			{"all filters", []string{"--user", "alice", "--since", "24h", "--limit", "1"}, []string{"r3"}},
			{"nothing matches", []string{"--user", "carol"}, nil},
		}
		for _, tc := range rows {
			t.Run(tc.name, func(t *testing.T) {
				out, err := runCmd(t, env, append([]string{"admin", "audit"}, tc.args...)...)
				if err != nil {
					t.Fatalf("audit: %v", err)
				}
				var got []string
				for line := range strings.Lines(out) {
					var e auditLine
					if err := json.Unmarshal([]byte(line), &e); err != nil {
						t.Fatalf("line %q is no JSON object: %v", line, err)
					}
					got = append(got, e.RequestID)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("printed %v, want %v", got, tc.want)
				}
			})
		}
		// One line holds every field of the event.
		out, _ := runCmd(t, env, "admin", "audit", "--user", "bob")
		var e map[string]any
		if err := json.Unmarshal([]byte(out), &e); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		wantTime := now.Add(-3 * time.Hour).UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00")
		if e["time"] != wantTime || e["type"] != "github_refresh" || e["outcome"] != "ok" || e["user_id"] != "bob" ||
			e["ip"] != "192.0.2.1" || e["request_id"] != "r1" || e["id"] == nil {
			t.Errorf("line = %s (want time %s)", out, wantTime)
		}
		for _, bad := range [][]string{{"--since", "yesterday"}, {"--since", "-1h"}, {"--since", "0d"}, {"--limit", "0"}, {"--limit", "1000001"}} {
			_, err := runCmd(t, env, append([]string{"admin", "audit"}, bad...)...)
			wantOneLine(t, err, bad[0])
		}
	})
}

func TestAdminKeysRotate(t *testing.T) {
	forEachStore(t, func(t *testing.T, dbURL string) {
		secret := "an operator's secret key, 32+ bytes long"
		st := openDB(t, dbURL)
		ctx := context.Background()
		// serve's first start made generation 1 under the secret.
		serve := func() *session.Service {
			svc, err := session.New(st, ledger.New(st, ledger.Options{}), session.Config{SecretKey: []byte(secret)})
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.EnsureKeys(ctx); err != nil {
				t.Fatal(err)
			}
			return svc
		}
		serve()

		refused := []struct {
			name string
			env  map[string]string
			want string
		}{
			{"no secret", map[string]string{}, "FLASHAUTH_SECRET_KEY"},
			{"short secret", map[string]string{"FLASHAUTH_SECRET_KEY": "short-secret"}, "at least 32 bytes"},
			{"wrong secret", map[string]string{"FLASHAUTH_SECRET_KEY": "another secret that is 32+ bytes long"}, "FLASHAUTH_SECRET_KEY"},
			{"both", map[string]string{"FLASHAUTH_SECRET_KEY": secret, "FLASHAUTH_SECRET_KEY_FILE": "/etc/hostname"}, "only one"},
			{"bad ttl", map[string]string{"FLASHAUTH_SECRET_KEY": secret, "FLASHAUTH_ACCESS_TTL": "forever"}, "FLASHAUTH_ACCESS_TTL"},
		}
		for _, tc := range refused {
			t.Run(tc.name, func(t *testing.T) {
				tc.env["FLASHAUTH_DATABASE_URL"] = dbURL
				_, err := runCmd(t, tc.env, "admin", "keys", "rotate")
				wantOneLine(t, err, tc.want, secret, tc.env["FLASHAUTH_SECRET_KEY"])
			})
		}
		if keys, _ := st.ListSigningKeys(ctx); len(keys) != 1 {
			t.Fatalf("refused rotations left %d keys", len(keys))
		}

		// The secret from a file, as serve takes it too.
		file := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := runCmd(t, map[string]string{"FLASHAUTH_DATABASE_URL": dbURL, "FLASHAUTH_SECRET_KEY_FILE": file}, "admin", "keys", "rotate")
		if err != nil {
			t.Fatalf("rotate: %v", err)
		}
		keys, err := st.ListSigningKeys(ctx)
		if err != nil || len(keys) != 2 || keys[0].Generation != 2 || !keys[0].Sealed {
			t.Fatalf("keys after rotation: %d %v", len(keys), err)
		}
		if !strings.HasPrefix(out, fmt.Sprintf("signing key generation 2 (kid %s) signs from now on", keys[0].ID)) || strings.Contains(out, secret) {
			t.Errorf("printed %q", out)
		}
		// A serve process with the secret opens the new key and signs with it.
		svc := serve()
		now := time.Now()
		u, _, err := st.UpsertGitHubUser(ctx, flashauth.User{ID: "u", GitHubID: 1, Login: "u", Email: "u@example.com", CreatedAt: now, UpdatedAt: now},
			flashauth.Organization{ID: "o", Name: "o", CreatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		iss, err := svc.Open(ctx, u, session.Meta{Provider: "GITHUB"})
		if err != nil {
			t.Fatal(err)
		}
		if kid := jwtKid(t, iss.AccessToken); kid != keys[0].ID {
			t.Errorf("serve signs with %s, want the rotated %s", kid, keys[0].ID)
		}
	})
}

// jwtKid reads the kid of a JWT's header.
func jwtKid(t *testing.T, tok string) string {
	t.Helper()
	var h struct{ Kid string }
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil || json.Unmarshal(b, &h) != nil {
		t.Fatalf("not a JWT header: %v", err)
	}
	return h.Kid
}

func TestAdminUsage(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string // "" for success
	}{
		{[]string{"admin"}, "no command given"},
		{[]string{"admin", "-h"}, ""},
		{[]string{"admin", "help"}, ""},
		{[]string{"admin", "keys"}, `unknown admin command "keys"`},
		{[]string{"admin", "sessions", "list"}, `unknown admin command "sessions list"`},
		{[]string{"admin", "audit", "-h"}, ""},
		{[]string{"admin", "keys", "rotate", "-h"}, ""},
		{[]string{"admin", "audit", "--bogus"}, "flag provided but not defined"},
		{[]string{"migrate", "-h"}, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := runCmd(t, nil, tc.args...)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr != "" {
				wantOneLine(t, err, tc.wantErr)
			}
		})
	}
}
