package sqlite

import (
	"crypto/rand"
	"database/sql"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkBareLedger is the floor under any exactly-once ledger on
// modernc's SQLite, without flashauth: per refresh, the statements such a
// ledger cannot do without, in their barest form, on this package's
// connection settings (dsn) and a table of 200,000 lineages keyed, like
// flashauth's, by a 32-byte hash:
//
//   - read: a point read of the presented token's row on a read connection;
//   - claim: an UPDATE marking that row claimed, 32 refreshes per
//     transaction (the writer's group commit under load);
//   - complete: an UPDATE storing the outcome in that row and an INSERT of
//     the rotated token's row, at a random key like every hash, 32 per
//     transaction;
//   - complete+audit: the same and an audit row per refresh;
//   - all: the four, as a unique refresh needs them.
//
// Every statement is prepared once; no JSON, sealing, HTTP or Go-side
// bookkeeping. cpu-ns/op is the process's CPU time per refresh (the
// writer's, the reader's, SQLite's). docs/benchmarks.md compares it with
// what flashauth may spend beyond the ceiling's HTTP work.
//
//	go test -run '^$' -bench BareLedger -benchtime 20000x -count 3 ./sqlite
func BenchmarkBareLedger(b *testing.B) {
	for _, mode := range []string{"read", "claim", "complete", "complete+audit", "all"} {
		b.Run(mode, func(b *testing.B) {
			f := newBareFloor(b)
			read := mode == "read" || mode == "all"
			claim := mode == "claim" || mode == "all"
			complete := mode != "read" && mode != "claim"
			audit := mode == "complete+audit" || mode == "all"
			cpu0, cpuOK := cpuTime()
			b.ResetTimer()
			for n := 0; n < b.N; n += len(f.keys) {
				if read {
					f.read(b)
				}
				if claim {
					f.claim(b)
				}
				if complete {
					// The rotated tokens become the next round's keys.
					f.complete(b, audit)
				}
			}
			b.StopTimer()
			if cpu1, ok := cpuTime(); ok && cpuOK {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// bareFloor is BenchmarkBareLedger's database: one writer and one reader
// connection, four prepared statements, and the keys of the current round.
type bareFloor struct {
	w, r                        *sql.DB
	sel, claimSt, doneSt, insSt *sql.Stmt
	audSt                       *sql.Stmt
	keys                        [][]byte
	sealed                      []byte
}

const bareBatch = 32

func newBareFloor(b *testing.B) *bareFloor {
	b.Helper()
	path := filepath.Join(b.TempDir(), "floor.db")
	o := options{busyTimeout: 5 * time.Second}
	f := &bareFloor{sealed: make([]byte, 200)}
	var err error
	if f.w, err = sql.Open("sqlite", dsn(path, o, false)); err != nil {
		b.Fatal(err)
	}
	f.w.SetMaxOpenConns(1)
	b.Cleanup(func() { f.w.Close() })
	bareExec(b, f.w, `CREATE TABLE l (h BLOB NOT NULL PRIMARY KEY, parent BLOB, user_id TEXT, replaced_by BLOB,
		claim_id TEXT, state INTEGER, sealed BLOB, until INTEGER, created_at INTEGER) WITHOUT ROWID`)
	bareExec(b, f.w, `CREATE TABLE audit (id INTEGER PRIMARY KEY, at INTEGER, type TEXT, outcome TEXT,
		user_id TEXT, ip TEXT, user_agent TEXT)`)
	tx, err := f.w.Begin()
	if err != nil {
		b.Fatal(err)
	}
	for i := range 200_000 {
		k := bareKey(b)
		if i < bareBatch {
			f.keys = append(f.keys, k)
		}
		if _, err := tx.Exec(`INSERT INTO l (h, user_id, created_at) VALUES (?, 'u', 1)`, k); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if f.r, err = sql.Open("sqlite", dsn(path, o, true)); err != nil {
		b.Fatal(err)
	}
	f.r.SetMaxOpenConns(1)
	b.Cleanup(func() { f.r.Close() })
	f.sel = barePrepare(b, f.r, `SELECT h, parent, user_id, replaced_by, claim_id, state, sealed, until FROM l WHERE h = ?`)
	// A claim may retake its own row (state 1): modes without a completion
	// claim the same rows round after round.
	f.claimSt = barePrepare(b, f.w, `UPDATE l SET claim_id = 'c', state = 1, until = 5 WHERE h = ? AND (state IS NULL OR state = 1)`)
	f.doneSt = barePrepare(b, f.w, `UPDATE l SET state = 2, sealed = ?, replaced_by = ?, until = 6 WHERE h = ?`)
	f.insSt = barePrepare(b, f.w, `INSERT INTO l (h, parent, user_id, created_at) VALUES (?, ?, 'u', 7)`)
	f.audSt = barePrepare(b, f.w, `INSERT INTO audit (at, type, outcome, user_id, ip, user_agent)
		VALUES (8, 'github_refresh', 'success', 'u', '127.0.0.1', 'flashload')`)
	return f
}

func (f *bareFloor) read(b *testing.B) {
	for _, k := range f.keys {
		var h, parent, user, replaced, claim, state, sealed, until any
		if err := f.sel.QueryRow(k).Scan(&h, &parent, &user, &replaced, &claim, &state, &sealed, &until); err != nil {
			b.Fatal(err)
		}
	}
}

func (f *bareFloor) claim(b *testing.B) {
	f.batch(b, func(tx *sql.Tx) {
		st := tx.Stmt(f.claimSt)
		for _, k := range f.keys {
			bareAffect(b, st, k)
		}
	})
}

func (f *bareFloor) complete(b *testing.B, audit bool) {
	next := make([][]byte, len(f.keys))
	f.batch(b, func(tx *sql.Tx) {
		done, ins, aud := tx.Stmt(f.doneSt), tx.Stmt(f.insSt), tx.Stmt(f.audSt)
		for i, k := range f.keys {
			next[i] = bareKey(b)
			bareAffect(b, done, f.sealed, next[i], k)
			bareAffect(b, ins, next[i], k)
			if audit {
				bareAffect(b, aud)
			}
		}
	})
	f.keys = next
}

// batch runs fn in one write transaction.
func (f *bareFloor) batch(b *testing.B, fn func(*sql.Tx)) {
	tx, err := f.w.Begin()
	if err != nil {
		b.Fatal(err)
	}
	fn(tx)
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

func bareKey(b *testing.B) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		b.Fatal(err)
	}
	return k
}

func bareExec(b *testing.B, db *sql.DB, q string) {
	if _, err := db.Exec(q); err != nil {
		b.Fatal(err)
	}
}

func barePrepare(b *testing.B, db *sql.DB, q string) *sql.Stmt {
	st, err := db.Prepare(q)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// bareAffect runs st and fails unless it changed exactly one row.
func bareAffect(b *testing.B, st *sql.Stmt, args ...any) {
	res, err := st.Exec(args...)
	if err != nil {
		b.Fatal(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		b.Fatalf("%d rows changed, want 1 (%v)", n, err)
	}
}
