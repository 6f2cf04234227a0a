package refresh

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/sqlite/sqlitetest"
)

// A token flashauth already rotated that GitHub rejects (presented after
// the replay window) is a suspected reuse: refresh audits it under the
// presenting request and, with RevokeOnReuse, ends the owner's sessions.
// A rejected token flashauth never rotated is just a rejection.
func TestSuspectedReuse(t *testing.T) {
	rows := []struct {
		name        string
		rotated     bool
		revoke      bool
		wantTrail   []string // type/outcome, newest first
		wantDetail  string
		wantRevoked bool
	}{
		{"rotated, audit only", true, false, []string{"github_refresh/rejected", "reuse_detected/suspected"}, "after the replay window", false},
		{"rotated, revoke", true, true, []string{"github_refresh/rejected", "reuse_detected/suspected"}, "; 1 sessions revoked", true},
		{"never rotated", false, true, []string{"github_refresh/rejected"}, "", false},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			db := sqlitetest.Open(t)
			clk := testkit.NewClock(time.UnixMilli(1764120000000))
			ctx := t.Context()
			now := clk.Now()
			u, _, err := db.UpsertGitHubUser(ctx, flashauth.User{ID: "u1", GitHubID: 1, Login: "victim", Email: "v@example.com", CreatedAt: now, UpdatedAt: now},
				flashauth.Organization{ID: "o1", Name: "org", CreatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			sess := flashauth.Session{ID: "s1", UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
			if err := db.CreateSession(ctx, sess, seal.Hash("session-refresh")); err != nil {
				t.Fatal(err)
			}
			lin := flashauth.Lineage{TokenHash: seal.Hash("ghr_stale"), UserID: u.ID, CreatedAt: now}
			if r.rotated {
				lin.ReplacedBy, lin.RotatedAt = seal.Hash("ghr_next"), now
			}
			if err := db.PutLineage(ctx, lin); err != nil {
				t.Fatal(err)
			}
			gh := &fakeGitHub{answer: func(context.Context, string) (flashauth.GitHubToken, error) {
				return flashauth.GitHubToken{}, &flashauth.UpstreamError{Kind: flashauth.UpstreamRejected, Op: "refresh", OAuthCode: "bad_refresh_token"}
			}}
			cfg := Config{Clock: clk, Auditor: audit.New(db, nil, clk)}
			if r.revoke {
				cfg.RevokeOnReuse = db
			}
			s := New(gh, db, ledger.New(db, ledger.Options{Clock: clk}), cfg)
			reqCtx := flashauth.WithRequestInfo(ctx, flashauth.RequestInfo{ID: "stale-copy-1", IP: "192.0.2.9", SessionID: "s-presenter"})
			if _, err := s.Refresh(reqCtx, "ghr_stale", Caller{}); flashauth.ErrorCode(err) != flashauth.CodeInvalidRefreshToken {
				t.Fatalf("err = %v, want INVALID_REFRESH_TOKEN", err)
			}

			evs, err := db.ListAudit(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			var trail []string
			for _, e := range evs {
				trail = append(trail, e.Type+"/"+e.Outcome)
				if e.UserID != u.ID || e.RequestID != "stale-copy-1" || e.IPAddress != "192.0.2.9" || e.SessionID != "s-presenter" {
					t.Errorf("%s/%s row names user %q request %q ip %q session %q", e.Type, e.Outcome, e.UserID, e.RequestID, e.IPAddress, e.SessionID)
				}
				if e.Type == audit.TypeReuseDetected && !strings.Contains(e.Detail, r.wantDetail) {
					t.Errorf("detail %q, want it to contain %q", e.Detail, r.wantDetail)
				}
			}
			if strings.Join(trail, " ") != strings.Join(r.wantTrail, " ") {
				t.Errorf("trail %v, want %v", trail, r.wantTrail)
			}
			got, err := db.GetSession(ctx, sess.ID)
			if err != nil {
				t.Fatal(err)
			}
			if revoked := !got.RevokedAt.IsZero(); revoked != r.wantRevoked {
				t.Errorf("owner's session revoked = %v, want %v", revoked, r.wantRevoked)
			}
		})
	}
}
