package sqlite

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

// TestBackgroundCheckpointCopiesCommits: pages the writer committed reach the
// database file through the background checkpoint, long before the writer's
// own automatic checkpoint (at 8,000 pages of WAL) would copy them.
func TestBackgroundCheckpointCopiesCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ckpt.db")
	db := openInternal(t, path)
	before := fileSize(t, path)
	ctx := t.Context()
	for i := range 300 {
		l := flashauth.Lineage{TokenHash: seal.Hash(fmt.Sprint("checkpoint ", i)), UserID: "u", CreatedAt: time.Now()}
		if err := db.PutLineage(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	// Every write has committed: wait for a checkpoint that began after
	// the last of them.
	committed := db.w.batches.Load()
	deadline := time.Now().Add(30 * time.Second)
	for db.ckpt.covered.Load() < committed {
		if time.Now().After(deadline) {
			t.Fatalf("no background checkpoint covered the writes in 30 s (%d runs)", db.ckpt.runs.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := db.ckpt.failures.Load(); n != 0 {
		t.Fatalf("%d background checkpoints failed", n)
	}
	if after := fileSize(t, path); after <= before {
		t.Fatalf("database file %d -> %d bytes: the committed pages were not copied out of the WAL", before, after)
	}
}

// TestReadOnlyHasNoCheckpointer: a read-only store checkpoints nothing (it
// could not) and closes cleanly.
func TestReadOnlyHasNoCheckpointer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.db")
	rw := openInternal(t, path)
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	ro := openInternal(t, path, ReadOnly())
	if ro.ckpt != nil {
		t.Fatal("a read-only store started a checkpointer")
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
