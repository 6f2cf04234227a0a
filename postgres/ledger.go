package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flashbacktech/flashauth"
)

const ledgerColumns = `kind, key, claim_id, state, lease_until, sealed, expires_at, created_at`

// ledgerDead is the condition, on the row "ledger" and the time in the
// placeholder now, under which an entry may be replaced or purged. A missing
// time counts as passed.
func ledgerDead(now string) string {
	return `((ledger.state = 2 AND (ledger.expires_at IS NULL OR ledger.expires_at <= ` + now + `))
		OR (ledger.state = 1 AND (ledger.lease_until IS NULL OR ledger.lease_until <= ` + now + `)))`
}

// scanLedgerRows reads every ledger entry of rows (about n of them), by
// kind and key as ledgerKey spells them, and closes rows.
func scanLedgerRows(rows pgx.Rows, n int) (map[string]flashauth.LedgerEntry, error) {
	defer rows.Close()
	got := make(map[string]flashauth.LedgerEntry, n)
	for rows.Next() {
		e, err := scanLedger(rows)
		if err != nil {
			return nil, err
		}
		got[e.Kind+"\x00"+string(e.Key)] = e
	}
	rows.Close()
	return got, rows.Err()
}

func scanLedger(row pgx.Row) (flashauth.LedgerEntry, error) {
	var (
		e                                flashauth.LedgerEntry
		state                            int16
		leaseUntil, expiresAt, createdAt pgtype.Timestamptz
	)
	if err := row.Scan(&e.Kind, &e.Key, &e.ClaimID, &state, &leaseUntil, &e.Sealed, &expiresAt, &createdAt); err != nil {
		return flashauth.LedgerEntry{}, err
	}
	e.State = flashauth.LedgerState(state)
	e.LeaseUntil, e.ExpiresAt, e.CreatedAt = tsVal(leaseUntil), tsVal(expiresAt), tsVal(createdAt)
	return e, nil
}

// ClaimLedger makes (kind, key) a pending entry held by claimID unless a live
// entry exists. Concurrent calls share one transaction (see batch.go).
func (db *DB) ClaimLedger(ctx context.Context, kind string, key []byte, claimID string, now, leaseUntil time.Time) (flashauth.LedgerEntry, bool, error) {
	c := &claimReq{kind: kind, key: key, claimID: claimID, now: now, leaseUntil: leaseUntil}
	if err := db.do(ctx, func(ctx context.Context) error { return db.claims.do(ctx, c) }); err != nil {
		return flashauth.LedgerEntry{}, false, err
	}
	// A caller that already holds a live claim still holds it.
	return c.entry, c.entry.State == flashauth.LedgerPending && c.entry.ClaimID == claimID, nil
}

// claimReq is one ClaimLedger call; entry is its result.
type claimReq struct {
	kind            string
	key             []byte
	claimID         string
	now, leaseUntil time.Time
	entry           flashauth.LedgerEntry
}

func (c *claimReq) ledgerKey() string { return c.kind + "\x00" + string(c.key) }

// claimOne runs one claim in a transaction of its own.
//
// The upsert replaces a dead row and returns it, or returns nothing when the
// row is live. In that case ON CONFLICT has still locked the row it judged,
// so the SELECT that follows in the same transaction reads exactly that
// version: nobody can complete, release or purge it in between.
//
// Both statements go in one pipelined batch, which PostgreSQL runs as one
// implicit transaction (everything up to the batch's Sync): one round trip
// instead of four (BEGIN, upsert, SELECT, COMMIT).
func (db *DB) claimOne(ctx context.Context, send sender, c *claimReq) error {
	batch := &pgx.Batch{}
	batch.Queue(`
		INSERT INTO ledger (`+ledgerColumns+`)
		VALUES ($1, $2, $3, 1, $5, NULL, NULL, $4)
		ON CONFLICT (kind, key) DO UPDATE SET
			claim_id = EXCLUDED.claim_id, state = 1, lease_until = EXCLUDED.lease_until,
			sealed = NULL, expires_at = NULL, created_at = EXCLUDED.created_at
		WHERE `+ledgerDead("$4")+`
		RETURNING `+ledgerColumns,
		c.kind, c.key, c.claimID, tsArg(c.now), tsArg(c.leaseUntil))
	batch.Queue(`SELECT `+ledgerColumns+` FROM ledger WHERE kind = $1 AND key = $2`, c.kind, c.key)
	res := send(ctx, batch)
	claimed, cerr := scanLedger(res.QueryRow())
	current, serr := scanLedger(res.QueryRow())
	if err := res.Close(); err != nil {
		return err
	}
	switch {
	case cerr == nil:
		c.entry = claimed
	case !errors.Is(cerr, pgx.ErrNoRows):
		return cerr
	case errors.Is(serr, pgx.ErrNoRows):
		return errLockedRowVanished
	case serr != nil:
		return serr
	default:
		c.entry = current
	}
	return nil
}

var errLockedRowVanished = errors.New("ledger: locked row vanished")

// claimMany runs claims in one transaction: per round of distinct keys (a
// key claimed twice in one batch goes to a later round, so it behaves as two
// calls one after the other), one upsert of every row in (kind, key) order,
// then one SELECT of the rows, which reads each as the upsert left it (see
// claimOne: a live row was locked, a dead one replaced).
func (db *DB) claimMany(ctx context.Context, send sender, cs []*claimReq, errs []error) error {
	rounds := splitRounds(cs, (*claimReq).ledgerKey)
	batch := &pgx.Batch{}
	for _, r := range rounds {
		slices.SortFunc(r, func(a, b *claimReq) int { return compareKey(a.kind, a.key, b.kind, b.key) })
		kinds, keys := make([]string, len(r)), make([][]byte, len(r))
		ids := make([]string, len(r))
		nows, leases := make([]pgtype.Timestamptz, len(r)), make([]pgtype.Timestamptz, len(r))
		for i, c := range r {
			kinds[i], keys[i], ids[i], nows[i], leases[i] = c.kind, c.key, c.claimID, tsArg(c.now), tsArg(c.leaseUntil)
		}
		batch.Queue(claimManySQL, kinds, keys, ids, nows, leases)
		batch.Queue(selectManySQL, kinds, keys)
	}
	res := send(ctx, batch)
	defer res.Close()
	index := make(map[*claimReq]int, len(cs))
	for i, c := range cs {
		index[c] = i
	}
	for _, r := range rounds {
		if _, err := res.Exec(); err != nil {
			return err
		}
		rows, err := res.Query()
		if err != nil {
			return err
		}
		got, err := scanLedgerRows(rows, len(r))
		if err != nil {
			return err
		}
		for _, c := range r {
			e, ok := got[c.ledgerKey()]
			if !ok {
				errs[index[c]] = errLockedRowVanished
				continue
			}
			c.entry = e
		}
	}
	return res.Close()
}

// claimManySQL is claimOne's upsert for arrays of rows, inserted in the
// order given. The time "now" of each call is its created_at.
var claimManySQL = `
	INSERT INTO ledger (` + ledgerColumns + `)
	SELECT u.kind, u.key, u.claim_id, 1, u.lease_until, NULL, NULL, u.now
	FROM unnest($1::text[], $2::bytea[], $3::text[], $4::timestamptz[], $5::timestamptz[])
		WITH ORDINALITY AS u(kind, key, claim_id, now, lease_until, ord)
	ORDER BY u.ord
	ON CONFLICT (kind, key) DO UPDATE SET
		claim_id = EXCLUDED.claim_id, state = 1, lease_until = EXCLUDED.lease_until,
		sealed = NULL, expires_at = NULL, created_at = EXCLUDED.created_at
	WHERE ` + ledgerDead("EXCLUDED.created_at")

// selectManySQL reads the rows of arrays of keys.
//
// Every set-based statement here reaches the rows of its keys through a
// LATERAL subquery that the planner cannot flatten into a join (OFFSET 0,
// FOR UPDATE), so each key is one lookup of the primary key. A plain join
// with unnest is planned as a hash join over a sequential scan while the
// table is small, and pgx's prepared statement keeps that generic plan as
// the table grows.
var selectManySQL = `SELECT l.* FROM unnest($1::text[], $2::bytea[]) AS u(kind, key)
	CROSS JOIN LATERAL (SELECT ` + ledgerColumns + ` FROM ledger
		WHERE ledger.kind = u.kind AND ledger.key = u.key OFFSET 0) l`

// compareKey orders ledger keys: the order every batch locks rows in.
func compareKey(kindA string, keyA []byte, kindB string, keyB []byte) int {
	if c := strings.Compare(kindA, kindB); c != 0 {
		return c
	}
	return bytes.Compare(keyA, keyB)
}

// splitRounds splits items into rounds whose keys are distinct: round n
// holds the (n+1)th item of every key, in the order given. ON CONFLICT DO
// UPDATE cannot touch one row twice in a statement; rounds run one after the
// other, as the calls would have.
func splitRounds[T any](items []T, key func(T) string) [][]T {
	seen := make(map[string]int, len(items))
	var rounds [][]T
	for _, it := range items {
		k := key(it)
		n := seen[k]
		seen[k] = n + 1
		if n == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[n] = append(rounds[n], it)
	}
	return rounds
}

// CompleteLedger turns claimID's pending entry into a done one and upserts
// lineage, all in one transaction. Concurrent calls share one transaction
// (see batch.go).
func (db *DB) CompleteLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, expiresAt time.Time, lineage []flashauth.Lineage) error {
	// Upserting in a fixed order keeps two completions that share lineage
	// rows from deadlocking.
	lineage = slices.Clone(lineage)
	slices.SortStableFunc(lineage, func(a, b flashauth.Lineage) int {
		return bytes.Compare(a.TokenHash, b.TokenHash)
	})
	c := &completeReq{kind: kind, key: key, claimID: claimID, sealed: sealed, expiresAt: expiresAt, lineage: lineage}
	return db.do(ctx, func(ctx context.Context) error { return db.completions.do(ctx, c) })
}

// completeReq is one CompleteLedger call, its lineage sorted.
type completeReq struct {
	kind      string
	key       []byte
	claimID   string
	sealed    []byte
	expiresAt time.Time
	lineage   []flashauth.Lineage
}

func (c *completeReq) ledgerKey() string { return c.kind + "\x00" + string(c.key) }

// completeOne runs one completion in a transaction of its own, in one
// statement (completeOneSQL): one round trip, and the entry and its lineage
// rows each reached once by primary key.
func (db *DB) completeOne(ctx context.Context, send sender, c *completeReq) error {
	// Upserts of one token hash overwrite every column, so of several the
	// last stands: only it is sent (one statement cannot upsert a row
	// twice). c.lineage is sorted, so equal hashes are neighbours.
	var lineage []flashauth.Lineage
	for i, l := range c.lineage {
		if i+1 < len(c.lineage) && bytes.Equal(l.TokenHash, c.lineage[i+1].TokenHash) {
			continue
		}
		lineage = append(lineage, l)
	}
	batch := &pgx.Batch{}
	batch.Queue(completeOneSQL, append([]any{c.kind, c.key, c.claimID, c.sealed, tsArg(c.expiresAt)}, lineageArrays(lineage)...)...)
	res := send(ctx, batch)
	var done int64
	err := res.QueryRow().Scan(&done)
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return fmt.Errorf("complete ledger: %w", err)
	case done == 0:
		return flashauth.ErrClaimLost
	}
	return nil
}

// completeOneSQL makes the entry ($1, $2) done under claim $3 and upserts
// the lineage rows of the arrays $6-$12, in their order, only if it did:
// the upserts read the UPDATE's RETURNING, so a lost claim writes no
// lineage. It returns how many entries it completed (0 or 1).
var completeOneSQL = `
	WITH done AS (
		UPDATE ledger SET state = 2, sealed = $4, expires_at = $5
		WHERE kind = $1 AND key = $2 AND claim_id = $3 AND state = 1
		RETURNING 1),
	lin AS (
		INSERT INTO lineage (` + lineageColumns + `)
		SELECT ` + lineageColumns + `
		FROM unnest($6::bytea[], $7::bytea[], $8::text[], $9::bytea[], $10::timestamptz[], $11::timestamptz[],
			$12::timestamptz[]) WITH ORDINALITY
			AS u(token_hash, parent_hash, user_id, replaced_by, created_at, rotated_at, expires_at, ord)
		WHERE EXISTS (SELECT 1 FROM done)
		ORDER BY u.ord
		ON CONFLICT (token_hash) DO UPDATE SET ` + lineageUpdateSet + `)
	SELECT count(*) FROM done`

// lineageArrays are the columns of ls as arrays, lineageColumns' order.
func lineageArrays(ls []flashauth.Lineage) []any {
	n := len(ls)
	hashes, parents, replaced := make([][]byte, n), make([][]byte, n), make([][]byte, n)
	users := make([]pgtype.Text, n)
	created, rotated, expires := make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
	for i, l := range ls {
		hashes[i], parents[i], users[i], replaced[i] = l.TokenHash, l.ParentHash, textArg(l.UserID), l.ReplacedBy
		created[i], rotated[i], expires[i] = tsArg(l.CreatedAt), tsArg(l.RotatedAt), tsArg(l.ExpiresAt)
	}
	return []any{hashes, parents, users, replaced, created, rotated, expires}
}

// completeMany runs completions in one transaction: per round of distinct
// keys, the rows still pending under their calls' claims are locked in
// (kind, key) order and made done; then every lineage row is upserted, in rounds of
// distinct token hashes in call order, each only if its call's entry is
// done under its claim - exactly what completeOne writes, call after call.
func (db *DB) completeMany(ctx context.Context, send sender, cs []*completeReq, errs []error) error {
	rounds := splitRounds(cs, (*completeReq).ledgerKey)
	type lin struct {
		l flashauth.Lineage
		c *completeReq
	}
	var all []lin
	for _, c := range cs {
		for _, l := range c.lineage {
			all = append(all, lin{l, c})
		}
	}
	linRounds := splitRounds(all, func(x lin) string { return string(x.l.TokenHash) })
	ledgerArgs := func(r []*completeReq) []any {
		slices.SortFunc(r, func(a, b *completeReq) int { return compareKey(a.kind, a.key, b.kind, b.key) })
		kinds, keys := make([]string, len(r)), make([][]byte, len(r))
		ids, sealed := make([]string, len(r)), make([][]byte, len(r))
		expires := make([]pgtype.Timestamptz, len(r))
		for i, c := range r {
			kinds[i], keys[i], ids[i], sealed[i], expires[i] = c.kind, c.key, c.claimID, c.sealed, tsArg(c.expiresAt)
		}
		return []any{kinds, keys, ids, sealed, expires}
	}
	lineageArgs := func(r []lin) []any {
		slices.SortStableFunc(r, func(a, b lin) int { return bytes.Compare(a.l.TokenHash, b.l.TokenHash) })
		n := len(r)
		ls := make([]flashauth.Lineage, n)
		kinds, keys, ids := make([]string, n), make([][]byte, n), make([]string, n)
		for i, x := range r {
			ls[i], kinds[i], keys[i], ids[i] = x.l, x.c.kind, x.c.key, x.c.claimID
		}
		return append(lineageArrays(ls), kinds, keys, ids)
	}
	batch := &pgx.Batch{}
	// The common batch has distinct keys and distinct token hashes: one
	// statement then completes the entries and upserts the lineage of
	// those it completed (completeManyLineageSQL).
	single := len(rounds) == 1 && len(linRounds) <= 1
	if single {
		var r []lin
		if len(linRounds) == 1 {
			r = linRounds[0]
		}
		batch.Queue(completeManyLineageSQL, append(ledgerArgs(rounds[0]), lineageArgs(r)...)...)
	} else {
		for _, r := range rounds {
			batch.Queue(completeManySQL+` RETURNING kind, key`, ledgerArgs(r)...)
		}
		for _, r := range linRounds {
			batch.Queue(upsertLineageManyIfCompleted, lineageArgs(r)...)
		}
	}
	res := send(ctx, batch)
	defer res.Close()
	index := make(map[*completeReq]int, len(cs))
	for i, c := range cs {
		index[c] = i
	}
	for _, r := range rounds {
		rows, err := res.Query()
		if err != nil {
			return err
		}
		done := make(map[string]bool, len(r))
		for rows.Next() {
			var (
				kind string
				key  []byte
			)
			if err := rows.Scan(&kind, &key); err != nil {
				rows.Close()
				return err
			}
			done[kind+"\x00"+string(key)] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range r {
			if !done[c.ledgerKey()] {
				errs[index[c]] = flashauth.ErrClaimLost
			}
		}
	}
	if !single {
		for range linRounds {
			if _, err := res.Exec(); err != nil {
				return fmt.Errorf("upsert lineage: %w", err)
			}
		}
	}
	return res.Close()
}

// completeManySQL is completeOne's UPDATE for arrays of rows (the keys it
// completed are its RETURNING). It is spelled as an upsert only so that
// every key is one lookup of the primary key (see selectManySQL): the LATERAL subquery
// locks each row that is pending under its claim, in the order given, and
// only those rows are proposed; a locked row cannot vanish, so each one
// conflicts and takes the DO UPDATE branch, which checks the claim again.
// Nothing is ever inserted.
const completeManySQL = `
	INSERT INTO ledger (` + ledgerColumns + `)
	SELECT u.kind, u.key, u.claim_id, 2, NULL, u.sealed, u.expires_at, NULL
	FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bytea[], $5::timestamptz[])
		WITH ORDINALITY AS u(kind, key, claim_id, sealed, expires_at, ord)
	CROSS JOIN LATERAL (SELECT 1 FROM ledger
		WHERE ledger.kind = u.kind AND ledger.key = u.key AND ledger.claim_id = u.claim_id
			AND ledger.state = 1 FOR UPDATE) held
	ORDER BY u.ord
	ON CONFLICT (kind, key) DO UPDATE SET
		state = 2, sealed = EXCLUDED.sealed, expires_at = EXCLUDED.expires_at
	WHERE ledger.claim_id = EXCLUDED.claim_id AND ledger.state = 1`

// completeManyLineageSQL is completeManySQL ($1-$5) and
// upsertLineageManyIfCompleted ($6-$15) in one statement, for a batch of
// distinct keys and distinct token hashes: the lineage rows are those of
// the entries the completion returns (it completed them under their
// claims), so they need no lookup of the ledger of their own. It returns
// the keys completed.
var completeManyLineageSQL = `
	WITH done AS (` + completeManySQL + `
		RETURNING kind, key, claim_id),
	lin AS (
		INSERT INTO lineage (` + lineageColumns + `)
		SELECT u.token_hash, u.parent_hash, u.user_id, u.replaced_by, u.created_at, u.rotated_at, u.expires_at
		FROM unnest($6::bytea[], $7::bytea[], $8::text[], $9::bytea[], $10::timestamptz[], $11::timestamptz[],
			$12::timestamptz[], $13::text[], $14::bytea[], $15::text[]) WITH ORDINALITY
			AS u(token_hash, parent_hash, user_id, replaced_by, created_at, rotated_at, expires_at, kind, key, claim_id, ord)
		WHERE (u.kind, u.key, u.claim_id) IN (SELECT kind, key, claim_id FROM done)
		ORDER BY u.ord
		ON CONFLICT (token_hash) DO UPDATE SET ` + lineageUpdateSet + `)
	SELECT kind, key FROM done`

// upsertLineageManyIfCompleted is upsertLineageIfCompleted for arrays of
// rows, each with the ledger entry and claim it depends on.
var upsertLineageManyIfCompleted = `
	INSERT INTO lineage (token_hash, parent_hash, user_id, replaced_by, created_at, rotated_at, expires_at)
	SELECT u.token_hash, u.parent_hash, u.user_id, u.replaced_by, u.created_at, u.rotated_at, u.expires_at
	FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::bytea[], $5::timestamptz[], $6::timestamptz[],
		$7::timestamptz[], $8::text[], $9::bytea[], $10::text[]) WITH ORDINALITY
		AS u(token_hash, parent_hash, user_id, replaced_by, created_at, rotated_at, expires_at, kind, key, claim_id, ord)
	CROSS JOIN LATERAL (SELECT 1 FROM ledger l
		WHERE l.kind = u.kind AND l.key = u.key AND l.claim_id = u.claim_id AND l.state = 2 OFFSET 0) done
	ORDER BY u.ord
	ON CONFLICT (token_hash) DO UPDATE SET ` + lineageUpdateSet

// CommitLedger stores a done entry unless a live one exists, and applies
// the rotation with it, or nothing (see flashauth.LedgerStore).
//
// One statement writes: with a rotation, it first locks the session row
// while the rotation still applies (its old hash current, not revoked); the
// entry is upserted only then, and only over a dead entry; the rotation is
// applied only when the entry was. The session's row lock makes
// concurrent rotations from one hash take turns, and the second finds the
// hash gone. The read that follows in the same pipelined batch (one
// implicit transaction, one round trip; see claimOne) returns the entry as
// it now stands: the one just committed, or the live one that blocked the
// call.
func (db *DB) CommitLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, now, expiresAt time.Time, rotation *flashauth.SessionRotation) (flashauth.LedgerEntry, bool, error) {
	var (
		entry     flashauth.LedgerEntry
		committed bool
	)
	err := db.do(ctx, func(ctx context.Context) error {
		args := []any{kind, key, claimID, sealed, tsArg(expiresAt), tsArg(now)}
		q := commitLedgerSQL
		if rotation != nil {
			q = commitRotationSQL
			args = append(args, rotation.SessionID, rotation.OldHash, rotation.NewHash, tsArg(rotation.Now), tsArg(rotation.ExpiresAt))
		}
		batch := &pgx.Batch{}
		batch.Queue(q, args...)
		batch.Queue(`SELECT `+ledgerColumns+`, NOT `+ledgerDead("$3")+` FROM ledger WHERE kind = $1 AND key = $2`,
			kind, key, tsArg(now))
		res := db.pool.SendBatch(ctx, batch)
		var (
			live bool
			err  error
		)
		cerr := res.QueryRow().Scan(&committed)
		entry, err = scanLedger(scanLive{res.QueryRow(), &live})
		if closeErr := res.Close(); closeErr != nil {
			return closeErr
		}
		switch {
		case cerr != nil:
			return cerr
		case committed && err == nil:
			return nil
		case committed:
			return fmt.Errorf("read committed entry: %w", err)
		case err == nil && live:
			return nil // a live entry blocked the call
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return err
		case rotation != nil:
			return flashauth.ErrConflict
		}
		return errLockedRowVanished
	})
	if err != nil {
		return flashauth.LedgerEntry{}, false, err
	}
	return entry, committed, nil
}

// scanLive scans a ledger row followed by its liveness.
type scanLive struct {
	row  pgx.Row
	live *bool
}

func (s scanLive) Scan(dest ...any) error { return s.row.Scan(append(dest, s.live)...) }

// commitLedgerUpsert is the upsert of CommitLedger's entry over a dead one,
// of the rows of from (a FROM clause, or "" for one row).
func commitLedgerUpsert(from string) string {
	return `INSERT INTO ledger (` + ledgerColumns + `)
		SELECT $1::text, $2::bytea, $3::text, 2, NULL, $4::bytea, $5::timestamptz, $6::timestamptz ` + from + `
		ON CONFLICT (kind, key) DO UPDATE SET
			claim_id = EXCLUDED.claim_id, state = 2, lease_until = NULL, sealed = EXCLUDED.sealed,
			expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at
		WHERE ` + ledgerDead("$6::timestamptz") + `
		RETURNING 1`
}

// commitLedgerSQL is CommitLedger without a rotation: whether it wrote.
var commitLedgerSQL = `WITH g AS (` + commitLedgerUpsert("") + `) SELECT EXISTS (SELECT 1 FROM g)`

// commitRotationSQL is CommitLedger with a rotation ($7 the session, $8 the
// old hash, $9 the new, $10 its time, $11 the new expiry): whether it wrote.
var commitRotationSQL = `WITH s AS (
		SELECT id FROM sessions WHERE id = $7 AND refresh_hash = $8 AND revoked_at IS NULL FOR UPDATE),
	g AS (` + commitLedgerUpsert("FROM s") + `),
	r AS (
		UPDATE sessions SET refresh_hash = $9, last_used_at = $10, expires_at = $11
		WHERE id = $7 AND refresh_hash = $8 AND EXISTS (SELECT 1 FROM g)
		RETURNING id),
	t AS (
		INSERT INTO session_refresh_tokens (hash, session_id, issued_at)
		SELECT $9, id, $10 FROM r
		RETURNING 1)
	SELECT EXISTS (SELECT 1 FROM t)`

// ReleaseLedger deletes claimID's pending entry.
func (db *DB) ReleaseLedger(ctx context.Context, kind string, key []byte, claimID string) error {
	return db.do(ctx, func(ctx context.Context) error {
		_, err := db.pool.Exec(ctx,
			`DELETE FROM ledger WHERE kind = $1 AND key = $2 AND claim_id = $3 AND state = 1`,
			kind, key, claimID)
		return err
	})
}

// GetLedger returns the entry or ErrNotFound. Concurrent calls share one
// statement (see batch.go; a read needs no transaction, and the statement
// runs after every call in it began).
func (db *DB) GetLedger(ctx context.Context, kind string, key []byte) (flashauth.LedgerEntry, error) {
	g := &getLedgerReq{kind: kind, key: key}
	if err := db.do(ctx, func(ctx context.Context) error { return db.ledgerReads.do(ctx, g) }); err != nil {
		return flashauth.LedgerEntry{}, err
	}
	return g.entry, nil
}

// getLedgerReq is one GetLedger call; entry is its result.
type getLedgerReq struct {
	kind  string
	key   []byte
	entry flashauth.LedgerEntry
}

func (db *DB) getLedgerOne(ctx context.Context, g *getLedgerReq) error {
	var err error
	g.entry, err = scanLedger(db.pool.QueryRow(ctx,
		`SELECT `+ledgerColumns+` FROM ledger WHERE kind = $1 AND key = $2`, g.kind, g.key))
	return notFound(err)
}

func (db *DB) getLedgerMany(ctx context.Context, gs []*getLedgerReq, errs []error) error {
	kinds, keys := make([]string, len(gs)), make([][]byte, len(gs))
	for i, g := range gs {
		kinds[i], keys[i] = g.kind, g.key
	}
	rows, err := db.pool.Query(ctx, selectManySQL, kinds, keys)
	if err != nil {
		return err
	}
	got, err := scanLedgerRows(rows, len(gs))
	if err != nil {
		return err
	}
	for i, g := range gs {
		e, ok := got[g.kind+"\x00"+string(g.key)]
		if !ok {
			errs[i] = flashauth.ErrNotFound
			continue
		}
		g.entry = e
	}
	return nil
}

// PurgeLedger deletes dead entries. It skips the rows another transaction
// has locked (a claim is replacing the dead entry, or judging it): those are
// not its to delete now, and waiting for them could deadlock with a batch of
// claims (batch.go), which locks many rows in key order while a purge would
// lock them in the order of its scan. The next purge takes what is left.
func (db *DB) PurgeLedger(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.do(ctx, func(ctx context.Context) error {
		tag, err := db.pool.Exec(ctx, `DELETE FROM ledger WHERE (kind, key) IN (
			SELECT kind, key FROM ledger WHERE `+ledgerDead("$1")+` FOR UPDATE SKIP LOCKED)`, tsArg(now))
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// notFound maps pgx's "no rows" to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return flashauth.ErrNotFound
	}
	return err
}
