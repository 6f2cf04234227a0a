package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

const sessionTTL = 30 * 24 * time.Hour

// newSession returns an active session of userID created at created.
func newSession(id, userID string, created time.Time) flashauth.Session {
	return flashauth.Session{
		ID: id, UserID: userID, Provider: "GITHUB",
		DeviceInfo: json.RawMessage(`{"os":"linux","app":"cli","version":3}`),
		IPAddress:  "203.0.113.7", UserAgent: "flashback-cli/1.0",
		CreatedAt: created, LastUsedAt: created, ExpiresAt: created.Add(sessionTTL),
	}
}

// createSession stores s with the refresh hash of "rt-"+s.ID.
func createSession(t *testing.T, st flashauth.Store, s flashauth.Session) {
	t.Helper()
	must(t, "CreateSession "+s.ID, st.CreateSession(t.Context(), s, seal.Hash("rt-"+s.ID)))
}

// rotateSession rotates session id from old to next at now through
// CommitLedger (the only way a session rotates), with the ledger entry of
// old; nil once committed, or the error.
func rotateSession(t *testing.T, st flashauth.Store, id string, old, next []byte, now time.Time) error {
	t.Helper()
	_, committed, err := st.CommitLedger(t.Context(), flashauth.LedgerSessionRefresh, old, fmt.Sprintf("c-%x", next), []byte("sealed"),
		now, now.Add(window), &flashauth.SessionRotation{SessionID: id, OldHash: old, NewHash: next, Now: now, ExpiresAt: now.Add(sessionTTL)})
	if err == nil && !committed {
		t.Fatal("rotation not committed: a live entry stopped it")
	}
	return err
}

func findSession(t *testing.T, st flashauth.Store, refreshHash []byte) (flashauth.Session, bool) {
	t.Helper()
	s, current, err := st.FindSessionByRefresh(t.Context(), refreshHash)
	must(t, "FindSessionByRefresh", err)
	return s, current
}

func testSessions(t *testing.T, open func(*testing.T) flashauth.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, st flashauth.Store)
	}{
		{"create, get and find", func(t *testing.T, st flashauth.Store) {
			fixtureUser(t, st, "u1", 1)
			s := newSession("s1", "u1", base)
			createSession(t, st, s)
			got, err := st.GetSession(t.Context(), "s1")
			must(t, "GetSession", err)
			diff(t, "session", s, got)
			found, current := findSession(t, st, seal.Hash("rt-s1"))
			diff(t, "found session", s, found)
			if !current {
				t.Error("the refresh token of a new session is not current")
			}
			if !got.Active(at(time.Hour)) {
				t.Error("new session is not active")
			}
		}},
		{"optional fields stay empty", func(t *testing.T, st flashauth.Store) {
			fixtureUser(t, st, "u1", 1)
			s := flashauth.Session{ID: "s1", UserID: "u1", Provider: "GITHUB", CreatedAt: base, ExpiresAt: at(sessionTTL)}
			createSession(t, st, s)
			got, err := st.GetSession(t.Context(), "s1")
			must(t, "GetSession", err)
			diff(t, "session", s, got)
		}},
		{"duplicate id or refresh hash conflicts", func(t *testing.T, st flashauth.Store) {
			fixtureUser(t, st, "u1", 1)
			createSession(t, st, newSession("s1", "u1", base))
			err := st.CreateSession(t.Context(), newSession("s1", "u1", base), seal.Hash("fresh"))
			wantErr(t, "duplicate id", err, flashauth.ErrConflict)
			err = st.CreateSession(t.Context(), newSession("s2", "u1", base), seal.Hash("rt-s1"))
			wantErr(t, "duplicate refresh hash", err, flashauth.ErrConflict)
			_, err = st.GetSession(t.Context(), "s2")
			wantErr(t, "session of the failed create", err, flashauth.ErrNotFound)
		}},
		{"rotate keeps every hash findable", func(t *testing.T, st flashauth.Store) {
			fixtureUser(t, st, "u1", 1)
			s := newSession("s1", "u1", base)
			createSession(t, st, s)
			h1, h2, h3 := seal.Hash("rt-s1"), seal.Hash("rt-2"), seal.Hash("rt-3")
			must(t, "rotate 1->2", rotateSession(t, st, "s1", h1, h2, at(time.Hour)))
			want := s
			want.LastUsedAt, want.ExpiresAt = at(time.Hour), at(time.Hour+sessionTTL)
			got, current := findSession(t, st, h1)
			diff(t, "session by old hash", want, got)
			if current {
				t.Error("rotated-out hash is still current")
			}
			if _, current := findSession(t, st, h2); !current {
				t.Error("new hash is not current")
			}
			// Past the window of h1's entry: only the rotation can stop it.
			err := rotateSession(t, st, "s1", h1, h3, at(2*time.Hour))
			wantErr(t, "rotating an old hash", err, flashauth.ErrConflict)
			_, _, err = st.FindSessionByRefresh(t.Context(), h3)
			wantErr(t, "new hash of the failed rotation", err, flashauth.ErrNotFound)
			must(t, "rotate 2->3", rotateSession(t, st, "s1", h2, h3, at(2*time.Hour)))
			for _, h := range [][]byte{h1, h2} {
				if _, current := findSession(t, st, h); current {
					t.Error("an old hash is current")
				}
			}
			if _, current := findSession(t, st, h3); !current {
				t.Error("latest hash is not current")
			}
		}},
		{"touch", func(t *testing.T, st flashauth.Store) {
			fixtureUser(t, st, "u1", 1)
			s := newSession("s1", "u1", base)
			createSession(t, st, s)
			must(t, "TouchSession", st.TouchSession(t.Context(), "s1", at(time.Minute)))
			got, err := st.GetSession(t.Context(), "s1")
			must(t, "GetSession", err)
			want := s
			want.LastUsedAt = at(time.Minute)
			diff(t, "touched session", want, got)
		}},
		{"revoke is idempotent", func(t *testing.T, st flashauth.Store) {
			fixtureUser(t, st, "u1", 1)
			s := newSession("s1", "u1", base)
			createSession(t, st, s)
			must(t, "RevokeSession", st.RevokeSession(t.Context(), "s1", at(time.Minute)))
			must(t, "RevokeSession again", st.RevokeSession(t.Context(), "s1", at(time.Hour)))
			got, err := st.GetSession(t.Context(), "s1")
			must(t, "GetSession", err)
			want := s
			want.RevokedAt = at(time.Minute)
			diff(t, "revoked session keeps the first revocation time", want, got)
			if got.Active(at(2 * time.Minute)) {
				t.Error("revoked session is active")
			}
		}},
		{"revoke user sessions", func(t *testing.T, st flashauth.Store) {
			fixtureUser(t, st, "u1", 1)
			fixtureUser(t, st, "u2", 2)
			now := at(40 * 24 * time.Hour)
			active1 := newSession("a1", "u1", now.Add(-time.Hour))
			active2 := newSession("a2", "u1", now.Add(-2*time.Hour))
			revoked := newSession("r1", "u1", now.Add(-3*time.Hour))
			revoked.RevokedAt = now.Add(-time.Minute)
			expired := newSession("e1", "u1", base) // expired 10 days before now
			other := newSession("o1", "u2", now.Add(-time.Hour))
			for _, s := range []flashauth.Session{active1, active2, revoked, expired, other} {
				createSession(t, st, s)
			}
			n, err := st.RevokeUserSessions(t.Context(), "u1", now)
			must(t, "RevokeUserSessions", err)
			if n != 2 {
				t.Errorf("RevokeUserSessions revoked %d, want 2", n)
			}
			for id, wantRevoked := range map[string]time.Time{"a1": now, "a2": now, "r1": revoked.RevokedAt, "o1": {}} {
				got, err := st.GetSession(t.Context(), id)
				must(t, "GetSession "+id, err)
				if !got.RevokedAt.Equal(wantRevoked) {
					t.Errorf("session %s RevokedAt = %v, want %v", id, got.RevokedAt, wantRevoked)
				}
			}
			list, err := st.ListSessions(t.Context(), "u1", now)
			must(t, "ListSessions", err)
			if len(list) != 0 {
				t.Errorf("u1 still has %d active sessions", len(list))
			}
		}},
		{"list active sessions newest first", func(t *testing.T, st flashauth.Store) {
			fixtureUser(t, st, "u1", 1)
			fixtureUser(t, st, "u2", 2)
			now := at(40 * 24 * time.Hour)
			oldest := newSession("s-old", "u1", now.Add(-3*time.Hour))
			newest := newSession("s-new", "u1", now.Add(-time.Hour))
			middle := newSession("s-mid", "u1", now.Add(-2*time.Hour))
			revoked := newSession("s-rev", "u1", now.Add(-30*time.Minute))
			revoked.RevokedAt = now.Add(-time.Minute)
			expiresNow := newSession("s-exp", "u1", now.Add(-sessionTTL))
			other := newSession("s-other", "u2", now.Add(-time.Minute))
			for _, s := range []flashauth.Session{oldest, newest, middle, revoked, expiresNow, other} {
				createSession(t, st, s)
			}
			list, err := st.ListSessions(t.Context(), "u1", now)
			must(t, "ListSessions", err)
			diff(t, "sessions", []flashauth.Session{newest, middle, oldest}, list)
			list, err = st.ListSessions(t.Context(), "nobody", now)
			must(t, "ListSessions of an unknown user", err)
			if len(list) != 0 {
				t.Errorf("unknown user has %d sessions", len(list))
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}
