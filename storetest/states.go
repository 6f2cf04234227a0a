package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

const stateTTL = 10 * time.Minute

func oauthState(name string, created time.Time) flashauth.OAuthState {
	return flashauth.OAuthState{
		Hash: seal.Hash("state-" + name), Verifier: []byte("sealed verifier of " + name),
		RedirectURI: "https://app.example.com/callback?from=" + name,
		CreatedAt:   created, ExpiresAt: created.Add(stateTTL),
	}
}

func testStates(t *testing.T, open func(*testing.T) flashauth.Store) {
	s := oauthState("a", base)
	put := func(t *testing.T, st flashauth.Store, states ...flashauth.OAuthState) {
		t.Helper()
		for _, s := range states {
			must(t, "PutOAuthState", st.PutOAuthState(t.Context(), s))
		}
	}

	tests := []struct {
		name string
		run  func(t *testing.T, st flashauth.Store)
	}{
		{"take once", func(t *testing.T, st flashauth.Store) {
			put(t, st, s)
			got, err := st.TakeOAuthState(t.Context(), s.Hash, at(time.Minute))
			must(t, "TakeOAuthState", err)
			diff(t, "state", s, got)
			_, err = st.TakeOAuthState(t.Context(), s.Hash, at(time.Minute))
			wantErr(t, "second TakeOAuthState", err, flashauth.ErrNotFound)
		}},
		{"get does not take", func(t *testing.T, st flashauth.Store) {
			put(t, st, s)
			for range 2 {
				got, err := st.GetOAuthState(t.Context(), s.Hash, at(time.Minute))
				must(t, "GetOAuthState", err)
				diff(t, "state", s, got)
			}
			_, err := st.GetOAuthState(t.Context(), s.Hash, s.ExpiresAt)
			wantErr(t, "GetOAuthState at expiry", err, flashauth.ErrNotFound)
			_, err = st.GetOAuthState(t.Context(), seal.Hash("never"), base)
			wantErr(t, "GetOAuthState of an unknown state", err, flashauth.ErrNotFound)
			_, err = st.TakeOAuthState(t.Context(), s.Hash, at(time.Minute))
			must(t, "TakeOAuthState after GetOAuthState", err)
			_, err = st.GetOAuthState(t.Context(), s.Hash, at(time.Minute))
			wantErr(t, "GetOAuthState of a taken state", err, flashauth.ErrNotFound)
		}},
		{"expired state is not found", func(t *testing.T, st flashauth.Store) {
			put(t, st, s)
			_, err := st.TakeOAuthState(t.Context(), s.Hash, s.ExpiresAt)
			wantErr(t, "TakeOAuthState at expiry", err, flashauth.ErrNotFound)
			// The expired state was deleted by the take: nothing is left to purge.
			n, err := st.PurgeOAuthStates(t.Context(), s.ExpiresAt)
			must(t, "PurgeOAuthStates", err)
			if n != 0 {
				t.Errorf("PurgeOAuthStates found %d states after the take of an expired one, want 0", n)
			}
		}},
		{"state without expiry is expired", func(t *testing.T, st flashauth.Store) {
			// A login that never expires would be a standing invitation:
			// a missing expiry counts as passed, for the take and the purge.
			forever, kept := oauthState("no-expiry", base), oauthState("no-expiry-purged", base)
			forever.ExpiresAt, kept.ExpiresAt = time.Time{}, time.Time{}
			put(t, st, forever, kept)
			_, err := st.TakeOAuthState(t.Context(), forever.Hash, base)
			wantErr(t, "TakeOAuthState without expiry", err, flashauth.ErrNotFound)
			n, err := st.PurgeOAuthStates(t.Context(), base)
			must(t, "PurgeOAuthStates", err)
			if n != 1 {
				t.Errorf("PurgeOAuthStates deleted %d states without expiry, want 1", n)
			}
		}},
		{"unknown state is not found", func(t *testing.T, st flashauth.Store) {
			_, err := st.TakeOAuthState(t.Context(), seal.Hash("never"), base)
			wantErr(t, "TakeOAuthState", err, flashauth.ErrNotFound)
		}},
		{"duplicate hash conflicts", func(t *testing.T, st flashauth.Store) {
			put(t, st, s)
			wantErr(t, "PutOAuthState", st.PutOAuthState(t.Context(), s), flashauth.ErrConflict)
		}},
		{"purge deletes expired states", func(t *testing.T, st flashauth.Store) {
			now := at(time.Hour)
			live := oauthState("live", now.Add(-time.Minute))
			put(t, st,
				oauthState("old", now.Add(-stateTTL-time.Minute)),
				oauthState("expires-now", now.Add(-stateTTL)),
				live)
			n, err := st.PurgeOAuthStates(t.Context(), now)
			must(t, "PurgeOAuthStates", err)
			if n != 2 {
				t.Errorf("PurgeOAuthStates deleted %d, want 2", n)
			}
			got, err := st.TakeOAuthState(t.Context(), live.Hash, now)
			must(t, "TakeOAuthState of the live state", err)
			diff(t, "live state", live, got)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}

	t.Run("concurrent takes", func(t *testing.T) {
		st := open(t)
		put(t, st, s)
		const n = 10
		errs := concurrently(n, func(int) error {
			_, err := st.TakeOAuthState(t.Context(), s.Hash, at(time.Minute))
			return err
		})
		taken := 0
		for i, err := range errs {
			switch {
			case err == nil:
				taken++
			case !errors.Is(err, flashauth.ErrNotFound):
				t.Errorf("take %d: %v", i, err)
			}
		}
		if taken != 1 {
			t.Errorf("state taken %d times, want once", taken)
		}
	})
}
