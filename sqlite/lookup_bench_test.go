package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

// A refresh's lookups of a known token without a committed outcome (the
// unique scenario): its lineage (a hit) and its ledger entry (a miss), as
// two reads and as GetLineageLedger's one.
//
//	go test -run '^$' -bench 'RefreshLookup' -benchtime 20000x ./sqlite
func benchRefreshLookup(b *testing.B, lookup func(ctx context.Context, db *DB, h []byte) error) {
	db := benchDB(b)
	ctx := context.Background()
	h := seal.Hash("lineage")
	if err := db.PutLineage(ctx, flashauth.Lineage{TokenHash: h, UserID: "u1", CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := lookup(ctx, db, h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRefreshLookupTwoReads(b *testing.B) {
	benchRefreshLookup(b, func(ctx context.Context, db *DB, h []byte) error {
		if _, err := db.GetLineage(ctx, h); err != nil {
			return err
		}
		if _, err := db.GetLedger(ctx, flashauth.LedgerGitHubRefresh, h); !errors.Is(err, flashauth.ErrNotFound) {
			return err
		}
		return nil
	})
}

func BenchmarkRefreshLookupOneRead(b *testing.B) {
	benchRefreshLookup(b, func(ctx context.Context, db *DB, h []byte) error {
		r, err := db.GetLineageLedger(ctx, flashauth.LedgerGitHubRefresh, h)
		if err == nil && (!r.HasLineage || r.HasEntry) {
			return errors.New("unexpected lookup")
		}
		return err
	})
}
