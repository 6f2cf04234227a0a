package postgres_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/postgres"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/storetest"
)

func auditEvent(detail string) flashauth.AuditEvent {
	return flashauth.AuditEvent{Time: base, Type: "signin", Outcome: "ok", Detail: detail}
}

// replicas opens n stores on one schema, as n processes would.
func replicas(t *testing.T, n int) []*postgres.DB {
	t.Helper()
	url := testURL(t)
	dbs := make([]*postgres.DB, n)
	for i := range dbs {
		dbs[i] = open(t, url)
	}
	return dbs
}

func TestCompleteLedgerIsAllOrNothing(t *testing.T) {
	const kind = flashauth.LedgerGitHubRefresh
	key := seal.Hash("ghr_old")
	good := flashauth.Lineage{TokenHash: seal.Hash("ghr_new"), ParentHash: key, UserID: "u1", CreatedAt: base}
	// A lineage row without a token hash violates the primary key's NOT NULL;
	// one with a short parent hash violates a CHECK.
	bad := flashauth.Lineage{ParentHash: key, UserID: "u1", CreatedAt: base}
	short := flashauth.Lineage{TokenHash: seal.Hash("other"), ParentHash: key[:16], CreatedAt: base}

	tests := []struct {
		name    string
		claimID string // who completes
		lineage []flashauth.Lineage
		wantErr error // nil: any error
	}{
		{"bad lineage row", "c1", []flashauth.Lineage{good, bad}, nil},
		{"bad lineage row first", "c1", []flashauth.Lineage{bad, good}, nil},
		{"check violation", "c1", []flashauth.Lineage{good, short}, nil},
		{"claim lost", "intruder", []flashauth.Lineage{good}, flashauth.ErrClaimLost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t, testURL(t))
			if _, held, err := db.ClaimLedger(t.Context(), kind, key, "c1", base, base.Add(time.Minute)); err != nil || !held {
				t.Fatalf("ClaimLedger: held=%v err=%v", held, err)
			}
			err := db.CompleteLedger(t.Context(), kind, key, tc.claimID, []byte("sealed"), base.Add(time.Minute), tc.lineage)
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("CompleteLedger: %v, want failure %v", err, tc.wantErr)
			}
			e, err := db.GetLedger(t.Context(), kind, key)
			if err != nil {
				t.Fatalf("GetLedger: %v", err)
			}
			if e.State != flashauth.LedgerPending || e.ClaimID != "c1" || e.Sealed != nil {
				t.Errorf("entry after failed complete: state %d claim %q sealed %q, want pending c1", e.State, e.ClaimID, e.Sealed)
			}
			if _, err := db.GetLineage(t.Context(), good.TokenHash); !errors.Is(err, flashauth.ErrNotFound) {
				t.Errorf("lineage of a failed complete: %v, want ErrNotFound", err)
			}

			// The holder can still complete, and then everything is there.
			if err := db.CompleteLedger(t.Context(), kind, key, "c1", []byte("sealed"), base.Add(time.Minute), []flashauth.Lineage{good}); err != nil {
				t.Fatalf("CompleteLedger: %v", err)
			}
			if _, err := db.GetLineage(t.Context(), good.TokenHash); err != nil {
				t.Errorf("GetLineage after complete: %v", err)
			}
		})
	}
}

func TestClaimLedgerAcrossReplicas(t *testing.T) {
	const kind = flashauth.LedgerGitHubCode
	dbs := replicas(t, 4)
	key := seal.Hash("code")
	// A dead claim (lease over) that every replica tries to take over.
	if _, _, err := dbs[0].ClaimLedger(t.Context(), kind, key, "dead", base, base.Add(time.Second)); err != nil {
		t.Fatalf("ClaimLedger: %v", err)
	}
	now := base.Add(time.Minute)
	const n = 32
	entries := make([]flashauth.LedgerEntry, n)
	held := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			entries[i], held[i], errs[i] = dbs[i%len(dbs)].ClaimLedger(t.Context(), kind, key, fmt.Sprint("c", i), now, now.Add(time.Minute))
		})
	}
	wg.Wait()
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("claimer %d: %v", i, errs[i])
		}
		if held[i] {
			winners++
		}
	}
	if winners != 1 {
		t.Fatalf("%d claimers hold the entry, want 1", winners)
	}
	for i := range n {
		if entries[i].ClaimID == "dead" || entries[i].ClaimID != entries[0].ClaimID {
			t.Errorf("claimer %d sees claim %q, want the one winner %q", i, entries[i].ClaimID, entries[0].ClaimID)
		}
	}
}

func TestConcurrentFirstSignInCreatesOneUser(t *testing.T) {
	url := testURL(t)
	dbs := make([]*postgres.DB, 4)
	for i := range dbs {
		dbs[i] = open(t, url)
	}
	const n = 16
	users := make([]flashauth.User, n)
	created := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			u := flashauth.User{ID: fmt.Sprint("user-", i), GitHubID: 4242, Login: "octo", Email: "octo@example.com",
				Name: "Octo", CreatedAt: base, UpdatedAt: base}
			org := flashauth.Organization{ID: fmt.Sprint("org-", i), Name: "octo", CreatedAt: base}
			users[i], created[i], errs[i] = dbs[i%len(dbs)].UpsertGitHubUser(t.Context(), u, org)
		})
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("sign-in %d: %v", i, errs[i])
		}
		if created[i] {
			creators++
		}
		if users[i].ID != users[0].ID || users[i].OrgID != users[0].OrgID {
			t.Errorf("sign-in %d got user %s/%s, want %s/%s", i, users[i].ID, users[i].OrgID, users[0].ID, users[0].OrgID)
		}
	}
	if creators != 1 {
		t.Errorf("%d sign-ins created the user, want 1", creators)
	}
	if got := count(t, url, "users"); got != 1 {
		t.Errorf("%d users, want 1", got)
	}
	if got := count(t, url, "organizations"); got != 1 {
		t.Errorf("%d organizations, want 1 (no orphans)", got)
	}
}

// Replicas commit rotations of one refresh hash at once: one commits and
// rotates, every other gets its entry, uncommitted, and rotates nothing.
func TestCommitRotationRaceHasOneWinner(t *testing.T) {
	dbs := replicas(t, 4)
	u := flashauth.User{ID: "u1", GitHubID: 1, CreatedAt: base, UpdatedAt: base}
	if _, _, err := dbs[0].UpsertGitHubUser(t.Context(), u, flashauth.Organization{ID: "o1", CreatedAt: base}); err != nil {
		t.Fatalf("UpsertGitHubUser: %v", err)
	}
	s := flashauth.Session{ID: "s1", UserID: "u1", Provider: "GITHUB", CreatedAt: base, LastUsedAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := dbs[0].CreateSession(t.Context(), s, seal.Hash("r0")); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	const n = 16
	results := make([]storetest.CommitRace, n)
	now := base.Add(time.Minute)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e, committed, err := dbs[i%len(dbs)].CommitLedger(t.Context(), flashauth.LedgerSessionRefresh, seal.Hash("r0"),
				fmt.Sprint("c", i), []byte(fmt.Sprint("verdict ", i)), now, now.Add(time.Minute), &flashauth.SessionRotation{
					SessionID: "s1", OldHash: seal.Hash("r0"), NewHash: seal.Hash(fmt.Sprint("r1-", i)), Now: now, ExpiresAt: now.Add(time.Hour),
				})
			results[i] = storetest.CommitRace{Entry: e, Committed: committed, Err: err}
		})
	}
	wg.Wait()
	winner := storetest.OneCommitWinner(t, results, func(i int) string { return fmt.Sprint("c", i) })
	for i := range n {
		_, current, err := dbs[0].FindSessionByRefresh(t.Context(), seal.Hash(fmt.Sprint("r1-", i)))
		if i == winner && (err != nil || !current) {
			t.Errorf("winner's hash: current=%v err=%v", current, err)
		}
		if i != winner && !errors.Is(err, flashauth.ErrNotFound) {
			t.Errorf("loser %d's hash: %v, want ErrNotFound", i, err)
		}
	}
}

func TestTakeOAuthStateOnceAcrossReplicas(t *testing.T) {
	dbs := replicas(t, 4)
	st := flashauth.OAuthState{Hash: seal.Hash("state"), Verifier: []byte("sealed verifier"), RedirectURI: "https://app.example.com/cb",
		CreatedAt: base, ExpiresAt: base.Add(10 * time.Minute)}
	if err := dbs[0].PutOAuthState(t.Context(), st); err != nil {
		t.Fatalf("PutOAuthState: %v", err)
	}
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = dbs[i%len(dbs)].TakeOAuthState(t.Context(), st.Hash, base.Add(time.Minute)) })
	}
	wg.Wait()
	taken := 0
	for i, err := range errs {
		switch {
		case err == nil:
			taken++
		case !errors.Is(err, flashauth.ErrNotFound):
			t.Fatalf("take %d: %v", i, err)
		}
	}
	if taken != 1 {
		t.Errorf("state taken %d times, want 1", taken)
	}
}
