package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
)

// Several processes starting at once on a database file that does not exist
// yet must all open it. The first connection to a new file switches it to
// WAL, which takes an exclusive lock that SQLite does not wait for with the
// busy handler, so the others can see SQLITE_BUSY at open.
func TestConcurrentOpenOfNewFile(t *testing.T) {
	for round := range 15 {
		path := filepath.Join(t.TempDir(), "new.db")
		var wg sync.WaitGroup
		errs := make([]error, 6)
		dbs := make([]*DB, 6)
		for i := range dbs {
			wg.Go(func() { dbs[i], errs[i] = Open(context.Background(), path) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, opener %d: %v", round, i, err)
			}
			dbs[i].Close()
		}
	}
}
