package main

import (
	"bytes"
	"context"
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
