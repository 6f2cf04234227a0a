package refresh

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/sqlite/sqlitetest"
)

// readCounts counts the store's reads of lineage and ledger.
type readCounts struct {
	lineage, ledger, combined atomic.Int64
}

func (c *readCounts) reads() [3]int64 {
	return [3]int64{c.lineage.Load(), c.ledger.Load(), c.combined.Load()}
}

// plainStore counts GetLineage and GetLedger and has no
// flashauth.LineageLedgerReader: the refresh's fallback.
type plainStore struct {
	flashauth.Store
	n *readCounts
}

func (s plainStore) GetLineage(ctx context.Context, h []byte) (flashauth.Lineage, error) {
	s.n.lineage.Add(1)
	return s.Store.GetLineage(ctx, h)
}

func (s plainStore) GetLedger(ctx context.Context, kind string, key []byte) (flashauth.LedgerEntry, error) {
	s.n.ledger.Add(1)
	return s.Store.GetLedger(ctx, kind, key)
}

// readerStore is a plainStore that reads both at once.
type readerStore struct {
	plainStore
	r flashauth.LineageLedgerReader
}

func (s readerStore) GetLineageLedger(ctx context.Context, kind string, h []byte) (flashauth.LineageLedger, error) {
	s.n.combined.Add(1)
	return s.r.GetLineageLedger(ctx, kind, h)
}

// A refresh reads the token's lineage and its ledger entry in one store
// read when the store can (flashauth.LineageLedgerReader), in two when it
// cannot, and behaves the same either way: a first refresh runs, a replay
// is served from the entry read with the lineage (without BeforeClaim, the
// per-token limit), a committed rejection of a known, never-rotated token
// replays too (the lineage unchanged by it), and a foreign caller is
// refused before the ledger whatever it holds.
func TestRefreshReadsLineageAndLedgerOnce(t *testing.T) {
	for _, combined := range []bool{true, false} {
		name := map[bool]string{true: "one read", false: "store without the capability"}[combined]
		t.Run(name, func(t *testing.T) {
			db := sqlitetest.Open(t)
			clk := testkit.NewClock(time.UnixMilli(1764120000000))
			var n readCounts
			var st flashauth.Store = plainStore{Store: db, n: &n}
			if combined {
				st = readerStore{plainStore: plainStore{Store: db, n: &n}, r: db}
			}
			_, isReader := st.(flashauth.LineageLedgerReader)
			if isReader != combined {
				t.Fatalf("store is a LineageLedgerReader: %v, want %v", isReader, combined)
			}
			// Reads per refresh: GetLineage, GetLedger, GetLineageLedger. A
			// caller refused by the lineage never gets to the ledger.
			perRefresh, perRefusal := [3]int64{1, 1, 0}, [3]int64{1, 0, 0}
			if combined {
				perRefresh, perRefusal = [3]int64{0, 0, 1}, [3]int64{0, 0, 1}
			}
			var charged atomic.Int64
			l := ledger.New(st, ledger.Options{Clock: clk, BeforeClaim: func(context.Context, string, []byte) error {
				charged.Add(1)
				return nil
			}})
			const rejected = "ghr_rejected"
			for _, tok := range []string{"ghr_first", rejected} {
				if err := db.PutLineage(t.Context(), flashauth.Lineage{TokenHash: seal.Hash(tok), UserID: "u1", CreatedAt: clk.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			gh := &fakeGitHub{answer: func(_ context.Context, rt string) (flashauth.GitHubToken, error) {
				if rt == rejected {
					return flashauth.GitHubToken{}, &flashauth.UpstreamError{Kind: flashauth.UpstreamRejected, Op: "refresh", OAuthCode: "bad_refresh_token"}
				}
				return rotating(context.Background(), rt)
			}}
			s := New(gh, st, l, Config{Clock: clk})

			refresh := func(token string, caller Caller) (Result, error) {
				t.Helper()
				before := n.reads()
				res, err := s.Refresh(t.Context(), token, caller)
				after, want := n.reads(), perRefresh
				if flashauth.ErrorCode(err) == flashauth.CodeTokenOwnerMismatch {
					want = perRefusal
				}
				for i := range after {
					if d := after[i] - before[i]; d != want[i] {
						t.Fatalf("refresh of %s: reads (lineage, ledger, both) went %v -> %v, want +%v", token, before, after, want)
					}
				}
				return res, err
			}

			first, err := refresh("ghr_first", Caller{UserID: "u1"})
			if err != nil || first.Replayed || first.Token.RefreshToken != "ghr_new" {
				t.Fatalf("first refresh: %+v, %v", first, err)
			}
			for i := range 3 {
				again, err := refresh("ghr_first", Caller{UserID: "u1"})
				if err != nil || !again.Replayed || again.Token != first.Token {
					t.Fatalf("replay %d: %+v, %v; want %+v replayed", i, again, err, first.Token)
				}
			}
			// Another user is refused the committed outcome, and the rotated
			// token inherited its owner.
			for _, tok := range []string{"ghr_first", "ghr_new"} {
				if _, err := refresh(tok, Caller{UserID: "u2"}); flashauth.ErrorCode(err) != flashauth.CodeTokenOwnerMismatch {
					t.Fatalf("foreign caller of %s: %v, want TOKEN_OWNER_MISMATCH", tok, err)
				}
			}
			for i := range 5 {
				_, err := refresh(rejected, Caller{UserID: "u1"})
				if flashauth.ErrorCode(err) != flashauth.CodeInvalidRefreshToken {
					t.Fatalf("rejected token, call %d: %v, want INVALID_REFRESH_TOKEN", i, err)
				}
			}
			// A foreign caller of the rejected token is refused, not replayed.
			if _, err := refresh(rejected, Caller{UserID: "u2"}); flashauth.ErrorCode(err) != flashauth.CodeTokenOwnerMismatch {
				t.Fatalf("foreign caller of a committed rejection: %v, want TOKEN_OWNER_MISMATCH", err)
			}
			if c := gh.calls.Load(); c != 2 {
				t.Fatalf("%d GitHub calls, want 2 (one per token)", c)
			}
			if c := charged.Load(); c != 2 {
				t.Fatalf("BeforeClaim ran %d times, want 2 (never for a replay)", c)
			}
		})
	}
}
