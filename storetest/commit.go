package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

// commitKind is the kind CommitLedger serves: a session refresh.
const commitKind = flashauth.LedgerSessionRefresh

// testCommitLedger checks CommitLedger: a done entry at once, with a
// session rotation or without, all or nothing, never over a live entry.
func testCommitLedger(t *testing.T, open func(*testing.T) flashauth.Store) {
	old, next := seal.Hash("rt-s1"), seal.Hash("rt-next")
	sealed := []byte("sealed verdict")
	done := func(claimID string, now time.Time) flashauth.LedgerEntry {
		return flashauth.LedgerEntry{
			Kind: commitKind, Key: old, ClaimID: claimID, State: flashauth.LedgerDone,
			Sealed: sealed, ExpiresAt: now.Add(window), CreatedAt: now,
		}
	}
	rotation := func(now time.Time) *flashauth.SessionRotation {
		return &flashauth.SessionRotation{SessionID: "s1", OldHash: old, NewHash: next, Now: now, ExpiresAt: now.Add(sessionTTL)}
	}
	commit := func(t *testing.T, st flashauth.Store, claimID string, now time.Time, r *flashauth.SessionRotation) (flashauth.LedgerEntry, bool, error) {
		t.Helper()
		return st.CommitLedger(t.Context(), commitKind, old, claimID, sealed, now, now.Add(window), r)
	}
	// mustCommit commits and fails unless the call wrote its entry.
	mustCommit := func(t *testing.T, st flashauth.Store, claimID string, now time.Time, r *flashauth.SessionRotation) flashauth.LedgerEntry {
		t.Helper()
		e, committed, err := commit(t, st, claimID, now, r)
		must(t, "CommitLedger", err)
		if !committed {
			t.Fatal("not committed")
		}
		return e
	}
	// setup stores user u1 with session s1, whose refresh hash is old.
	setup := func(t *testing.T, st flashauth.Store) flashauth.Session {
		t.Helper()
		fixtureUser(t, st, "u1", 1)
		s := newSession("s1", "u1", base)
		createSession(t, st, s)
		return s
	}
	// unrotated fails unless old is still s1's current hash and next unknown.
	unrotated := func(t *testing.T, st flashauth.Store) {
		t.Helper()
		if _, current := findSession(t, st, old); !current {
			t.Error("the old hash is no longer current")
		}
		_, _, err := st.FindSessionByRefresh(t.Context(), next)
		wantErr(t, "the new hash", err, flashauth.ErrNotFound)
	}
	// stored fails unless GetLedger returns want (nil: no entry).
	stored := func(t *testing.T, st flashauth.Store, want *flashauth.LedgerEntry) {
		t.Helper()
		got, err := st.GetLedger(t.Context(), commitKind, old)
		if want == nil {
			wantErr(t, "GetLedger", err, flashauth.ErrNotFound)
			return
		}
		must(t, "GetLedger", err)
		diff(t, "stored entry", *want, doneFields(got))
	}

	tests := []struct {
		name string
		run  func(t *testing.T, st flashauth.Store)
	}{
		{"without a rotation: a done entry", func(t *testing.T, st flashauth.Store) {
			e := mustCommit(t, st, "c1", base, nil)
			want := done("c1", base)
			diff(t, "returned entry", want, doneFields(e))
			stored(t, st, &want)
		}},
		{"with a rotation: the entry and the rotation", func(t *testing.T, st flashauth.Store) {
			s := setup(t, st)
			now := at(time.Hour)
			mustCommit(t, st, "c1", now, rotation(now))
			want := done("c1", now)
			stored(t, st, &want)
			got, current := findSession(t, st, old)
			if current {
				t.Error("the rotated-out hash is still current")
			}
			s.LastUsedAt, s.ExpiresAt = now, now.Add(sessionTTL)
			diff(t, "rotated session", s, got)
			if _, current := findSession(t, st, next); !current {
				t.Error("the new hash is not current")
			}
		}},
		{"a live done entry stops it", func(t *testing.T, st flashauth.Store) {
			setup(t, st)
			must(t, "first CommitLedger", func() error { _, _, err := commit(t, st, "c1", base, nil); return err }())
			now := at(window - time.Millisecond)
			e, committed, err := commit(t, st, "c2", now, rotation(now))
			must(t, "second CommitLedger", err)
			if committed {
				t.Fatal("committed over a live entry")
			}
			want := done("c1", base)
			diff(t, "returned entry", want, doneFields(e))
			stored(t, st, &want)
			unrotated(t, st)
		}},
		{"a live claim stops it", func(t *testing.T, st flashauth.Store) {
			setup(t, st)
			claimHeld(t, st, old, "c1")
			now := at(lease - time.Millisecond)
			e, committed, err := commit(t, st, "c2", now, rotation(now))
			must(t, "CommitLedger", err)
			if committed {
				t.Fatal("committed over a live claim")
			}
			want := pending(old, "c1", base)
			want.Kind = commitKind
			diff(t, "returned entry", want, e)
			unrotated(t, st)
		}},
		{"a dead entry is replaced", func(t *testing.T, st flashauth.Store) {
			setup(t, st)
			must(t, "first CommitLedger", func() error { _, _, err := commit(t, st, "c1", base, nil); return err }())
			now := at(window)
			mustCommit(t, st, "c2", now, rotation(now)) // an expired entry does not stop it
			want := done("c2", now)
			stored(t, st, &want)
		}},
		{"a rotation of a rotated-out hash writes nothing", func(t *testing.T, st flashauth.Store) {
			setup(t, st)
			must(t, "rotate", rotateSession(t, st, "s1", old, seal.Hash("rt-other"), base))
			now := at(time.Hour) // past the window of that rotation's entry
			_, _, err := commit(t, st, "c1", now, rotation(now))
			wantErr(t, "CommitLedger", err, flashauth.ErrConflict)
			if e, err := st.GetLedger(t.Context(), commitKind, old); err == nil && e.ClaimID == "c1" {
				t.Error("the failed commit's entry was stored")
			}
			_, _, err = st.FindSessionByRefresh(t.Context(), next)
			wantErr(t, "the new hash", err, flashauth.ErrNotFound)
		}},
		{"a rotation of a revoked session writes nothing", func(t *testing.T, st flashauth.Store) {
			setup(t, st)
			must(t, "RevokeSession", st.RevokeSession(t.Context(), "s1", base))
			now := at(time.Hour)
			_, _, err := commit(t, st, "c1", now, rotation(now))
			wantErr(t, "CommitLedger", err, flashauth.ErrConflict)
			stored(t, st, nil)
			unrotated(t, st)
		}},
		{"a rotation of an unknown session writes nothing", func(t *testing.T, st flashauth.Store) {
			now := at(time.Hour)
			unknown := rotation(now)
			unknown.SessionID = "nope"
			_, _, err := commit(t, st, "c1", now, unknown)
			wantErr(t, "CommitLedger", err, flashauth.ErrConflict)
			stored(t, st, nil)
		}},
		{"a rotation with another session's hash writes nothing", func(t *testing.T, st flashauth.Store) {
			setup(t, st)
			createSession(t, st, newSession("s2", "u1", base))
			other := seal.Hash("rt-s2")
			now := at(time.Hour)
			_, _, err := st.CommitLedger(t.Context(), commitKind, other, "c1", sealed, now, now.Add(window),
				&flashauth.SessionRotation{SessionID: "s1", OldHash: other, NewHash: next, Now: now, ExpiresAt: now.Add(sessionTTL)})
			wantErr(t, "CommitLedger", err, flashauth.ErrConflict)
			if _, err := st.GetLedger(t.Context(), commitKind, other); !errors.Is(err, flashauth.ErrNotFound) {
				t.Errorf("GetLedger of s2's hash: %v, want ErrNotFound", err)
			}
			if _, current := findSession(t, st, other); !current {
				t.Error("s2's hash lost its current flag")
			}
			unrotated(t, st)
		}},
		{"an entry of the new hash before the rotation stays live", func(t *testing.T, st flashauth.Store) {
			// A verdict on a hash before it was issued: improbable (the
			// hash of a fresh random token), but the ledger holds it.
			setup(t, st)
			claimHeld(t, st, next, "cn")
			now := at(time.Second)
			mustCommit(t, st, "c1", now, rotation(now))
			want := pending(next, "cn", base)
			want.Kind = commitKind
			got, err := st.GetLedger(t.Context(), commitKind, next)
			must(t, "GetLedger of the new hash", err)
			diff(t, "entry of the new hash", want, got)
			e, committed, err := st.CommitLedger(t.Context(), commitKind, next, "c2", sealed, now, now.Add(window), nil)
			must(t, "CommitLedger on the new hash", err)
			if committed {
				t.Fatal("committed over the new hash's live claim")
			}
			diff(t, "entry returned for the new hash", want, e)
			if _, current := findSession(t, st, next); !current {
				t.Error("the new hash is not current")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// testCommitLedgerConcurrency races commits of one refresh hash's rotation,
// as replicas that all read the token current would: exactly one commits
// and rotates, and every other call gets its entry, uncommitted.
func testCommitLedgerConcurrency(t *testing.T, open func(*testing.T) flashauth.Store) {
	st := open(t)
	fixtureUser(t, st, "u1", 1)
	createSession(t, st, newSession("s1", "u1", base))
	old := seal.Hash("rt-s1")
	const n = 20
	now := at(time.Minute)
	results := concurrently(n, func(i int) CommitRace {
		e, committed, err := st.CommitLedger(t.Context(), commitKind, old, fmt.Sprintf("c%02d", i), []byte(fmt.Sprintf("verdict %d", i)),
			now, now.Add(window), &flashauth.SessionRotation{
				SessionID: "s1", OldHash: old, NewHash: seal.Hash(fmt.Sprintf("rt-new-%d", i)), Now: now, ExpiresAt: now.Add(sessionTTL),
			})
		return CommitRace{e, committed, err}
	})
	winner := OneCommitWinner(t, results, func(i int) string { return fmt.Sprintf("c%02d", i) })
	if got := string(results[winner].Entry.Sealed); got != fmt.Sprintf("verdict %d", winner) {
		t.Errorf("the winner's entry holds %q, want its own verdict", got)
	}
	for i := range n {
		s, current, err := st.FindSessionByRefresh(t.Context(), seal.Hash(fmt.Sprintf("rt-new-%d", i)))
		switch {
		case i == winner && (err != nil || !current || s.ID != "s1"):
			t.Errorf("the winner's hash: session %q current %v, %v", s.ID, current, err)
		case i != winner && !errors.Is(err, flashauth.ErrNotFound):
			t.Errorf("the hash of loser %d: %v, want ErrNotFound", i, err)
		}
	}
}

// testSessionLedger checks GetSessionLedger: in every state of a presented
// refresh hash it reads what FindSessionByRefresh, GetUser and GetLedger
// read.
func testSessionLedger(t *testing.T, open func(*testing.T) flashauth.Store) {
	h := seal.Hash("rt-s1")
	tests := []struct {
		name string
		prep func(t *testing.T, st flashauth.Store)
	}{
		{"unknown hash", func(*testing.T, flashauth.Store) {}},
		{"unknown hash with an entry", func(t *testing.T, st flashauth.Store) {
			_, _, err := st.CommitLedger(t.Context(), commitKind, h, "c1", []byte("sealed"), base, at(window), nil)
			must(t, "CommitLedger", err)
		}},
		{"current", func(t *testing.T, st flashauth.Store) {
			fixtureUser(t, st, "u1", 1)
			createSession(t, st, newSession("s1", "u1", base))
		}},
		{"rotated out, with its entry", func(t *testing.T, st flashauth.Store) {
			fixtureUser(t, st, "u1", 1)
			createSession(t, st, newSession("s1", "u1", base))
			_, _, err := st.CommitLedger(t.Context(), commitKind, h, "c1", []byte("sealed"), at(time.Hour), at(time.Hour+window),
				&flashauth.SessionRotation{SessionID: "s1", OldHash: h, NewHash: seal.Hash("rt-2"), Now: at(time.Hour), ExpiresAt: at(sessionTTL)})
			must(t, "CommitLedger", err)
		}},
		{"revoked, with a claim", func(t *testing.T, st flashauth.Store) {
			fixtureUser(t, st, "u1", 1)
			createSession(t, st, newSession("s1", "u1", base))
			must(t, "RevokeSession", st.RevokeSession(t.Context(), "s1", at(time.Minute)))
			_, _, err := st.ClaimLedger(t.Context(), commitKind, h, "c1", base, at(lease))
			must(t, "ClaimLedger", err)
		}},
		{"entry of another kind", func(t *testing.T, st flashauth.Store) {
			fixtureUser(t, st, "u1", 1)
			createSession(t, st, newSession("s1", "u1", base))
			_, _, err := st.ClaimLedger(t.Context(), flashauth.LedgerGitHubRefresh, h, "c1", base, at(lease))
			must(t, "ClaimLedger", err)
		}},
		{"an entry, then its session", func(t *testing.T, st flashauth.Store) {
			_, _, err := st.CommitLedger(t.Context(), commitKind, h, "c1", []byte("sealed"), base, at(window), nil)
			must(t, "CommitLedger", err)
			fixtureUser(t, st, "u1", 1)
			createSession(t, st, newSession("s1", "u1", base))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := open(t)
			tt.prep(t, st)

			var want flashauth.SessionLedger
			s, current, err := st.FindSessionByRefresh(t.Context(), h)
			switch {
			case err == nil:
				want.Session, want.Current, want.HasSession = s, current, true
				u, err := st.GetUser(t.Context(), s.UserID)
				must(t, "GetUser", err)
				want.User, want.HasUser = u, true
			case !errors.Is(err, flashauth.ErrNotFound):
				t.Fatalf("FindSessionByRefresh: %v", err)
			}
			e, err := st.GetLedger(t.Context(), commitKind, h)
			switch {
			case err == nil:
				want.Entry, want.HasEntry = e, true
			case !errors.Is(err, flashauth.ErrNotFound):
				t.Fatalf("GetLedger: %v", err)
			}

			got, err := st.GetSessionLedger(t.Context(), commitKind, h)
			must(t, "GetSessionLedger", err)
			diff(t, "session, user and ledger", want, got)
		})
	}
}

// CommitRace is the outcome of one CommitLedger call among racing ones.
type CommitRace struct {
	Entry     flashauth.LedgerEntry
	Committed bool
	Err       error
}

// OneCommitWinner checks a race of CommitLedger calls on one key, whose
// claim IDs claimID gives: none failed, exactly one committed, and every
// call got the winner's entry. It returns the winner's index.
func OneCommitWinner(t *testing.T, results []CommitRace, claimID func(i int) string) int {
	t.Helper()
	winner := -1
	for i, r := range results {
		switch {
		case r.Err != nil:
			t.Fatalf("commit %d: %v", i, r.Err)
		case r.Committed && winner >= 0:
			t.Fatalf("commits %d and %d both committed", winner, i)
		case r.Committed:
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("nothing committed")
	}
	for i, r := range results {
		if r.Entry.ClaimID != claimID(winner) || !bytes.Equal(r.Entry.Sealed, results[winner].Entry.Sealed) {
			t.Errorf("commit %d got the entry of %q (%q), want the winner's", i, r.Entry.ClaimID, r.Entry.Sealed)
		}
	}
	return winner
}

// claimHeld claims key for claimID from base until the lease ends, and
// fails unless the claim is held.
func claimHeld(t *testing.T, st flashauth.Store, key []byte, claimID string) {
	t.Helper()
	_, held, err := st.ClaimLedger(t.Context(), commitKind, key, claimID, base, at(lease))
	must(t, "ClaimLedger", err)
	if !held {
		t.Fatal("claim not held")
	}
}
