package storetest

import (
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

func testLineage(t *testing.T, open func(*testing.T) flashauth.Store) {
	root := flashauth.Lineage{
		TokenHash: seal.Hash("ghr_root"), UserID: "u1",
		CreatedAt: base, ExpiresAt: at(180 * 24 * time.Hour),
	}
	child := flashauth.Lineage{
		TokenHash: seal.Hash("ghr_child"), ParentHash: seal.Hash("ghr_root"), UserID: "u1",
		CreatedAt: at(time.Hour), ExpiresAt: at(181 * 24 * time.Hour),
	}
	rotatedRoot := root
	rotatedRoot.ReplacedBy = child.TokenHash
	rotatedRoot.RotatedAt = at(time.Hour)
	unowned := flashauth.Lineage{TokenHash: seal.Hash("ghr_unowned")}

	key := seal.Hash("ghr_root")
	sealed := []byte("sealed")

	tests := []struct {
		name string
		run  func(t *testing.T, st flashauth.Store)
	}{
		{"put and get", func(t *testing.T, st flashauth.Store) {
			for _, l := range []flashauth.Lineage{root, child, unowned} {
				must(t, "PutLineage", st.PutLineage(t.Context(), l))
				got, err := st.GetLineage(t.Context(), l.TokenHash)
				must(t, "GetLineage", err)
				diff(t, "lineage", l, got)
			}
		}},
		{"put replaces", func(t *testing.T, st flashauth.Store) {
			must(t, "PutLineage", st.PutLineage(t.Context(), root))
			must(t, "PutLineage replace", st.PutLineage(t.Context(), rotatedRoot))
			got, err := st.GetLineage(t.Context(), root.TokenHash)
			must(t, "GetLineage", err)
			diff(t, "replaced lineage", rotatedRoot, got)
			// Replacing may also clear fields.
			must(t, "PutLineage clear", st.PutLineage(t.Context(), flashauth.Lineage{TokenHash: root.TokenHash}))
			got, err = st.GetLineage(t.Context(), root.TokenHash)
			must(t, "GetLineage", err)
			diff(t, "cleared lineage", flashauth.Lineage{TokenHash: root.TokenHash}, got)
		}},
		{"unknown hash", func(t *testing.T, st flashauth.Store) {
			_, err := st.GetLineage(t.Context(), seal.Hash("never"))
			wantErr(t, "GetLineage", err, flashauth.ErrNotFound)
		}},
		{"complete writes lineage with the outcome", func(t *testing.T, st flashauth.Store) {
			must(t, "PutLineage", st.PutLineage(t.Context(), root))
			claim(t, st, key, "c1", base)
			err := st.CompleteLedger(t.Context(), kind, key, "c1", sealed, at(window), []flashauth.Lineage{rotatedRoot, child})
			must(t, "CompleteLedger", err)
			for _, want := range []flashauth.Lineage{rotatedRoot, child} {
				got, err := st.GetLineage(t.Context(), want.TokenHash)
				must(t, "GetLineage", err)
				diff(t, "lineage", want, got)
			}
		}},
		{"lost claim writes no lineage", func(t *testing.T, st flashauth.Store) {
			must(t, "PutLineage", st.PutLineage(t.Context(), root))
			claim(t, st, key, "c1", base)
			err := st.CompleteLedger(t.Context(), kind, key, "intruder", sealed, at(window), []flashauth.Lineage{rotatedRoot, child})
			wantErr(t, "CompleteLedger by non-holder", err, flashauth.ErrClaimLost)
			got, err := st.GetLineage(t.Context(), root.TokenHash)
			must(t, "GetLineage", err)
			diff(t, "root lineage untouched", root, got)
			_, err = st.GetLineage(t.Context(), child.TokenHash)
			wantErr(t, "child lineage", err, flashauth.ErrNotFound)
		}},
		{"failing lineage rolls back the completion", func(t *testing.T, st flashauth.Store) {
			claim(t, st, key, "c1", base)
			bad := flashauth.Lineage{UserID: "u1", CreatedAt: base} // no TokenHash
			err := st.CompleteLedger(t.Context(), kind, key, "c1", sealed, at(window), []flashauth.Lineage{child, bad})
			if err == nil {
				t.Fatal("CompleteLedger with a lineage record without TokenHash succeeded")
			}
			got, err := st.GetLedger(t.Context(), kind, key)
			must(t, "GetLedger", err)
			diff(t, "entry still pending", pending(key, "c1", base), got)
			_, err = st.GetLineage(t.Context(), child.TokenHash)
			wantErr(t, "lineage written before the failure", err, flashauth.ErrNotFound)
			// The claim is still held and can be completed.
			must(t, "CompleteLedger retry", st.CompleteLedger(t.Context(), kind, key, "c1", sealed, at(window), []flashauth.Lineage{child}))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}
