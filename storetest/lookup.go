package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

// testLineageLedger checks the optional flashauth.LineageLedgerReader: in
// every combination of present and absent records it reads exactly what
// GetLineage and GetLedger read.
func testLineageLedger(t *testing.T, open func(*testing.T) flashauth.Store) {
	key := seal.Hash("ghr_lookup")
	full := flashauth.Lineage{
		TokenHash: key, ParentHash: seal.Hash("ghr_parent"), UserID: "u1",
		ReplacedBy: seal.Hash("ghr_next"), CreatedAt: base, RotatedAt: at(time.Minute), ExpiresAt: at(24 * time.Hour),
	}
	bare := flashauth.Lineage{TokenHash: key} // no owner, no times, no hashes

	tests := []struct {
		name string
		prep func(t *testing.T, st flashauth.Store)
	}{
		{"neither", func(*testing.T, flashauth.Store) {}},
		{"lineage only", func(t *testing.T, st flashauth.Store) {
			must(t, "PutLineage", st.PutLineage(t.Context(), full))
		}},
		{"bare lineage", func(t *testing.T, st flashauth.Store) {
			must(t, "PutLineage", st.PutLineage(t.Context(), bare))
		}},
		{"pending entry only", func(t *testing.T, st flashauth.Store) {
			claim(t, st, key, "c1", base)
		}},
		{"done entry and lineage", func(t *testing.T, st flashauth.Store) {
			must(t, "PutLineage", st.PutLineage(t.Context(), full))
			claim(t, st, key, "c1", base)
			must(t, "CompleteLedger", st.CompleteLedger(t.Context(), kind, key, "c1", []byte("sealed"), at(window), nil))
		}},
		{"entry of another kind", func(t *testing.T, st flashauth.Store) {
			must(t, "PutLineage", st.PutLineage(t.Context(), bare))
			_, _, err := st.ClaimLedger(t.Context(), flashauth.LedgerSessionRefresh, key, "c1", base, at(lease))
			must(t, "ClaimLedger", err)
		}},
		{"records of other hashes", func(t *testing.T, st flashauth.Store) {
			other := seal.Hash("ghr_other")
			must(t, "PutLineage", st.PutLineage(t.Context(), flashauth.Lineage{TokenHash: other, UserID: "u2"}))
			claim(t, st, other, "c1", base)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := open(t)
			r, ok := st.(flashauth.LineageLedgerReader)
			if !ok {
				t.Skip("the store does not implement flashauth.LineageLedgerReader (optional)")
			}
			tt.prep(t, st)

			var want flashauth.LineageLedger
			lin, err := st.GetLineage(t.Context(), key)
			switch {
			case err == nil:
				want.Lineage, want.HasLineage = lin, true
			case !errors.Is(err, flashauth.ErrNotFound):
				t.Fatalf("GetLineage: %v", err)
			}
			e, err := st.GetLedger(t.Context(), kind, key)
			switch {
			case err == nil:
				want.Entry, want.HasEntry = e, true
			case !errors.Is(err, flashauth.ErrNotFound):
				t.Fatalf("GetLedger: %v", err)
			}

			got, err := r.GetLineageLedger(t.Context(), kind, key)
			must(t, "GetLineageLedger", err)
			diff(t, "lineage and ledger", want, got)
		})
	}
}
