package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

const (
	lease  = 30 * time.Second
	window = 60 * time.Second
	kind   = flashauth.LedgerGitHubRefresh
)

// claim calls ClaimLedger at now with the suite's lease and fails on error.
func claim(t *testing.T, st flashauth.Store, key []byte, claimID string, now time.Time) (flashauth.LedgerEntry, bool) {
	t.Helper()
	e, held, err := st.ClaimLedger(t.Context(), kind, key, claimID, now, now.Add(lease))
	must(t, "ClaimLedger "+claimID, err)
	return e, held
}

func pending(key []byte, claimID string, now time.Time) flashauth.LedgerEntry {
	return flashauth.LedgerEntry{
		Kind: kind, Key: key, ClaimID: claimID, State: flashauth.LedgerPending,
		LeaseUntil: now.Add(lease), CreatedAt: now,
	}
}

// doneFields is the part of a done entry the contract defines (LeaseUntil of
// a done entry is left to the store).
func doneFields(e flashauth.LedgerEntry) flashauth.LedgerEntry {
	e.LeaseUntil = time.Time{}
	return e
}

func testLedger(t *testing.T, open func(*testing.T) flashauth.Store) {
	key := seal.Hash("ghr_ledger")
	sealed := []byte("sealed outcome bytes")
	done := func(claimID string, claimedAt time.Time) flashauth.LedgerEntry {
		return flashauth.LedgerEntry{
			Kind: kind, Key: key, ClaimID: claimID, State: flashauth.LedgerDone,
			Sealed: sealed, ExpiresAt: claimedAt.Add(window), CreatedAt: claimedAt,
		}
	}
	// complete turns the claim made at claimedAt into a done entry.
	complete := func(t *testing.T, st flashauth.Store, claimID string, claimedAt time.Time) {
		t.Helper()
		must(t, "CompleteLedger", st.CompleteLedger(t.Context(), kind, key, claimID, sealed, claimedAt.Add(window), nil))
	}

	tests := []struct {
		name string
		run  func(t *testing.T, st flashauth.Store)
	}{
		{"first claim holds a pending entry", func(t *testing.T, st flashauth.Store) {
			e, held := claim(t, st, key, "c1", base)
			if !held {
				t.Error("first claim not held")
			}
			diff(t, "claimed entry", pending(key, "c1", base), e)
			got, err := st.GetLedger(t.Context(), kind, key)
			must(t, "GetLedger", err)
			diff(t, "stored entry", pending(key, "c1", base), got)
		}},
		{"live pending entry is returned to others", func(t *testing.T, st flashauth.Store) {
			claim(t, st, key, "c1", base)
			e, held := claim(t, st, key, "c2", at(lease-time.Millisecond))
			if held {
				t.Error("second claimer holds a live claim")
			}
			diff(t, "entry", pending(key, "c1", base), e)
		}},
		{"holder claiming again still holds", func(t *testing.T, st flashauth.Store) {
			claim(t, st, key, "c1", base)
			e, held := claim(t, st, key, "c1", at(time.Second))
			if !held {
				t.Error("holder does not hold its own live claim")
			}
			diff(t, "entry", pending(key, "c1", base), e)
		}},
		{"lease takeover at lease end", func(t *testing.T, st flashauth.Store) {
			claim(t, st, key, "c1", base)
			e, held := claim(t, st, key, "c2", at(lease))
			if !held {
				t.Fatal("claim past the lease not taken over")
			}
			diff(t, "entry", pending(key, "c2", at(lease)), e)
			err := st.CompleteLedger(t.Context(), kind, key, "c1", sealed, at(window), nil)
			wantErr(t, "complete by the old holder", err, flashauth.ErrClaimLost)
			complete(t, st, "c2", at(lease))
			got, err := st.GetLedger(t.Context(), kind, key)
			must(t, "GetLedger", err)
			diff(t, "stored entry", done("c2", at(lease)), doneFields(got))
		}},
		{"live done entry is replayed", func(t *testing.T, st flashauth.Store) {
			claim(t, st, key, "c1", base)
			complete(t, st, "c1", base)
			e, held := claim(t, st, key, "c2", at(window-time.Millisecond))
			if held {
				t.Error("claim of a live done entry held")
			}
			diff(t, "entry", done("c1", base), doneFields(e))
			e, held = claim(t, st, key, "c1", at(time.Second))
			if held {
				t.Error("the completed claim id holds a done entry")
			}
			diff(t, "entry for the old holder", done("c1", base), doneFields(e))
		}},
		{"expired done entry is replaced", func(t *testing.T, st flashauth.Store) {
			claim(t, st, key, "c1", base)
			complete(t, st, "c1", base)
			e, held := claim(t, st, key, "c2", at(window))
			if !held {
				t.Fatal("claim of an expired done entry not held")
			}
			diff(t, "entry", pending(key, "c2", at(window)), e)
			got, err := st.GetLedger(t.Context(), kind, key)
			must(t, "GetLedger", err)
			diff(t, "stored entry", pending(key, "c2", at(window)), got)
		}},
		{"complete by a non-holder is ErrClaimLost", func(t *testing.T, st flashauth.Store) {
			claim(t, st, key, "c1", base)
			err := st.CompleteLedger(t.Context(), kind, key, "intruder", sealed, at(window), nil)
			wantErr(t, "complete by non-holder", err, flashauth.ErrClaimLost)
			got, err := st.GetLedger(t.Context(), kind, key)
			must(t, "GetLedger", err)
			diff(t, "entry after the failed complete", pending(key, "c1", base), got)
		}},
		{"complete of a missing entry is ErrClaimLost", func(t *testing.T, st flashauth.Store) {
			err := st.CompleteLedger(t.Context(), kind, key, "c1", sealed, at(window), nil)
			wantErr(t, "complete without claim", err, flashauth.ErrClaimLost)
		}},
		{"complete twice is ErrClaimLost", func(t *testing.T, st flashauth.Store) {
			claim(t, st, key, "c1", base)
			complete(t, st, "c1", base)
			err := st.CompleteLedger(t.Context(), kind, key, "c1", []byte("other"), at(2*window), nil)
			wantErr(t, "second complete", err, flashauth.ErrClaimLost)
			got, err := st.GetLedger(t.Context(), kind, key)
			must(t, "GetLedger", err)
			diff(t, "entry keeps the first outcome", done("c1", base), doneFields(got))
		}},
		{"release by the holder deletes", func(t *testing.T, st flashauth.Store) {
			claim(t, st, key, "c1", base)
			must(t, "ReleaseLedger", st.ReleaseLedger(t.Context(), kind, key, "c1"))
			_, err := st.GetLedger(t.Context(), kind, key)
			wantErr(t, "GetLedger after release", err, flashauth.ErrNotFound)
			must(t, "ReleaseLedger again", st.ReleaseLedger(t.Context(), kind, key, "c1"))
			_, held := claim(t, st, key, "c2", at(time.Second))
			if !held {
				t.Error("claim after release not held")
			}
		}},
		{"release by a non-holder keeps the entry", func(t *testing.T, st flashauth.Store) {
			claim(t, st, key, "c1", base)
			must(t, "ReleaseLedger", st.ReleaseLedger(t.Context(), kind, key, "intruder"))
			got, err := st.GetLedger(t.Context(), kind, key)
			must(t, "GetLedger", err)
			diff(t, "entry", pending(key, "c1", base), got)
		}},
		{"release keeps a done entry", func(t *testing.T, st flashauth.Store) {
			claim(t, st, key, "c1", base)
			complete(t, st, "c1", base)
			must(t, "ReleaseLedger", st.ReleaseLedger(t.Context(), kind, key, "c1"))
			got, err := st.GetLedger(t.Context(), kind, key)
			must(t, "GetLedger", err)
			diff(t, "entry", done("c1", base), doneFields(got))
		}},
		{"kinds are separate namespaces", func(t *testing.T, st flashauth.Store) {
			for _, k := range []string{flashauth.LedgerGitHubRefresh, flashauth.LedgerGitHubCode, flashauth.LedgerSessionRefresh} {
				e, held, err := st.ClaimLedger(t.Context(), k, key, "c-"+k, base, at(lease))
				must(t, "ClaimLedger "+k, err)
				if !held || e.Kind != k || e.ClaimID != "c-"+k {
					t.Errorf("kind %s: held=%v entry kind %q claim %q", k, held, e.Kind, e.ClaimID)
				}
			}
			must(t, "ReleaseLedger", st.ReleaseLedger(t.Context(), flashauth.LedgerGitHubCode, key, "c-"+flashauth.LedgerGitHubCode))
			got, err := st.GetLedger(t.Context(), flashauth.LedgerGitHubRefresh, key)
			must(t, "GetLedger", err)
			if got.ClaimID != "c-"+flashauth.LedgerGitHubRefresh {
				t.Errorf("release in one kind touched another: claim %q", got.ClaimID)
			}
		}},
		{"entries without a lease or an expiry are dead", func(t *testing.T, st flashauth.Store) {
			// A missing time counts as passed, for ClaimLedger and PurgeLedger
			// alike: a row nothing can ever take over or replay must not stay.
			noLease, noExpiry := seal.Hash("no-lease"), seal.Hash("no-expiry")
			_, held, err := st.ClaimLedger(t.Context(), kind, noLease, "c1", base, time.Time{})
			must(t, "ClaimLedger without lease", err)
			if !held {
				t.Fatal("claim without lease not held")
			}
			claim(t, st, noExpiry, "c1", base)
			must(t, "CompleteLedger without expiry", st.CompleteLedger(t.Context(), kind, noExpiry, "c1", sealed, time.Time{}, nil))
			if _, held := claim(t, st, noLease, "c2", base); !held {
				t.Error("pending entry without lease not taken over")
			}
			if _, held := claim(t, st, noExpiry, "c2", base); !held {
				t.Error("done entry without expiry not replaced")
			}
			// Once the takers' leases have passed, both kinds again; a purge
			// at any time deletes them.
			if _, held, err = st.ClaimLedger(t.Context(), kind, noLease, "c3", at(2*lease), time.Time{}); err != nil || !held {
				t.Fatalf("ClaimLedger without lease: held=%v, %v", held, err)
			}
			claim(t, st, noExpiry, "c3", at(2*lease))
			must(t, "CompleteLedger without expiry", st.CompleteLedger(t.Context(), kind, noExpiry, "c3", sealed, time.Time{}, nil))
			n, err := st.PurgeLedger(t.Context(), base)
			must(t, "PurgeLedger", err)
			if n != 2 {
				t.Errorf("PurgeLedger deleted %d entries without lease or expiry, want 2", n)
			}
		}},
		{"purge deletes dead entries only", func(t *testing.T, st flashauth.Store) {
			now := at(time.Hour)
			entries := []struct {
				key       []byte
				claimedAt time.Time
				complete  bool
				survives  bool
			}{
				{seal.Hash("done-expired"), now.Add(-window - time.Second), true, false},
				{seal.Hash("done-expires-now"), now.Add(-window), true, false},
				{seal.Hash("done-live"), now.Add(-window + time.Millisecond), true, true},
				{seal.Hash("pending-expired"), now.Add(-lease - time.Second), false, false},
				{seal.Hash("pending-lease-ends-now"), now.Add(-lease), false, false},
				{seal.Hash("pending-live"), now.Add(-time.Second), false, true},
			}
			for _, e := range entries {
				_, held, err := st.ClaimLedger(t.Context(), kind, e.key, "c", e.claimedAt, e.claimedAt.Add(lease))
				must(t, "ClaimLedger", err)
				if !held {
					t.Fatal("setup claim not held")
				}
				if e.complete {
					must(t, "CompleteLedger", st.CompleteLedger(t.Context(), kind, e.key, "c", sealed, e.claimedAt.Add(window), nil))
				}
			}
			n, err := st.PurgeLedger(t.Context(), now)
			must(t, "PurgeLedger", err)
			if n != 4 {
				t.Errorf("PurgeLedger deleted %d, want 4", n)
			}
			for i, e := range entries {
				_, err := st.GetLedger(t.Context(), kind, e.key)
				if e.survives {
					must(t, fmt.Sprintf("entry %d after purge", i), err)
				} else {
					wantErr(t, fmt.Sprintf("entry %d after purge", i), err, flashauth.ErrNotFound)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

func testLedgerConcurrency(t *testing.T, open func(*testing.T) flashauth.Store) {
	st := open(t)
	key := seal.Hash("ghr_contended")
	const n = 50
	type result struct {
		entry flashauth.LedgerEntry
		held  bool
		err   error
	}
	results := concurrently(n, func(i int) result {
		e, held, err := st.ClaimLedger(t.Context(), kind, key, fmt.Sprintf("claim-%02d", i), base, at(lease))
		return result{e, held, err}
	})
	winner := ""
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("claimer %d: %v", i, r.err)
		}
		if r.held {
			if winner != "" {
				t.Fatalf("two claimers hold the entry: %s and %s", winner, r.entry.ClaimID)
			}
			winner = r.entry.ClaimID
			if want := fmt.Sprintf("claim-%02d", i); winner != want {
				t.Errorf("claimer %d holds an entry claimed by %s", i, winner)
			}
		}
	}
	if winner == "" {
		t.Fatal("no claimer holds the entry")
	}
	for i, r := range results {
		if r.entry.ClaimID != winner || r.entry.State != flashauth.LedgerPending {
			t.Errorf("claimer %d sees claim %q state %d, want the winner %q pending", i, r.entry.ClaimID, r.entry.State, winner)
		}
	}
	got, err := st.GetLedger(t.Context(), kind, key)
	must(t, "GetLedger", err)
	diff(t, "stored entry", pending(key, winner, base), got)
}
