package sqlite

import (
	"context"
	"database/sql"
	"slices"
)

// Prepared statements. SQLite compiles every statement it runs; compiling
// the same text again on each call cost about a sixth of a refresh's CPU.
// The statements on the refresh, sign-in and session paths are prepared
// once per connection and reused.

// hotWrites are prepared on the writer connection at Open, outside any
// transaction (the writer pool has one connection, which a transaction
// holds). A write statement not listed here still works, compiled per call.
var hotWrites = []string{
	`SAVEPOINT item`, `ROLLBACK TO item`, `RELEASE item`,
	qLineagePut, qAuditInsert,
	qSessionTokenInsert, qSessionTokenTake, qSessionTokenMoved, qSessionRotate, qSessionTouch,
}

func init() {
	for _, l := range []*ledgerSQL{&plainLedger, &tokenLedger, &sessionLedger} {
		hotWrites = append(hotWrites, l.get)
		for _, qs := range [][]string{l.claim, l.commit, l.complete, l.release} {
			hotWrites = append(hotWrites, qs...)
		}
	}
	// sessionLedger shares a statement with plainLedger.
	slices.Sort(hotWrites)
	hotWrites = slices.Compact(hotWrites)
}

func (db *DB) prepareWrites(ctx context.Context) error {
	db.prepared = make(map[string]*sql.Stmt, len(hotWrites))
	for _, q := range hotWrites {
		st, err := db.write.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		db.prepared[q] = st
	}
	return nil
}

// closeStmts closes the prepared statements; the pools close after them.
func (db *DB) closeStmts() {
	for _, st := range db.prepared {
		st.Close()
	}
	db.reads.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
}

// readRow runs a one-row query on the read pool through a statement
// prepared on first use (database/sql prepares it again on each pooled
// connection it lands on, once). Only constant query texts may come here:
// the cache is keyed by the text and never shrinks.
func (db *DB) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	if v, ok := db.reads.Load(query); ok {
		return v.(*sql.Stmt).QueryRowContext(ctx, args...)
	}
	st, err := db.read.PrepareContext(ctx, query)
	if err != nil {
		// Let QueryRowContext report the error as a Row.
		return db.read.QueryRowContext(ctx, query, args...)
	}
	if v, loaded := db.reads.LoadOrStore(query, st); loaded {
		st.Close()
		st = v.(*sql.Stmt)
	}
	return st.QueryRowContext(ctx, args...)
}
