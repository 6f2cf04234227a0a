package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/flashbacktech/flashauth"
)

const ledgerColumns = `kind, key, claim_id, state, lease_until, sealed, expires_at, created_at`

// ledgerSQL is the SQL of the ledger for some kinds. Every statement takes
// the same arguments in the same order whichever the table, so that the
// methods below run either (see the argument lists at each use): the
// statements of tokenLedger number their parameters and skip the kind.
type ledgerSQL struct {
	// get reads the entry: (kind, key).
	get string
	// claim takes the entry when it is absent or dead: (kind, key,
	// claimID, pending, leaseUntil, now, then replaceDead's four). An entry
	// is live (blocks new claims) while it is done and its expiry is after
	// now, or pending and its lease_until is after now; a missing time
	// counts as passed. The upsert's WHERE is that negated, so a live entry
	// is left alone and nothing changes. The statements run in order until
	// one changes a row (see firstChange): an entry lives in one place, which
	// each statement but the last rules out when it changes nothing.
	claim []string
	// commit is claim for an entry done at once (CommitLedger): (kind, key,
	// claimID, done, sealed, expiresAt, now, then replaceDead's four).
	commit []string
	// complete makes claimID's pending entry done: (done, sealed,
	// expiresAt, kind, key, claimID, pending); run as claim is.
	complete []string
	// release deletes claimID's pending entry: (kind, key, claimID, pending).
	release []string
	// purge deletes dead entries: (done, nowMS, pending, nowMS).
	purge []string
}

// ledgerFor returns the SQL of kind's ledger entries.
func ledgerFor(kind string) *ledgerSQL {
	switch kind {
	case flashauth.LedgerGitHubRefresh:
		return &tokenLedger
	case flashauth.LedgerSessionRefresh:
		return &sessionLedger
	}
	return &plainLedger
}

// firstChange runs qs with args in order until one changes a row, and
// reports whether one did.
func firstChange(ctx context.Context, tx *wtx, qs []string, args ...any) (bool, error) {
	for _, q := range qs {
		res, err := tx.exec(ctx, q, args...)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err == nil, err
		}
	}
	return false, nil
}

// liveEntry is the condition that the entry in table, whose expiry column
// is expires, is live. Its four parameters, named by p: the done state,
// now, the pending state, now. IS rather than =: a row without an entry
// has a NULL state.
func liveEntry(table, expires string, p [4]string) string {
	return fmt.Sprintf(`(
				(%[1]s.state IS %[3]s AND %[1]s.%[2]s IS NOT NULL AND %[1]s.%[2]s > %[4]s) OR
				(%[1]s.state IS %[5]s AND %[1]s.lease_until IS NOT NULL AND %[1]s.lease_until > %[6]s))`,
		table, expires, p[0], p[1], p[2], p[3])
}

// replaceDead ends the upsert of a whole entry into table: a dead entry is
// replaced by it, a live one left alone (liveEntry).
func replaceDead(table, expires string, p [4]string) string {
	return `
			WHERE NOT ` + liveEntry(table, expires, p)
}

// numbered names the four parameters of liveEntry ?first to ?first+3.
func numbered(first int) [4]string {
	var p [4]string
	for i := range p {
		p[i] = fmt.Sprintf("?%d", first+i)
	}
	return p
}

// plainUpsert is the conflict clause of plainLedger's claim and commit.
var plainUpsert = plainUpsertFrom([4]string{"?", "?", "?", "?"})

// plainUpsertFrom is plainUpsert with replaceDead's parameters named by p.
func plainUpsertFrom(p [4]string) string {
	return `
			ON CONFLICT (kind, key) DO UPDATE SET
				claim_id = excluded.claim_id, state = excluded.state,
				lease_until = excluded.lease_until, sealed = excluded.sealed,
				expires_at = excluded.expires_at, created_at = excluded.created_at` +
		replaceDead("ledger_entries", "expires_at", p)
}

// plainLedger keeps entries in the ledger_entries table (named ledger
// before migration 0004), keyed by (kind, key): every kind but those of
// tokenLedger and sessionLedger.
var plainLedger = ledgerSQL{
	get: `SELECT ` + ledgerColumns + ` FROM ledger_entries WHERE kind = ? AND key = ?`,
	claim: []string{`INSERT INTO ledger_entries (` + ledgerColumns + `)
			VALUES (?, ?, ?, ?, ?, NULL, NULL, ?)` + plainUpsert},
	commit: []string{`INSERT INTO ledger_entries (` + ledgerColumns + `)
			VALUES (?, ?, ?, ?, NULL, ?, ?, ?)` + plainUpsert},
	complete: []string{`UPDATE ledger_entries SET state = ?, sealed = ?, expires_at = ?
			WHERE kind = ? AND key = ? AND claim_id = ? AND state = ?`},
	release: []string{`DELETE FROM ledger_entries WHERE kind = ? AND key = ? AND claim_id = ? AND state = ?`},
	purge: []string{`DELETE FROM ledger_entries
			WHERE (state = ? AND (expires_at IS NULL OR expires_at <= ?))
			   OR (state = ? AND (lease_until IS NULL OR lease_until <= ?))`},
}

// tokenLedgerColumns are the ledger columns of a lineage row (migration
// 0004): a GitHub refresh token's entry lives in the row of its lineage,
// which the refresh that issued the token inserted. A row with has_lineage
// 0 holds an entry only; a row whose state is NULL holds no entry.
const tokenLedgerColumns = `claim_id, state, lease_until, sealed, ledger_expires_at, ledger_created_at`

// tokenLedgerUntil is when a lineage row's entry dies (its done expiry or
// its pending lease, 0 when missing): the expression of the index
// lineage_ledger_until, which the purge statements must repeat to use it.
const tokenLedgerUntil = `ifnull(CASE WHEN state = 2 THEN ledger_expires_at ELSE lease_until END, 0)`

// tokenUpsert is the conflict clause of tokenLedger's claim and commit,
// whose replaceDead parameters are numbered from first.
func tokenUpsert(first int) string {
	return `
			ON CONFLICT (token_hash) DO UPDATE SET
				claim_id = excluded.claim_id, state = excluded.state,
				lease_until = excluded.lease_until, sealed = excluded.sealed,
				ledger_expires_at = excluded.ledger_expires_at, ledger_created_at = excluded.ledger_created_at` +
		replaceDead("lineage", "ledger_expires_at", numbered(first))
}

// tokenLedger keeps LedgerGitHubRefresh entries in the lineage table.
var tokenLedger = ledgerSQL{
	get: `SELECT ?1, token_hash, ` + tokenLedgerColumns + ` FROM lineage
			WHERE token_hash = ?2 AND state IS NOT NULL`,
	claim: []string{`INSERT INTO lineage (token_hash, has_lineage, ` + tokenLedgerColumns + `)
			VALUES (?2, 0, ?3, ?4, ?5, NULL, NULL, ?6)` + tokenUpsert(7)},
	commit: []string{`INSERT INTO lineage (token_hash, has_lineage, ` + tokenLedgerColumns + `)
			VALUES (?2, 0, ?3, ?4, NULL, ?5, ?6, ?7)` + tokenUpsert(8)},
	complete: []string{`UPDATE lineage SET state = ?1, sealed = ?2, ledger_expires_at = ?3
			WHERE token_hash = ?5 AND claim_id = ?6 AND state = ?7`},
	release: []string{
		`DELETE FROM lineage WHERE token_hash = ?2 AND claim_id = ?3 AND state = ?4 AND has_lineage = 0`,
		`UPDATE lineage SET ` + clearTokenLedger + ` WHERE token_hash = ?2 AND claim_id = ?3 AND state = ?4`,
	},
	purge: []string{
		`DELETE FROM lineage WHERE state IS NOT NULL AND ` + tokenLedgerUntil + ` <= ?4 AND has_lineage = 0`,
		`UPDATE lineage SET ` + clearTokenLedger + ` WHERE state IS NOT NULL AND ` + tokenLedgerUntil + ` <= ?4`,
	},
}

// sessionLedger keeps a LedgerSessionRefresh entry in the row of its
// refresh token in session_refresh_tokens (migration 0005) when there is
// one, in ledger_entries otherwise (a verdict on a hash never issued). The
// insert of a token row moves an entry of its hash from ledger_entries
// into it (insertSessionToken), so an entry is in one place only. The
// token columns are those of tokenLedgerColumns.
var sessionLedger = ledgerSQL{
	get: `SELECT ?1, hash, ` + tokenLedgerColumns + ` FROM session_refresh_tokens
			WHERE hash = ?2 AND state IS NOT NULL
		UNION ALL
		SELECT ` + ledgerColumns + ` FROM ledger_entries WHERE kind = ?1 AND key = ?2`,
	claim: []string{
		`UPDATE session_refresh_tokens SET claim_id = ?3, state = ?4, lease_until = ?5, sealed = NULL,
				ledger_expires_at = NULL, ledger_created_at = ?6
			WHERE hash = ?2 AND NOT ` + liveEntry("session_refresh_tokens", "ledger_expires_at", numbered(7)),
		`INSERT INTO ledger_entries (` + ledgerColumns + `)
			SELECT ?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6 ` + noSessionToken + plainUpsertFrom(numbered(7)),
	},
	commit: []string{
		`UPDATE session_refresh_tokens SET claim_id = ?3, state = ?4, lease_until = NULL, sealed = ?5,
				ledger_expires_at = ?6, ledger_created_at = ?7
			WHERE hash = ?2 AND NOT ` + liveEntry("session_refresh_tokens", "ledger_expires_at", numbered(8)),
		`INSERT INTO ledger_entries (` + ledgerColumns + `)
			SELECT ?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7 ` + noSessionToken + plainUpsertFrom(numbered(8)),
	},
	complete: []string{
		`UPDATE session_refresh_tokens SET state = ?1, sealed = ?2, ledger_expires_at = ?3
			WHERE hash = ?5 AND claim_id = ?6 AND state = ?7`,
		`UPDATE ledger_entries SET state = ?1, sealed = ?2, expires_at = ?3
			WHERE kind = ?4 AND key = ?5 AND claim_id = ?6 AND state = ?7`,
	},
	release: []string{
		`UPDATE session_refresh_tokens SET ` + clearTokenLedger + ` WHERE hash = ?2 AND claim_id = ?3 AND state = ?4`,
		plainLedger.release[0],
	},
	// plainLedger's purge covers the entries in ledger_entries.
	purge: []string{
		`UPDATE session_refresh_tokens SET ` + clearTokenLedger + ` WHERE state IS NOT NULL AND ` + tokenLedgerUntil + ` <= ?4`,
	},
}

// noSessionToken keeps sessionLedger's upserts into ledger_entries to the
// hashes without a token row (the SELECT's WHERE also keeps the upsert's
// ON CONFLICT from parsing as a join constraint).
const noSessionToken = `WHERE NOT EXISTS (SELECT 1 FROM session_refresh_tokens WHERE hash = ?2)`

// clearTokenLedger removes the entry from a lineage row that keeps its
// lineage, or from a session token's row.
const clearTokenLedger = `claim_id = NULL, state = NULL, lease_until = NULL, sealed = NULL,
			ledger_expires_at = NULL, ledger_created_at = NULL`

type rowScanner interface {
	Scan(dest ...any) error
}

func scanLedger(r rowScanner) (flashauth.LedgerEntry, error) {
	var (
		e                         flashauth.LedgerEntry
		lease, expires, createdAt sql.NullInt64
	)
	if err := r.Scan(&e.Kind, &e.Key, &e.ClaimID, &e.State, &lease, &e.Sealed, &expires, &createdAt); err != nil {
		return flashauth.LedgerEntry{}, err
	}
	e.LeaseUntil, e.ExpiresAt, e.CreatedAt = fromMS(lease), fromMS(expires), fromMS(createdAt)
	return e, nil
}

// ClaimLedger implements flashauth.LedgerStore. The write and, when it
// changed nothing, the read of the live entry share one BEGIN IMMEDIATE
// transaction, so no other writer, in this process or another, can slip in
// between "is there a live entry?" and "take it".
func (db *DB) ClaimLedger(ctx context.Context, kind string, key []byte, claimID string, now, leaseUntil time.Time) (flashauth.LedgerEntry, bool, error) {
	var entry flashauth.LedgerEntry
	err := db.writeTx(ctx, "claim ledger", func(ctx context.Context, tx *wtx) error {
		// Now compares in whole milliseconds: for a stored millisecond m,
		// m > floor(now) exactly when the time m is after now.
		nowMS := now.UnixMilli()
		l := ledgerFor(kind)
		changed, err := firstChange(ctx, tx, l.claim, kind, key, claimID, flashauth.LedgerPending, ms(leaseUntil), ms(now),
			flashauth.LedgerDone, nowMS, flashauth.LedgerPending, nowMS)
		if err != nil {
			return err
		}
		if !changed {
			// A live entry blocked the claim: report it.
			entry, err = scanLedger(tx.queryRow(ctx, l.get, kind, key))
			return err
		}
		// Absent or dead: a fresh pending entry replaced whatever was there.
		entry = flashauth.LedgerEntry{
			Kind: kind, Key: bytes.Clone(key), ClaimID: claimID, State: flashauth.LedgerPending,
			LeaseUntil: leaseUntil, CreatedAt: now,
		}
		return nil
	})
	if err != nil {
		return flashauth.LedgerEntry{}, false, err
	}
	// Same precision as a later GetLedger returns.
	entry.LeaseUntil, entry.CreatedAt = roundMS(entry.LeaseUntil), roundMS(entry.CreatedAt)
	held := entry.State == flashauth.LedgerPending && entry.ClaimID == claimID
	return entry, held, nil
}

// CommitLedger implements flashauth.LedgerStore: the entry is written
// first, by the claim's upsert, so that a live entry stops the call before
// anything else is; the rotation's conflict then rolls the entry back with
// it (the body fails, see batch.go).
func (db *DB) CommitLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, now, expiresAt time.Time, rotation *flashauth.SessionRotation) (flashauth.LedgerEntry, bool, error) {
	var (
		entry     flashauth.LedgerEntry
		committed bool
	)
	err := db.writeTx(ctx, "commit ledger", func(ctx context.Context, tx *wtx) error {
		nowMS := now.UnixMilli()
		l := ledgerFor(kind)
		var err error
		committed, err = firstChange(ctx, tx, l.commit, kind, key, claimID, flashauth.LedgerDone, sealed, ms(expiresAt), ms(now),
			flashauth.LedgerDone, nowMS, flashauth.LedgerPending, nowMS)
		if err != nil {
			return err
		}
		if !committed {
			entry, err = scanLedger(tx.queryRow(ctx, l.get, kind, key))
			return err
		}
		if rotation != nil {
			if err := rotateSession(ctx, tx, rotation); err != nil {
				return err
			}
		}
		entry = flashauth.LedgerEntry{
			Kind: kind, Key: bytes.Clone(key), ClaimID: claimID, State: flashauth.LedgerDone,
			Sealed: bytes.Clone(sealed), ExpiresAt: expiresAt, CreatedAt: now,
		}
		return nil
	})
	if err != nil {
		return flashauth.LedgerEntry{}, false, err
	}
	entry.ExpiresAt, entry.CreatedAt = roundMS(entry.ExpiresAt), roundMS(entry.CreatedAt)
	return entry, committed, nil
}

// roundMS returns t as it reads back from the store.
func roundMS(t time.Time) time.Time {
	return fromMS(sql.NullInt64{Int64: t.UnixMilli(), Valid: !t.IsZero()})
}

// CompleteLedger implements flashauth.LedgerStore.
func (db *DB) CompleteLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, expiresAt time.Time, lineage []flashauth.Lineage) error {
	return db.writeTx(ctx, "complete ledger", func(ctx context.Context, tx *wtx) error {
		changed, err := firstChange(ctx, tx, ledgerFor(kind).complete, flashauth.LedgerDone, sealed, ms(expiresAt), kind, key, claimID, flashauth.LedgerPending)
		if err != nil {
			return err
		}
		if !changed {
			return flashauth.ErrClaimLost
		}
		for _, l := range lineage {
			if err := putLineage(ctx, tx, l); err != nil {
				return fmt.Errorf("lineage: %w", err)
			}
		}
		return nil
	})
}

// ReleaseLedger implements flashauth.LedgerStore.
func (db *DB) ReleaseLedger(ctx context.Context, kind string, key []byte, claimID string) error {
	return db.writeTx(ctx, "release ledger", func(ctx context.Context, tx *wtx) error {
		for _, q := range ledgerFor(kind).release {
			if _, err := tx.exec(ctx, q, kind, key, claimID, flashauth.LedgerPending); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetLedger implements flashauth.LedgerStore.
func (db *DB) GetLedger(ctx context.Context, kind string, key []byte) (flashauth.LedgerEntry, error) {
	e, err := scanLedger(db.readRow(ctx, ledgerFor(kind).get, kind, key))
	if err != nil {
		return flashauth.LedgerEntry{}, db.fail("get ledger", err)
	}
	return e, nil
}

// PurgeLedger implements flashauth.LedgerStore. A missing time counts as
// passed, as in the claim: such a row could never be replayed or held.
func (db *DB) PurgeLedger(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.writeTx(ctx, "purge ledger", func(ctx context.Context, tx *wtx) error {
		n = 0
		for _, l := range []*ledgerSQL{&plainLedger, &tokenLedger, &sessionLedger} {
			for _, q := range l.purge {
				res, err := tx.ExecContext(ctx, q, flashauth.LedgerDone, now.UnixMilli(), flashauth.LedgerPending, now.UnixMilli())
				if err != nil {
					return err
				}
				d, err := res.RowsAffected()
				if err != nil {
					return err
				}
				n += d
			}
		}
		return nil
	})
	return n, err
}
