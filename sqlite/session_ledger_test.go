package sqlite

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

// TestMigrationMovesSessionLedgerIntoTokens builds a database at schema
// version 4 (session_refresh entries in ledger_entries, the current refresh
// token flagged in session_tokens), opens it with the current migrations,
// and requires every record to read back as before and to behave as
// before: the current hash still rotates and a rotated-out one does not,
// a live entry blocks a commit, the purge deletes dead entries. The
// session_refresh entries of known hashes move into their token rows,
// others stay in ledger_entries, and session_tokens is renamed so that an
// older binary fails instead of rotating by a flag this one no longer reads.
func TestMigrationMovesSessionLedgerIntoTokens(t *testing.T) {
	now := time.UnixMilli(1764120000000).UTC()
	at := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
	h := func(s string) []byte { return seal.Hash(s) }
	ms := func(v int64) time.Time { return time.UnixMilli(v).UTC() }

	db := migratedFrom(t, 4, now,
		`INSERT INTO organizations (id, name, created_at) VALUES ('o1', 'org', 1)`,
		`INSERT INTO users (id, github_id, login, email, name, image_url, org_id, created_at, updated_at)
			VALUES ('u1', 1, 'l', 'e', 'n', 'i', 'o1', 1, 2)`,
		// s1: a rotated out to b; s2 revoked, its current c.
		`INSERT INTO sessions (id, user_id, provider, device_info, ip_address, user_agent, created_at, last_used_at, expires_at, revoked_at) VALUES
			('s1', 'u1', 'GITHUB', NULL, 'ip', 'ua', 1, 2, `+itoa(at(time.Hour))+`, NULL),
			('s2', 'u1', 'GITHUB', NULL, 'ip', 'ua', 1, 2, `+itoa(at(time.Hour))+`, 3)`,
		`INSERT INTO session_tokens (hash, session_id, current, created_at) VALUES
			(x'`+hex(h("a"))+`', 's1', 0, 1),
			(x'`+hex(h("b"))+`', 's1', 1, 2),
			(x'`+hex(h("c"))+`', 's2', 1, 1)`,
		// a's rotation verdict, live; a verdict on z, never issued; a
		// github_code entry under a's hash.
		`INSERT INTO ledger_entries (kind, key, claim_id, state, lease_until, sealed, expires_at, created_at) VALUES
			('session_refresh', x'`+hex(h("a"))+`', 'ca', 2, NULL, x'0102', `+itoa(at(time.Minute))+`, 4),
			('session_refresh', x'`+hex(h("z"))+`', 'cz', 1, `+itoa(at(time.Minute))+`, NULL, NULL, 5),
			('github_code', x'`+hex(h("a"))+`', 'cg', 2, NULL, x'03', `+itoa(at(time.Minute))+`, 6)`,
	)
	noTable(t, db, "session_tokens", "an older binary would keep rotating there")
	// inLedger fails unless ledger_entries holds exactly the entries of
	// these claim ids.
	inLedger := func(stage string, want ...string) {
		t.Helper()
		rows, err := db.read.Query(`SELECT claim_id FROM ledger_entries ORDER BY claim_id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				t.Fatal(err)
			}
			got = append(got, c)
		}
		if !cmp.Equal(got, want) {
			t.Errorf("%s: entries in ledger_entries: %v, want %v (a session token's in its row)", stage, got, want)
		}
	}
	inLedger("migrated", "cg", "cz")

	wantEntry := map[string]*flashauth.LedgerEntry{
		"a": {Kind: flashauth.LedgerSessionRefresh, Key: h("a"), ClaimID: "ca", State: flashauth.LedgerDone,
			Sealed: []byte{1, 2}, ExpiresAt: ms(at(time.Minute)), CreatedAt: ms(4)},
		"z": {Kind: flashauth.LedgerSessionRefresh, Key: h("z"), ClaimID: "cz", State: flashauth.LedgerPending,
			LeaseUntil: ms(at(time.Minute)), CreatedAt: ms(5)},
	}
	wantSession := map[string]string{"a": "s1", "b": "s1", "c": "s2"}
	wantCurrent := map[string]bool{"b": true, "c": true}
	check := func(stage string) {
		t.Helper()
		for _, k := range []string{"a", "b", "c", "d", "z"} {
			var want flashauth.SessionLedger
			e, err := db.GetLedger(t.Context(), flashauth.LedgerSessionRefresh, h(k))
			if w := wantEntry[k]; w == nil {
				if !errors.Is(err, flashauth.ErrNotFound) {
					t.Errorf("%s: GetLedger(%s) = %+v, %v; want not found", stage, k, e, err)
				}
			} else if err != nil || !cmp.Equal(e, *w) {
				t.Errorf("%s: GetLedger(%s) = %v; diff (-want +got):\n%s", stage, k, err, cmp.Diff(*w, e))
			} else {
				want.Entry, want.HasEntry = *w, true
			}
			s, current, err := db.FindSessionByRefresh(t.Context(), h(k))
			if id := wantSession[k]; id == "" {
				if !errors.Is(err, flashauth.ErrNotFound) {
					t.Errorf("%s: FindSessionByRefresh(%s) = %s, %v; want not found", stage, k, s.ID, err)
				}
			} else if err != nil || s.ID != id || current != wantCurrent[k] {
				t.Errorf("%s: FindSessionByRefresh(%s) = %s current %v, %v; want %s current %v", stage, k, s.ID, current, err, id, wantCurrent[k])
			} else {
				u, err := db.GetUser(t.Context(), s.UserID)
				if err != nil {
					t.Fatal(err)
				}
				want.Session, want.Current, want.HasSession, want.User, want.HasUser = s, current, true, u, true
			}
			got, err := db.GetSessionLedger(t.Context(), flashauth.LedgerSessionRefresh, h(k))
			if err != nil || !cmp.Equal(got, want) {
				t.Errorf("%s: GetSessionLedger(%s) = %v; diff (-want +got):\n%s", stage, k, err, cmp.Diff(want, got))
			}
		}
		if e, err := db.GetLedger(t.Context(), flashauth.LedgerGitHubCode, h("a")); stage != "purged" && (err != nil || e.ClaimID != "cg") {
			t.Errorf("%s: github_code entry = %+v, %v; want it kept", stage, e, err)
		}
	}
	check("migrated")

	commit := func(k, next string, when time.Time) (flashauth.LedgerEntry, bool, error) {
		return db.CommitLedger(t.Context(), flashauth.LedgerSessionRefresh, h(k), "x"+k, []byte("v"), when, when.Add(time.Minute),
			&flashauth.SessionRotation{SessionID: wantSession[k], OldHash: h(k), NewHash: h(next), Now: when, ExpiresAt: when.Add(time.Hour)})
	}
	// a's live entry blocks a commit; c's session is revoked; b, current,
	// rotates to d.
	if e, committed, err := commit("a", "d", now); err != nil || committed || e.ClaimID != "ca" {
		t.Errorf("commit on a's live entry: %+v committed %v, %v", e, committed, err)
	}
	if _, _, err := commit("c", "d", now); !errors.Is(err, flashauth.ErrConflict) {
		t.Errorf("rotation of revoked s2: %v, want ErrConflict", err)
	}
	if _, committed, err := commit("b", "d", now); err != nil || !committed {
		t.Fatalf("rotation of b: committed %v, %v", committed, err)
	}
	wantEntry["b"] = &flashauth.LedgerEntry{Kind: flashauth.LedgerSessionRefresh, Key: h("b"), ClaimID: "xb",
		State: flashauth.LedgerDone, Sealed: []byte("v"), ExpiresAt: now.Add(time.Minute), CreatedAt: now}
	wantSession["d"], wantCurrent["b"], wantCurrent["d"] = "s1", false, true
	check("rotated")
	inLedger("rotated", "cg", "cz")

	// Two minutes on, every session_refresh entry is dead: the purge
	// deletes a's, b's and z's, and the github_code one.
	n, err := db.PurgeLedger(t.Context(), now.Add(2*time.Minute))
	if err != nil || n != 4 {
		t.Errorf("PurgeLedger = %d, %v; want 4", n, err)
	}
	wantEntry = nil
	check("purged")
}

// TestGetSessionLedgerOtherKind: GetSessionLedger reads where a session
// refresh's entries live, so it refuses another kind rather than read none
// of its entries.
func TestGetSessionLedgerOtherKind(t *testing.T) {
	db := openInternal(t, filepath.Join(t.TempDir(), "kind.db"))
	h := seal.Hash("rt")
	if _, _, err := db.ClaimLedger(t.Context(), flashauth.LedgerGitHubCode, h, "c1", time.Now(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r, err := db.GetSessionLedger(t.Context(), flashauth.LedgerGitHubCode, h); err == nil {
		t.Errorf("GetSessionLedger of github_code = %+v, nil; want an error", r)
	}
}
