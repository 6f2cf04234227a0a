package sqlite

import (
	"context"
	"database/sql"
	"sync/atomic"
	"time"
)

// Checkpoints off the writer. In WAL mode every commit appends pages to the
// WAL, and a checkpoint copies them back into the database file and syncs
// it. SQLite runs one inside the committing connection once the WAL holds
// wal_autocheckpoint pages (8,000 here), so under load one group commit in a
// few hundred stalled while it copied thousands of pages, and every caller
// queued behind it waited: at 32 concurrent refreshes the p99 was three times
// what it was with no checkpoints at all (docs/benchmarks.md).
//
// A goroutine on a connection of its own runs a PASSIVE checkpoint - one that
// never waits for, nor blocks, the writer or the readers - every
// checkpointEvery, when the writer committed anything since the last one.
// The writer's automatic checkpoint stays, as the bound on the WAL's size: a
// WAL starts over from its beginning only after a checkpoint copied every
// frame with nothing appended since, which under constant writes only a
// checkpoint in the writer itself can see. By then the background one has
// copied nearly every frame, so the writer's copies only the last few.

// checkpointEvery is how often the background checkpoint runs while there
// are writes.
const checkpointEvery = 100 * time.Millisecond

// checkpointer is the background checkpoint of a DB.
type checkpointer struct {
	conn *sql.DB // one connection, used for nothing else
	stop chan struct{}
	done chan struct{}
	// runs counts the checkpoints run, failures those that failed (a
	// failure needs no report: the writer's own checkpoint still bounds the
	// WAL, and the writes themselves report any trouble with the file).
	runs, failures atomic.Int64
	// covered is the writer's count of committed batches when the last
	// checkpoint that ran began: it copied every one of them.
	covered atomic.Int64
}

// startCheckpointer opens the checkpoint connection and starts its loop.
func (db *DB) startCheckpointer(o options) error {
	conn, err := sql.Open("sqlite", dsn(db.path, o, false))
	if err != nil {
		return err
	}
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxLifetime(0)
	db.ckpt = &checkpointer{conn: conn, stop: make(chan struct{}), done: make(chan struct{})}
	go db.checkpointLoop()
	return nil
}

func (db *DB) checkpointLoop() {
	c := db.ckpt
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	seen := db.w.batches.Load()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if n := db.w.batches.Load(); n != seen {
			seen = n
			db.checkpoint(context.Background())
			c.covered.Store(n)
		}
	}
}

// checkpoint runs one PASSIVE checkpoint on the checkpoint connection.
func (db *DB) checkpoint(ctx context.Context) {
	var busy, frames, copied int
	err := db.ckpt.conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	db.ckpt.runs.Add(1)
	if err != nil {
		db.ckpt.failures.Add(1)
	}
}

// stopCheckpointer stops the loop and closes its connection; it is a no-op
// for a DB without one (read-only).
func (db *DB) stopCheckpointer() error {
	if db.ckpt == nil {
		return nil
	}
	close(db.ckpt.stop)
	<-db.ckpt.done
	return db.ckpt.conn.Close()
}
