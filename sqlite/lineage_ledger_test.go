package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

// TestMigrationMovesRefreshLedgerIntoLineage builds a database at schema
// version 3 (github_refresh entries in the ledger table), opens it with the
// current migrations, and requires every record to read back as before,
// to behave as before (a live entry blocks a claim, a dead one is taken,
// the purge deletes dead entries and keeps lineage), with other kinds
// left in the ledger table, renamed ledger_entries so that an older
// binary, which would look for github_refresh entries there, fails instead
// of claiming a token a newer replica holds.
func TestMigrationMovesRefreshLedgerIntoLineage(t *testing.T) {
	now := time.UnixMilli(1764120000000).UTC()
	at := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
	h := func(s string) []byte { return seal.Hash(s) }

	db := migratedFrom(t, 3, now,
		// lineage of a, b (b rotated to c) and c
		`INSERT INTO lineage (token_hash, parent_hash, user_id, replaced_by, created_at, rotated_at, expires_at) VALUES
			(x'`+hex(h("a"))+`', NULL, 'u1', NULL, 1, NULL, 9),
			(x'`+hex(h("b"))+`', NULL, 'u2', x'`+hex(h("c"))+`', 2, 3, NULL),
			(x'`+hex(h("c"))+`', x'`+hex(h("b"))+`', 'u2', NULL, 3, NULL, NULL)`,
		`INSERT INTO ledger (kind, key, claim_id, state, lease_until, sealed, expires_at, created_at) VALUES
			('github_refresh', x'`+hex(h("b"))+`', 'cb', 2, 5, x'0102', `+itoa(at(time.Minute))+`, 4),
			('github_refresh', x'`+hex(h("d"))+`', 'cd', 1, `+itoa(at(time.Minute))+`, NULL, NULL, 6),
			('github_refresh', x'`+hex(h("e"))+`', 'ce', 2, 7, x'03', `+itoa(at(-time.Minute))+`, 8),
			('session_refresh', x'`+hex(h("b"))+`', 'sb', 1, `+itoa(at(time.Minute))+`, NULL, NULL, 9)`,
	)
	noTable(t, db, "ledger", "an older binary would keep claiming there")
	var leftInLedger int
	if err := db.read.QueryRow(`SELECT count(*) FROM ledger_entries WHERE kind = 'github_refresh'`).Scan(&leftInLedger); err != nil || leftInLedger != 0 {
		t.Errorf("github_refresh rows left in ledger: %d, %v", leftInLedger, err)
	}
	ms := func(v int64) time.Time { return time.UnixMilli(v).UTC() }
	wantEntry := map[string]*flashauth.LedgerEntry{
		"b": {Kind: flashauth.LedgerGitHubRefresh, Key: h("b"), ClaimID: "cb", State: flashauth.LedgerDone,
			LeaseUntil: ms(5), Sealed: []byte{1, 2}, ExpiresAt: ms(at(time.Minute)), CreatedAt: ms(4)},
		"d": {Kind: flashauth.LedgerGitHubRefresh, Key: h("d"), ClaimID: "cd", State: flashauth.LedgerPending,
			LeaseUntil: ms(at(time.Minute)), CreatedAt: ms(6)},
		"e": {Kind: flashauth.LedgerGitHubRefresh, Key: h("e"), ClaimID: "ce", State: flashauth.LedgerDone,
			LeaseUntil: ms(7), Sealed: []byte{3}, ExpiresAt: ms(at(-time.Minute)), CreatedAt: ms(8)},
	}
	wantLineage := map[string]*flashauth.Lineage{
		"a": {TokenHash: h("a"), UserID: "u1", CreatedAt: ms(1), ExpiresAt: ms(9)},
		"b": {TokenHash: h("b"), UserID: "u2", ReplacedBy: h("c"), CreatedAt: ms(2), RotatedAt: ms(3)},
		"c": {TokenHash: h("c"), ParentHash: h("b"), UserID: "u2", CreatedAt: ms(3)},
	}
	check := func(stage string) {
		t.Helper()
		for _, k := range []string{"a", "b", "c", "d", "e"} {
			e, err := db.GetLedger(t.Context(), flashauth.LedgerGitHubRefresh, h(k))
			if w := wantEntry[k]; w == nil {
				if !errors.Is(err, flashauth.ErrNotFound) {
					t.Errorf("%s: GetLedger(%s) = %+v, %v; want not found", stage, k, e, err)
				}
			} else if err != nil || !cmp.Equal(e, *w) {
				t.Errorf("%s: GetLedger(%s) = %v; diff (-want +got):\n%s", stage, k, err, cmp.Diff(*w, e))
			}
			l, err := db.GetLineage(t.Context(), h(k))
			if w := wantLineage[k]; w == nil {
				if !errors.Is(err, flashauth.ErrNotFound) {
					t.Errorf("%s: GetLineage(%s) = %+v, %v; want not found", stage, k, l, err)
				}
			} else if err != nil || !cmp.Equal(l, *w) {
				t.Errorf("%s: GetLineage(%s) = %v; diff (-want +got):\n%s", stage, k, err, cmp.Diff(*w, l))
			}
			ll, err := db.GetLineageLedger(t.Context(), flashauth.LedgerGitHubRefresh, h(k))
			var want flashauth.LineageLedger
			if w := wantEntry[k]; w != nil {
				want.Entry, want.HasEntry = *w, true
			}
			if w := wantLineage[k]; w != nil {
				want.Lineage, want.HasLineage = *w, true
			}
			if err != nil || !cmp.Equal(ll, want) {
				t.Errorf("%s: GetLineageLedger(%s) = %v; diff (-want +got):\n%s", stage, k, err, cmp.Diff(want, ll))
			}
		}
		s, err := db.GetLedger(t.Context(), flashauth.LedgerSessionRefresh, h("b"))
		if err != nil || s.ClaimID != "sb" {
			t.Errorf("%s: session_refresh entry = %+v, %v; want it kept", stage, s, err)
		}
	}
	check("migrated")

	// A live entry (b, done; d, pending) blocks a claim; a dead one (e) is taken.
	for _, k := range []string{"b", "d"} {
		if _, held, err := db.ClaimLedger(t.Context(), flashauth.LedgerGitHubRefresh, h(k), "x", now, now.Add(time.Minute)); err != nil || held {
			t.Errorf("claim of live %s: held=%v, %v", k, held, err)
		}
	}
	if _, held, err := db.ClaimLedger(t.Context(), flashauth.LedgerGitHubRefresh, h("e"), "x", now, now.Add(time.Second)); err != nil || !held {
		t.Fatalf("claim of dead e: held=%v, %v", held, err)
	}
	wantEntry["e"] = &flashauth.LedgerEntry{Kind: flashauth.LedgerGitHubRefresh, Key: h("e"), ClaimID: "x",
		State: flashauth.LedgerPending, LeaseUntil: now.Add(time.Second), CreatedAt: now}
	check("claimed")

	// Two minutes on, every github_refresh entry is dead: the purge deletes
	// them (and the session_refresh one, pending past its lease), the
	// lineage stays.
	n, err := db.PurgeLedger(t.Context(), now.Add(2*time.Minute))
	if err != nil || n != 4 {
		t.Errorf("PurgeLedger = %d, %v; want 4", n, err)
	}
	wantEntry = nil
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if e, err := db.GetLedger(t.Context(), flashauth.LedgerGitHubRefresh, h(k)); !errors.Is(err, flashauth.ErrNotFound) {
			t.Errorf("after purge: GetLedger(%s) = %+v, %v", k, e, err)
		}
		l, err := db.GetLineage(t.Context(), h(k))
		if w := wantLineage[k]; w != nil && (err != nil || !cmp.Equal(l, *w)) {
			t.Errorf("after purge: GetLineage(%s) = %v; diff:\n%s", k, err, cmp.Diff(*w, l))
		}
	}
	var rows int
	if err := db.read.QueryRow(`SELECT count(*) FROM lineage`).Scan(&rows); err != nil || rows != 3 {
		t.Errorf("lineage rows after purge: %d, %v; want 3 (the entry-only rows deleted)", rows, err)
	}
}

// TestPurgeLedgerUsesItsIndex: the purge of GitHub refresh entries reaches
// them through lineage_ledger_until, not by reading every lineage row
// (lineage is kept for good); that of session refresh entries in token rows
// through session_refresh_tokens_ledger_until.
func TestPurgeLedgerUsesItsIndex(t *testing.T) {
	db := openInternal(t, filepath.Join(t.TempDir(), "plan.db"))
	want := map[string]string{}
	for _, q := range tokenLedger.purge {
		want[q] = "SEARCH lineage USING INDEX lineage_ledger_until"
	}
	for _, q := range sessionLedger.purge {
		want[q] = "SEARCH session_refresh_tokens USING INDEX session_refresh_tokens_ledger_until"
	}
	for q, want := range want {
		rows, err := db.read.Query(`EXPLAIN QUERY PLAN `+q, 2, 0, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		var plan string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan += detail + "; "
		}
		rows.Close()
		if !contains(plan, want) {
			t.Errorf("plan of %q:\n%s\nwant %q", q, plan, want)
		}
	}
}

func hex(b []byte) string { return fmt.Sprintf("%x", b) }

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// migratedFrom builds a database file at schema version (the first
// version migrations), runs the seed statements on it, then opens it with
// every migration, as an upgraded flashauth would, and requires it to be at
// the latest version.
func migratedFrom(t *testing.T, version int, now time.Time, seed ...string) *DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("v%d.db", version))
	old, err := sql.Open("sqlite", dsn(path, options{busyTimeout: 5 * time.Second}, false))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := old.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := applyMigrations(t.Context(), tx, migrations[:version], now); err != nil {
		t.Fatal(err)
	}
	for _, q := range seed {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	db := openInternal(t, path)
	if v, err := db.MigrationVersion(t.Context()); err != nil || v != LatestVersion() {
		t.Fatalf("version %d, %v; want %d", v, err, LatestVersion())
	}
	return db
}

// noTable fails unless the database has no table or index named name; why
// says what one left behind would let an older binary do.
func noTable(t *testing.T, db *DB, name, why string) {
	t.Helper()
	var n int
	if err := db.read.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = ?`, name).Scan(&n); err != nil || n != 0 {
		t.Errorf("a table named %s is left (%d, %v): %s", name, n, err, why)
	}
}
