package postgres_test

import (
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

// A lone completion upserts a token hash listed twice once, as the last of
// them (what upserting them one after the other leaves).
func TestCompleteLedgerRepeatedLineageLastWins(t *testing.T) {
	db := open(t, testURL(t))
	key := seal.Hash("repeated")
	if _, _, err := db.ClaimLedger(t.Context(), kindRefresh, key, "c1", base, base.Add(time.Minute)); err != nil {
		t.Fatalf("ClaimLedger: %v", err)
	}
	child := seal.Hash("child")
	lineage := []flashauth.Lineage{
		{TokenHash: child, ParentHash: key, UserID: "first", CreatedAt: base},
		{TokenHash: child, ParentHash: key, UserID: "last", CreatedAt: base},
	}
	if err := db.CompleteLedger(t.Context(), kindRefresh, key, "c1", []byte("sealed"), base.Add(time.Minute), lineage); err != nil {
		t.Fatalf("CompleteLedger: %v", err)
	}
	l, err := db.GetLineage(t.Context(), child)
	if err != nil || l.UserID != "last" {
		t.Errorf("GetLineage: %+v, %v; want user last", l, err)
	}
}
