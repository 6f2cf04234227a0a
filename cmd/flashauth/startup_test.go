package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/flashbacktech/flashauth/postgres/pgtest"
)

// serve binds its port before it touches the store: with the port taken it
// fails, naming the address, and has neither created nor migrated a database
// nor generated a signing key.
func TestServePortTakenLeavesTheStoreAlone(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	serve := func(t *testing.T, databaseURL string) {
		t.Helper()
		env := map[string]string{
			"FLASHAUTH_ADDR": taken.Addr().String(), "FLASHAUTH_DATABASE_URL": databaseURL,
			"GITHUB_CLIENT_ID": "Iv1.x", "GITHUB_CLIENT_SECRET": "sek",
			"FLASHAUTH_SECRET_KEY": strings.Repeat("k", 32),
		}
		var out bytes.Buffer
		err := run(context.Background(), []string{"flashauth", "serve"}, envFrom(env), nil, &out, &out)
		if err == nil {
			t.Fatal("serve started on a port in use")
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "FLASHAUTH_ADDR:") || !strings.Contains(msg, "address already in use") || strings.Contains(msg, "\n") {
			t.Errorf("error %q: want one line naming FLASHAUTH_ADDR and the address in use", msg)
		}
	}

	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		serve(t, "sqlite:"+filepath.Join(dir, "flashauth.db"))
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			t.Errorf("serve left %s behind", e.Name())
		}
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t) // a fresh, empty schema
		serve(t, url)
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var tables []string
		rows, err := conn.Query(t.Context(), `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, name)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(tables) > 0 {
			t.Errorf("serve created tables %q in the schema", tables)
		}
	})
}

// serve needs a secret key to seal its signing keys: without one it refuses
// in one line that names both ways to give it and how to make one, before it
// touches the database.
func TestServeRequiresSecretKey(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"FLASHAUTH_ADDR": "127.0.0.1:0", "FLASHAUTH_DATABASE_URL": "sqlite:" + filepath.Join(dir, "flashauth.db"),
		"GITHUB_CLIENT_ID": "Iv1.x", "GITHUB_CLIENT_SECRET": "sek",
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"flashauth", "serve"}, envFrom(env), nil, &out, &out)
	if err == nil {
		t.Fatal("serve started without a secret key")
	}
	msg := err.Error()
	for _, want := range []string{"FLASHAUTH_SECRET_KEY ", "FLASHAUTH_SECRET_KEY_FILE", "openssl rand"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is more than one line: %q", msg)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("serve created %s without a secret key", entries[0].Name())
	}
}

// The secret keys come from the variables or from files (trimmed, as
// GITHUB_CLIENT_SECRET_FILE), and are used as given.
func TestSecretKeyFromFile(t *testing.T) {
	dir := t.TempDir()
	key, old := strings.Repeat("n", 44), strings.Repeat("o", 32)
	keyFile, oldFile := filepath.Join(dir, "key"), filepath.Join(dir, "old")
	for f, v := range map[string]string{keyFile: key + "\n", oldFile: "  " + old + "\n"} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := map[string]string{"GITHUB_CLIENT_ID": "Iv1.x", "GITHUB_CLIENT_SECRET": "sek"}
	tests := []struct {
		name     string
		env      map[string]string
		key, old string
	}{
		{"variables", map[string]string{"FLASHAUTH_SECRET_KEY": key, "FLASHAUTH_SECRET_KEY_OLD": old}, key, old},
		{"files", map[string]string{"FLASHAUTH_SECRET_KEY_FILE": keyFile, "FLASHAUTH_SECRET_KEY_OLD_FILE": oldFile}, key, old},
		{"no old key", map[string]string{"FLASHAUTH_SECRET_KEY_FILE": keyFile}, key, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range base {
				tc.env[k] = v
			}
			c, err := parseConfig(nil, envFrom(tc.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if string(c.SecretKey) != tc.key {
				t.Errorf("secret key of %d bytes, want the %d given", len(c.SecretKey), len(tc.key))
			}
			var gotOld string
			if len(c.OldSecretKeys) == 1 {
				gotOld = string(c.OldSecretKeys[0])
			}
			if gotOld != tc.old || len(c.OldSecretKeys) > 1 {
				t.Errorf("old secret keys %d (first %d bytes), want %q", len(c.OldSecretKeys), len(gotOld), tc.old)
			}
		})
	}
}

// A *_FILE setting that names something huge or endless (a log file, a
// disk, /dev/urandom) is refused after a bounded read, not read whole.
func TestSecretFileIsBounded(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("k"), 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readSecretFile("FLASHAUTH_SECRET_KEY_FILE", big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a 1 MiB secret file: %v, want a refusal", err) // (and /dev/zero below would never end)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		if _, err := readSecretFile("GITHUB_CLIENT_SECRET_FILE", "/dev/zero"); err == nil {
			t.Errorf("/dev/zero accepted as a secret file")
		}
	}
	ok := filepath.Join(t.TempDir(), "ok")
	if err := os.WriteFile(ok, []byte(strings.Repeat("k", 64)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := readSecretFile("FLASHAUTH_SECRET_KEY_FILE", ok); err != nil || got != strings.Repeat("k", 64) {
		t.Errorf("a normal secret file: %q, %v", got, err)
	}
}
