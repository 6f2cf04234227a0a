package refresh

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/sqlite/sqlitetest"
)

// fakeGitHub answers refreshes with answer and counts them.
type fakeGitHub struct {
	calls  atomic.Int64
	answer func(ctx context.Context, refreshToken string) (flashauth.GitHubToken, error)
}

func (g *fakeGitHub) RefreshToken(ctx context.Context, rt string) (flashauth.GitHubToken, error) {
	g.calls.Add(1)
	return g.answer(ctx, rt)
}

func (g *fakeGitHub) ExchangeCode(context.Context, flashauth.CodeExchange) (flashauth.GitHubToken, error) {
	return flashauth.GitHubToken{}, errors.New("not used")
}

func (g *fakeGitHub) User(context.Context, string) (flashauth.GitHubUser, error) {
	return flashauth.GitHubUser{}, errors.New("not used")
}

func (g *fakeGitHub) Emails(context.Context, string) ([]flashauth.GitHubEmail, error) {
	return nil, errors.New("not used")
}

func rotating(ctx context.Context, rt string) (flashauth.GitHubToken, error) {
	return flashauth.GitHubToken{AccessToken: "ghu_new", RefreshToken: "ghr_new", ExpiresIn: 8 * time.Hour}, nil
}

// The ownership policy is applied before anything is claimed or sent
// upstream: a refused caller spends nothing.
func TestRefreshOwnershipCheckedBeforeUpstream(t *testing.T) {
	const token = "ghr_owned_by_u1"
	rows := []struct {
		name   string
		policy Policy
		caller string
		token  string
		want   string
	}{
		{"compat, another user", PolicyCompat, "u2", token, flashauth.CodeTokenOwnerMismatch},
		{"session, no caller", PolicySession, "", token, flashauth.CodeAuthRequired},
		{"session, another user", PolicySession, "u2", token, flashauth.CodeTokenOwnerMismatch},
		{"session, unknown lineage", PolicySession, "u1", "ghr_unknown", flashauth.CodeTokenOwnerMismatch},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			db := sqlitetest.Open(t)
			clk := testkit.NewClock(time.UnixMilli(1764120000000))
			if err := db.PutLineage(t.Context(), flashauth.Lineage{TokenHash: seal.Hash(token), UserID: "u1", CreatedAt: clk.Now()}); err != nil {
				t.Fatal(err)
			}
			gh := &fakeGitHub{answer: rotating}
			s := New(gh, db, ledger.New(db, ledger.Options{Clock: clk}), Config{Policy: r.policy, Clock: clk})
			_, err := s.Refresh(t.Context(), r.token, Caller{UserID: r.caller})
			if flashauth.ErrorCode(err) != r.want {
				t.Fatalf("err = %v, want %s", err, r.want)
			}
			if n := gh.calls.Load(); n != 0 {
				t.Fatalf("%d upstream calls for a refused caller", n)
			}
			if _, err := db.GetLedger(t.Context(), flashauth.LedgerGitHubRefresh, seal.Hash(r.token)); !errors.Is(err, flashauth.ErrNotFound) {
				t.Fatalf("ledger entry for a refused caller: %v", err)
			}
		})
	}
}

// An outcome that could not be committed is still answered. The error log
// says what was lost: a rotated token (error level) or only a rejection,
// which is no token at all.
func TestRefreshUncommittedOutcome(t *testing.T) {
	rows := []struct {
		name     string
		answer   func(ctx context.Context, rt string) (flashauth.GitHubToken, error)
		wantCode string
		wantLog  string
		notLog   string
	}{
		{"rotated token", rotating, "", "github refresh succeeded but its result could not be committed", ""},
		{"rejection", func(context.Context, string) (flashauth.GitHubToken, error) {
			return flashauth.GitHubToken{}, &flashauth.UpstreamError{Kind: flashauth.UpstreamRejected, Op: "refresh", OAuthCode: "bad_refresh_token"}
		}, flashauth.CodeInvalidRefreshToken, "github refresh rejection could not be committed", "succeeded"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			db := sqlitetest.Open(t)
			clk := testkit.NewClock(time.UnixMilli(1764120000000))
			var logs testkit.SyncBuffer
			gh := &fakeGitHub{answer: func(ctx context.Context, rt string) (flashauth.GitHubToken, error) {
				_ = db.Close() // the database goes away while GitHub answers
				return r.answer(ctx, rt)
			}}
			s := New(gh, db, ledger.New(db, ledger.Options{Clock: clk}), Config{
				Clock: clk, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			res, err := s.Refresh(context.Background(), "ghr_presented", Caller{})
			if got := errCode(err); got != r.wantCode {
				t.Fatalf("err = %v, want code %q", err, r.wantCode)
			}
			if r.wantCode == "" && res.Token.RefreshToken != "ghr_new" {
				t.Fatalf("token = %+v, want the uncommitted rotation answered", res.Token)
			}
			out := logs.String()
			if !strings.Contains(out, r.wantLog) || (r.notLog != "" && strings.Contains(out, r.notLog)) {
				t.Fatalf("log = %q, want %q and not %q", out, r.wantLog, r.notLog)
			}
			if strings.Contains(out, "ghr_presented") || strings.Contains(out, "ghr_new") || strings.Contains(out, "ghu_new") {
				t.Fatalf("a token leaked into the log: %q", out)
			}
		})
	}
}

func errCode(err error) string {
	if err == nil {
		return ""
	}
	return flashauth.ErrorCode(err)
}
