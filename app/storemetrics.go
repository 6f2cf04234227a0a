package app

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashbacktech/flashauth"
)

// meteredStore times every store operation for /metrics. It embeds the
// store, so a method it does not wrap still works (untimed).
type meteredStore struct {
	flashauth.Store
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	// local: the store is in this process (SQLite), so its point reads
	// run without their caller's cancellation (see readCtx).
	local bool
}

// newMeteredStore wraps s. When s reads lineage and ledger in one round
// trip (flashauth.LineageLedgerReader), so does the wrapper; otherwise the
// wrapper does not claim to, and the refresh makes its two reads. local
// says s is in this process, with nothing to wait on across a network
// (SQLite; see readCtx).
func newMeteredStore(s flashauth.Store, reg prometheus.Registerer, local bool) (flashauth.Store, error) {
	m := &meteredStore{
		Store: s,
		local: local,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flashauth_store_operation_duration_seconds",
			Help:    "Latency of store operations, by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashauth_store_errors_total",
			Help: "Store operations that failed, by operation (not found, conflict and lost claims are answers, not failures).",
		}, []string{"operation"}),
	}
	for _, c := range []prometheus.Collector{m.duration, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	if r, ok := s.(flashauth.LineageLedgerReader); ok {
		return &meteredReader{meteredStore: m, reader: r}, nil
	}
	return m, nil
}

// meteredReader is a meteredStore over a flashauth.LineageLedgerReader.
type meteredReader struct {
	*meteredStore
	reader flashauth.LineageLedgerReader
}

// withLineageLedger is s, a wrapper of under that embeds it as a
// flashauth.Store, with under's flashauth.LineageLedgerReader if it has one
// (embedding the interface hides it).
func withLineageLedger(s, under flashauth.Store) flashauth.Store {
	if r, ok := under.(flashauth.LineageLedgerReader); ok {
		return struct {
			flashauth.Store
			flashauth.LineageLedgerReader
		}{s, r}
	}
	return s
}

func (m *meteredReader) GetLineageLedger(ctx context.Context, kind string, hash []byte) (flashauth.LineageLedger, error) {
	return timed(m.meteredStore, "get_lineage_ledger", func() (flashauth.LineageLedger, error) {
		return m.reader.GetLineageLedger(m.readCtx(ctx), kind, hash)
	})
}

// readCtx is the context a point read (one row by its key) of the store
// runs on: ctx itself, or for a local store ctx without its cancellation
// (its values kept). A SQLite read of one row has nothing to wait on but
// the disk and is over in microseconds, so stopping it when its caller
// goes away saves nothing; but a cancellable context costs it two
// goroutines, database/sql's and the driver's watchers of ctx.Done(),
// about as much CPU as the read itself (docs/design.md). PostgreSQL's reads
// keep ctx: they wait on a network and a server.
func (m *meteredStore) readCtx(ctx context.Context) context.Context {
	if m.local {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// done records one operation that started at start and ended with err.
func (m *meteredStore) done(op string, start time.Time, err error) {
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, flashauth.ErrNotFound) && !errors.Is(err, flashauth.ErrConflict) && !errors.Is(err, flashauth.ErrClaimLost) {
		m.errors.WithLabelValues(op).Inc()
	}
}

func timed[T any](m *meteredStore, op string, f func() (T, error)) (T, error) {
	start := time.Now()
	v, err := f()
	m.done(op, start, err)
	return v, err
}

func timed0(m *meteredStore, op string, f func() error) error {
	start := time.Now()
	err := f()
	m.done(op, start, err)
	return err
}

// claimed is ClaimLedger's pair of results.
type claimed struct {
	entry flashauth.LedgerEntry
	held  bool
}

func (m *meteredStore) ClaimLedger(ctx context.Context, kind string, key []byte, claimID string, now, leaseUntil time.Time) (flashauth.LedgerEntry, bool, error) {
	c, err := timed(m, "claim_ledger", func() (claimed, error) {
		e, held, err := m.Store.ClaimLedger(ctx, kind, key, claimID, now, leaseUntil)
		return claimed{e, held}, err
	})
	return c.entry, c.held, err
}

func (m *meteredStore) CompleteLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, expiresAt time.Time, lineage []flashauth.Lineage) error {
	return timed0(m, "complete_ledger", func() error {
		return m.Store.CompleteLedger(ctx, kind, key, claimID, sealed, expiresAt, lineage)
	})
}

// committed is CommitLedger's pair of results.
type committed struct {
	entry     flashauth.LedgerEntry
	committed bool
}

func (m *meteredStore) CommitLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, now, expiresAt time.Time, rotation *flashauth.SessionRotation) (flashauth.LedgerEntry, bool, error) {
	c, err := timed(m, "commit_ledger", func() (committed, error) {
		e, ok, err := m.Store.CommitLedger(ctx, kind, key, claimID, sealed, now, expiresAt, rotation)
		return committed{e, ok}, err
	})
	return c.entry, c.committed, err
}

func (m *meteredStore) ReleaseLedger(ctx context.Context, kind string, key []byte, claimID string) error {
	return timed0(m, "release_ledger", func() error { return m.Store.ReleaseLedger(ctx, kind, key, claimID) })
}

func (m *meteredStore) GetLedger(ctx context.Context, kind string, key []byte) (flashauth.LedgerEntry, error) {
	return timed(m, "get_ledger", func() (flashauth.LedgerEntry, error) { return m.Store.GetLedger(m.readCtx(ctx), kind, key) })
}

func (m *meteredStore) PurgeLedger(ctx context.Context, now time.Time) (int64, error) {
	return timed(m, "purge_ledger", func() (int64, error) { return m.Store.PurgeLedger(ctx, now) })
}

func (m *meteredStore) PutLineage(ctx context.Context, l flashauth.Lineage) error {
	return timed0(m, "put_lineage", func() error { return m.Store.PutLineage(ctx, l) })
}

func (m *meteredStore) GetLineage(ctx context.Context, tokenHash []byte) (flashauth.Lineage, error) {
	return timed(m, "get_lineage", func() (flashauth.Lineage, error) { return m.Store.GetLineage(m.readCtx(ctx), tokenHash) })
}

// upserted is UpsertGitHubUser's pair of results.
type upserted struct {
	user    flashauth.User
	created bool
}

func (m *meteredStore) UpsertGitHubUser(ctx context.Context, u flashauth.User, org flashauth.Organization) (flashauth.User, bool, error) {
	r, err := timed(m, "upsert_github_user", func() (upserted, error) {
		u, created, err := m.Store.UpsertGitHubUser(ctx, u, org)
		return upserted{u, created}, err
	})
	return r.user, r.created, err
}

func (m *meteredStore) GetUser(ctx context.Context, id string) (flashauth.User, error) {
	return timed(m, "get_user", func() (flashauth.User, error) { return m.Store.GetUser(m.readCtx(ctx), id) })
}

func (m *meteredStore) CreateSession(ctx context.Context, s flashauth.Session, refreshHash []byte) error {
	return timed0(m, "create_session", func() error { return m.Store.CreateSession(ctx, s, refreshHash) })
}

func (m *meteredStore) GetSession(ctx context.Context, id string) (flashauth.Session, error) {
	return timed(m, "get_session", func() (flashauth.Session, error) { return m.Store.GetSession(m.readCtx(ctx), id) })
}

func (m *meteredStore) GetSessionLedger(ctx context.Context, kind string, refreshHash []byte) (flashauth.SessionLedger, error) {
	return timed(m, "get_session_ledger", func() (flashauth.SessionLedger, error) {
		return m.Store.GetSessionLedger(m.readCtx(ctx), kind, refreshHash)
	})
}

// found is FindSessionByRefresh's pair of results.
type found struct {
	session flashauth.Session
	current bool
}

func (m *meteredStore) FindSessionByRefresh(ctx context.Context, refreshHash []byte) (flashauth.Session, bool, error) {
	r, err := timed(m, "find_session_by_refresh", func() (found, error) {
		s, current, err := m.Store.FindSessionByRefresh(m.readCtx(ctx), refreshHash)
		return found{s, current}, err
	})
	return r.session, r.current, err
}

func (m *meteredStore) TouchSession(ctx context.Context, id string, now time.Time) error {
	return timed0(m, "touch_session", func() error { return m.Store.TouchSession(ctx, id, now) })
}

func (m *meteredStore) RevokeSession(ctx context.Context, id string, now time.Time) error {
	return timed0(m, "revoke_session", func() error { return m.Store.RevokeSession(ctx, id, now) })
}

func (m *meteredStore) RevokeUserSessions(ctx context.Context, userID string, now time.Time) (int64, error) {
	return timed(m, "revoke_user_sessions", func() (int64, error) { return m.Store.RevokeUserSessions(ctx, userID, now) })
}

func (m *meteredStore) ListSessions(ctx context.Context, userID string, now time.Time) ([]flashauth.Session, error) {
	return timed(m, "list_sessions", func() ([]flashauth.Session, error) { return m.Store.ListSessions(ctx, userID, now) })
}

func (m *meteredStore) ListSigningKeys(ctx context.Context) ([]flashauth.SigningKey, error) {
	return timed(m, "list_signing_keys", func() ([]flashauth.SigningKey, error) { return m.Store.ListSigningKeys(ctx) })
}

func (m *meteredStore) PutOAuthState(ctx context.Context, s flashauth.OAuthState) error {
	return timed0(m, "put_oauth_state", func() error { return m.Store.PutOAuthState(ctx, s) })
}

func (m *meteredStore) TakeOAuthState(ctx context.Context, hash []byte, now time.Time) (flashauth.OAuthState, error) {
	return timed(m, "take_oauth_state", func() (flashauth.OAuthState, error) { return m.Store.TakeOAuthState(ctx, hash, now) })
}

func (m *meteredStore) PurgeOAuthStates(ctx context.Context, now time.Time) (int64, error) {
	return timed(m, "purge_oauth_states", func() (int64, error) { return m.Store.PurgeOAuthStates(ctx, now) })
}

func (m *meteredStore) AppendAudit(ctx context.Context, e flashauth.AuditEvent) error {
	return timed0(m, "append_audit", func() error { return m.Store.AppendAudit(ctx, e) })
}

func (m *meteredStore) AppendAudits(ctx context.Context, events []flashauth.AuditEvent) error {
	return timed0(m, "append_audits", func() error { return m.Store.AppendAudits(ctx, events) })
}

func (m *meteredStore) PurgeAudit(ctx context.Context, before time.Time, limit int) (int64, error) {
	return timed(m, "purge_audit", func() (int64, error) { return m.Store.PurgeAudit(ctx, before, limit) })
}

func (m *meteredStore) Ping(ctx context.Context) error {
	return timed0(m, "ping", func() error { return m.Store.Ping(ctx) })
}

func (m *meteredStore) GetOrganization(ctx context.Context, id string) (flashauth.Organization, error) {
	return timed(m, "get_organization", func() (flashauth.Organization, error) { return m.Store.GetOrganization(m.readCtx(ctx), id) })
}

func (m *meteredStore) InsertSigningKey(ctx context.Context, k flashauth.SigningKey) error {
	return timed0(m, "insert_signing_key", func() error { return m.Store.InsertSigningKey(ctx, k) })
}

func (m *meteredStore) DeleteSigningKeys(ctx context.Context, now time.Time) (int64, error) {
	return timed(m, "delete_signing_keys", func() (int64, error) { return m.Store.DeleteSigningKeys(ctx, now) })
}

func (m *meteredStore) ListAudit(ctx context.Context, limit int) ([]flashauth.AuditEvent, error) {
	return timed(m, "list_audit", func() ([]flashauth.AuditEvent, error) { return m.Store.ListAudit(ctx, limit) })
}
