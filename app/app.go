// Package app wires flashauth together: store, GitHub client, domain
// services and the HTTP server, and runs it with a graceful shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
	"github.com/flashbacktech/flashauth/github"
	"github.com/flashbacktech/flashauth/httpapi"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/postgres"
	"github.com/flashbacktech/flashauth/refresh"
	"github.com/flashbacktech/flashauth/session"
	"github.com/flashbacktech/flashauth/signin"
	"github.com/flashbacktech/flashauth/sqlite"
)

// Config is the configuration of a flashauth process; cmd/flashauth fills it
// from the environment and flags.
type Config struct {
	Addr             string
	DatabaseURL      string
	ClientID         string
	ClientSecret     string
	GitHubURL        string
	GitHubAPIURL     string
	ReplayWindow     time.Duration
	UpstreamTimeout  time.Duration
	RefreshAuth      refresh.Policy
	LogLevel         string
	LogFormat        string
	TrustedProxies   []netip.Prefix
	CORSOrigins      []string
	TLSCert, TLSKey  string
	RateIPPerMinute  float64
	RateTokenPerMin  float64
	RateUserPerMin   float64
	BreakerFailures  int
	BreakerCooldown  time.Duration
	ShutdownTimeout  time.Duration
	SecretKey        []byte
	SessionAccessTTL time.Duration // FLASHAUTH_ACCESS_TTL
	SessionTTL       time.Duration // FLASHAUTH_SESSION_TTL
	ReuseInterval    time.Duration // FLASHAUTH_REUSE_INTERVAL
	KeyRotation      time.Duration // FLASHAUTH_KEY_ROTATION
	Issuer, Audience string        // FLASHAUTH_ISSUER, FLASHAUTH_AUDIENCE
	// ReuseRevokesSessions (FLASHAUTH_REUSE_REVOKES_SESSIONS): when a GitHub
	// refresh token flashauth already rotated comes back after the replay
	// window (suspected theft), also revoke its owner's flashauth sessions.
	ReuseRevokesSessions bool
	// RedirectURIs (FLASHAUTH_REDIRECT_URIS), when set, are the only
	// redirect_uri values sign-in accepts (exact match).
	RedirectURIs []string
	Version      string // reported in logs and the User-Agent
	// HTTP server limits; zero takes the defaults (5s, 15s, 90s, 32 KiB).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// App is a wired flashauth: store, GitHub client, domain services and the
// HTTP handler.
type App struct {
	Store   flashauth.Store
	Ledger  *ledger.Ledger
	Handler http.Handler

	log      *slog.Logger
	clock    flashauth.Clock
	sessions *session.Service
}

// New opens the store c names (applying its migrations), makes sure a
// signing key exists, and wires the services and the HTTP handler. Close
// releases what it opened.
func New(ctx context.Context, c Config, log *slog.Logger, clock flashauth.Clock) (*App, error) {
	raw, err := OpenStore(ctx, c.DatabaseURL)
	if err != nil {
		return nil, err
	}
	// Audit rows are written off the answer path (auditqueue.go).
	store := newAuditQueue(raw, log)
	a := &App{log: log, Store: store, clock: clock}

	gh, err := github.New(github.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		BaseURL:      c.GitHubURL,
		APIURL:       c.GitHubAPIURL,
		Timeout:      c.UpstreamTimeout,
		UserAgent:    "flashauth/" + c.Version,
		Clock:        clock,
	})
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("GitHub client: %w", err)
	}
	breaker := github.NewBreaker(gh, github.BreakerConfig{Failures: c.BreakerFailures, Cooldown: c.BreakerCooldown, Clock: clock})

	a.Ledger = ledger.New(store, ledger.Options{
		Clock: clock,
		// A claim must outlive the upstream calls it guards: one for a
		// refresh; a code exchange plus /user and /user/emails (with their
		// retries) for a sign-in.
		Lease:     c.UpstreamTimeout + 5*time.Second,
		KindLease: map[string]time.Duration{flashauth.LedgerGitHubCode: codeLease(c.UpstreamTimeout)},
		Logger:    log,
	})
	sessions, err := session.New(store, a.Ledger, session.Config{
		Issuer:        c.Issuer,
		Audience:      c.Audience,
		AccessTTL:     c.SessionAccessTTL,
		RefreshTTL:    c.SessionTTL,
		ReuseInterval: c.ReuseInterval,
		KeyRotation:   c.KeyRotation,
		SecretKey:     c.SecretKey,
		Clock:         clock,
		Logger:        log,
	})
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("sessions: %w", err)
	}
	if err := sessions.EnsureKeys(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("signing keys (is FLASHAUTH_SECRET_KEY the one they were sealed with?): %w", err)
	}
	a.sessions = sessions
	signIn, err := signin.New(store, breaker, sessions, a.Ledger, signin.Config{
		ClientID:            c.ClientID,
		AuthorizeURL:        strings.TrimRight(c.GitHubURL, "/") + "/login/oauth/authorize",
		ReplayWindow:        c.ReplayWindow,
		AllowedRedirectURIs: c.RedirectURIs,
		Clock:               clock,
		Logger:              log,
	})
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("sign-in: %w", err)
	}
	auditor := audit.New(store, log, clock)
	ref := refresh.New(breaker, store, a.Ledger, refresh.Config{
		ReplayWindow: c.ReplayWindow,
		Policy:       c.RefreshAuth,
		Clock:        clock,
		Logger:       log,
		OnRejectedRotated: func(ctx context.Context, lin flashauth.Lineage) {
			a.suspectedReuse(ctx, auditor, lin, c.ReuseRevokesSessions)
		},
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.Handler = httpapi.NewServer(httpapi.Config{
		Logger:   log,
		Clock:    clock,
		Store:    store,
		Refresh:  ref,
		Sessions: sessions,
		SignIn:   signIn,
		Audit:    auditor,
		Limits: httpapi.Limits{
			IPPerMinute: c.RateIPPerMinute, IPBurst: burstOf(c.RateIPPerMinute),
			TokenPerMinute: c.RateTokenPerMin, TokenBurst: burstOf(c.RateTokenPerMin),
			UserPerMinute: c.RateUserPerMin, UserBurst: burstOf(c.RateUserPerMin),
		},
		TrustedProxies: c.TrustedProxies,
		CORSOrigins:    c.CORSOrigins,
		Registry:       reg,
	})
	return a, nil
}

// burstOf allows a sixth of a minute's quota at once, at least 5.
func burstOf(perMinute float64) int {
	const most = 1 << 20 // beyond this a limit is no limit; keeps the int conversion sane
	return max(int(min(perMinute/6, most)), 5)
}

// OpenStore opens the store FLASHAUTH_DATABASE_URL names and applies its
// migrations.
func OpenStore(ctx context.Context, url string) (flashauth.Store, error) {
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		path := strings.TrimPrefix(url, "sqlite:")
		if path == "" {
			return nil, errors.New("FLASHAUTH_DATABASE_URL: sqlite: needs a path")
		}
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
		}
		return db, nil
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		db, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL database: %w", err)
		}
		return db, nil
	}
	return nil, fmt.Errorf("FLASHAUTH_DATABASE_URL: unsupported database %q", RedactURL(url))
}

// suspectedReuse handles a rotated-out GitHub refresh token presented after
// the replay window: whoever holds it has a stale copy, possibly stolen.
func (a *App) suspectedReuse(ctx context.Context, rec *audit.Recorder, lin flashauth.Lineage, revoke bool) {
	detail := "rotated-out GitHub refresh token presented after the replay window"
	if revoke && lin.UserID != "" {
		if n, err := a.Store.RevokeUserSessions(ctx, lin.UserID, a.clock.Now()); err != nil {
			a.log.ErrorContext(ctx, "revoking sessions after suspected reuse failed", "user_id", lin.UserID, "err", err)
			detail += "; revoking the owner's sessions failed"
		} else {
			detail += fmt.Sprintf("; %d sessions revoked", n)
		}
	}
	rec.Record(ctx, flashauth.AuditEvent{
		Type: audit.TypeReuseDetected, Outcome: audit.OutcomeSuspected, UserID: lin.UserID,
		RequestID: httpapi.RequestID(ctx), Detail: detail,
	})
}

// Close releases the store.
func (a *App) Close() {
	_ = a.Store.Close()
}

// Serve runs the HTTP server on ln until ctx is done, then stops accepting,
// lets in-flight requests (and the refreshes they are committing) finish,
// and returns.
func (a *App) Serve(ctx context.Context, ln net.Listener, c Config) error {
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: orDefault(c.ReadHeaderTimeout, 5*time.Second),
		ReadTimeout:       orDefault(c.ReadTimeout, 15*time.Second),
		// The slowest honest answer: a sign-in that waits out a dead
		// replica's lease, then makes its own upstream calls.
		WriteTimeout:   codeLease(c.UpstreamTimeout) + 7*c.UpstreamTimeout + 15*time.Second,
		IdleTimeout:    orDefault(c.IdleTimeout, 90*time.Second),
		MaxHeaderBytes: orDefault(c.MaxHeaderBytes, 32<<10),
		ErrorLog:       slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() {
		if c.TLSCert != "" {
			errc <- srv.ServeTLS(ln, c.TLSCert, c.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	purgeDone := make(chan struct{})
	purgeCtx, stopPurge := context.WithCancel(context.Background())
	go func() {
		defer close(purgeDone)
		a.purgeLoop(purgeCtx)
	}()
	defer func() { stopPurge(); <-purgeDone }()

	a.log.Info("flashauth started", "addr", ln.Addr().String(), "version", c.Version)
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down: draining in-flight requests", "timeout", c.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	a.log.Info("shutdown complete")
	return nil
}

// purgeLoop deletes ledger entries whose window has passed, so sealed
// results do not outlive it.
func (a *App) purgeLoop(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := a.Ledger.Purge(ctx); err != nil {
			a.log.Warn("ledger purge failed", "err", err)
		} else if n > 0 {
			a.log.Debug("ledger purged", "entries", n)
		}
		if _, err := a.Store.PurgeOAuthStates(ctx, a.clock.Now()); err != nil {
			a.log.Warn("oauth state purge failed", "err", err)
		}
		// Rotates the signing key when it is due (one replica wins) and
		// drops expired ones.
		if err := a.sessions.EnsureKeys(ctx); err != nil {
			a.log.Warn("signing key maintenance failed", "err", err)
		}
	}
}

// RedactURL drops a password from a database URL before it is shown.
func RedactURL(s string) string {
	if i := strings.LastIndex(s, "@"); i > 0 {
		if j := strings.Index(s, "://"); j > 0 && j < i {
			return s[:j+3] + "[REDACTED]" + s[i:]
		}
	}
	return s
}

// codeLease bounds a sign-in's claim: a code exchange plus /user and
// /user/emails with their retries, generously.
func codeLease(upstream time.Duration) time.Duration { return 7*upstream + 10*time.Second }

// orDefault is v when it is set (positive), else def.
func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
