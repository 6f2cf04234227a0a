package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/postgres/pgtest"
	"github.com/flashbacktech/flashauth/seal"
)

// TestKilledReplicaClaimIsTakenOver kills a replica with SIGKILL while it
// holds the claim on a token and is waiting for GitHub. Another replica
// asked for the same token waits for the claim's lease (upstream timeout 1s
// + 5s) and then refreshes the token itself. What it gets depends on
// whether GitHub acted on the dead replica's request, which nobody can know:
//   - GitHub never processed it: the token is intact, the takeover refreshes
//     it normally (200).
//   - GitHub rotated the token but the answer died with the replica: the new
//     token is lost, the old one is spent, and the takeover gets GitHub's
//     bad_refresh_token (401 INVALID_REFRESH_TOKEN): the user signs in again.
func TestKilledReplicaClaimIsTakenOver(t *testing.T) {
	tests := []struct {
		name       string
		fault      func(u *upstream)
		wantStatus int
		wantCode   string
	}{
		{
			name:       "GitHub never processed the request",
			fault:      func(u *upstream) { u.emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultHang, Count: 1}) },
			wantStatus: http.StatusOK,
		},
		{
			name:       "GitHub rotated the token, the answer died with the replica",
			fault:      func(u *upstream) { u.holdNextAnswer() },
			wantStatus: http.StatusUnauthorized,
			wantCode:   flashauth.CodeInvalidRefreshToken,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dbURL := pgtest.URL(t)
			b := newTestbed(t)
			rs := b.start(2, b.env(dbURL, "FLASHAUTH_UPSTREAM_TIMEOUT", "1s"))
			a, survivor := rs[0], rs[1]
			token := b.grant()
			tc.fault(b.up)

			dead := make(chan error, 1)
			go func() {
				ans, err := b.refresh(a.URL, token)
				if err == nil {
					t.Errorf("%s answered %s before it was killed: the machine is too slow for a 1s upstream timeout", a.name, ans)
				}
				dead <- err
			}()
			// The claim is taken before GitHub is called: once the call has
			// arrived, A holds it.
			// Killed at once, well inside A's 1s upstream timeout; the
			// claim it leaves behind is read afterwards.
			b.up.waitRefreshes(t, token, 1, 10*time.Second)
			a.kill()
			leaseUntil := pendingLease(t, dbURL, token)
			<-dead
			if !a.killedBySIGKILL() {
				t.Fatalf("%s did not die by SIGKILL", a.name)
			}

			// Liveness ("not forever") is requestTimeout's to prove: no
			// timed assertion here.
			t0 := time.Now()
			ans := b.mustRefresh(survivor.URL, token)
			took := time.Since(t0)
			t.Logf("%s answered %s %s after the kill; the lease ran out %s after it",
				survivor.name, ans, took.Round(time.Millisecond), leaseUntil.Sub(t0).Round(time.Millisecond))
			if ans.Status != tc.wantStatus || ans.field("error_code") != tc.wantCode {
				t.Fatalf("survivor answered %s %s, want %d %s", ans, ans.Body, tc.wantStatus, tc.wantCode)
			}
			calls := b.up.refreshesOf(token)
			if len(calls) != 2 {
				t.Fatalf("GitHub saw %d refreshes of the token, want 2 (the dead replica's and the takeover)", len(calls))
			}
			// Safety: nobody went to GitHub while the dead replica's claim
			// was still live.
			if calls[1].Before(leaseUntil) {
				t.Errorf("the takeover called GitHub %s before the lease ran out", leaseUntil.Sub(calls[1]))
			}
		})
	}
}

// pendingLease reads the lease of the pending claim on token's refresh.
func pendingLease(t *testing.T, dbURL, token string) time.Time {
	t.Helper()
	var lease time.Time
	err := queryRow(t, dbURL, `SELECT lease_until FROM ledger WHERE kind = $1 AND key = $2 AND state = 1`,
		[]any{flashauth.LedgerGitHubRefresh, seal.Hash(token)}, &lease)
	if err != nil {
		t.Fatalf("no pending claim on the token: %v", err)
	}
	return lease
}

// queryRow runs sql with args on a connection of its own to dbURL, behind
// the replicas' backs, and scans its one row into dest.
func queryRow(t *testing.T, dbURL, sql string, args []any, dest ...any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql, args...).Scan(dest...)
}
