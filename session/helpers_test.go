package session_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/session"
	"github.com/flashbacktech/flashauth/sqlite/sqlitetest"
)

// openStore opens the store the tests run on: SQLite, or PostgreSQL inside
// onPostgres.
var openStore = func(tb testing.TB) flashauth.Store { return sqlitetest.Open(tb) }

// env is one store and clock, with a first replica's Service.
type env struct {
	store flashauth.Store
	clock *testkit.Clock
	svc   *session.Service
}

func newEnv(tb testing.TB, cfg session.Config) *env {
	tb.Helper()
	e := &env{store: openStore(tb), clock: testkit.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	e.svc = e.replica(tb, cfg)
	return e
}

// replica returns another Service on the same store with its own ledger, as
// another process would have.
func (e *env) replica(tb testing.TB, cfg session.Config) *session.Service {
	tb.Helper()
	cfg.Clock = e.clock
	if cfg.Auditor == nil {
		cfg.Auditor = audit.New(e.store, nil, e.clock)
	}
	l := ledger.New(e.store, ledger.Options{Clock: e.clock, PollInterval: time.Millisecond, MaxPoll: 5 * time.Millisecond})
	svc, err := session.New(e.store, l, cfg)
	if err != nil {
		tb.Fatalf("session.New: %v", err)
	}
	return svc
}

var githubIDs struct {
	sync.Mutex
	next int64
}

// newUser stores a user with its organization.
func (e *env) newUser(tb testing.TB, email string) flashauth.User {
	tb.Helper()
	githubIDs.Lock()
	githubIDs.next++
	gid := githubIDs.next
	githubIDs.Unlock()
	now := e.clock.Now()
	u, _, err := e.store.UpsertGitHubUser(context.Background(), flashauth.User{
		ID:        fmt.Sprintf("user-%d", gid),
		GitHubID:  gid,
		Login:     fmt.Sprintf("login%d", gid),
		Email:     email,
		Name:      "User " + email,
		CreatedAt: now,
		UpdatedAt: now,
	}, flashauth.Organization{ID: fmt.Sprintf("org-%d", gid), Name: "org", CreatedAt: now})
	if err != nil {
		tb.Fatalf("UpsertGitHubUser: %v", err)
	}
	return u
}

func (e *env) open(tb testing.TB, svc *session.Service, u flashauth.User) session.Issued {
	tb.Helper()
	iss, err := svc.Open(context.Background(), u, session.Meta{
		DeviceInfo: []byte(`{"os":"test"}`), IPAddress: "127.0.0.1", UserAgent: "test", Provider: "GITHUB",
	})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return iss
}

// wantCode fails unless err is a *flashauth.Error with code.
var wantCode = testkit.WantCode

// randomToken returns a well-formed refresh token that was never issued.
func randomToken(tb testing.TB) string {
	tb.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
