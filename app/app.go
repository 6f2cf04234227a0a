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
	"github.com/flashbacktech/flashauth/ratelimit"
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
	SecretKey        []byte        // FLASHAUTH_SECRET_KEY: seals signing keys at rest
	OldSecretKeys    [][]byte      // FLASHAUTH_SECRET_KEY_OLD: opens keys sealed before a rotation
	SessionAccessTTL time.Duration // FLASHAUTH_ACCESS_TTL
	SessionTTL       time.Duration // FLASHAUTH_SESSION_TTL
	ReuseInterval    time.Duration // FLASHAUTH_REUSE_INTERVAL
	KeyRotation      time.Duration // FLASHAUTH_KEY_ROTATION
	Issuer, Audience string        // FLASHAUTH_ISSUER, FLASHAUTH_AUDIENCE
	// PublicURL (FLASHAUTH_PUBLIC_URL) is the absolute URL callers reach
	// flashauth at; discovery builds jwks_uri from it. Empty: from each request.
	PublicURL string
	// ReuseRevokesSessions (FLASHAUTH_REUSE_REVOKES_SESSIONS): when a GitHub
	// refresh token flashauth already rotated comes back after the replay
	// window (suspected theft), also revoke its owner's flashauth sessions.
	ReuseRevokesSessions bool
	// RedirectURIs (FLASHAUTH_REDIRECT_URIS), when set, are the only
	// redirect_uri values sign-in accepts (exact match).
	RedirectURIs []string
	// SignInRequirePKCE (FLASHAUTH_SIGNIN_REQUIRE_PKCE): every sign-in starts
	// with PKCE and sends its state back; ?pkce=false and codes without
	// state are refused (see signin.Config.RequirePKCE).
	SignInRequirePKCE bool
	// MaxRefreshes (FLASHAUTH_MAX_REFRESHES) bounds the GitHub refreshes,
	// sign-ins and session refreshes running at once; the others wait their
	// turn in arrival order. Zero: no bound (serve's default).
	MaxRefreshes int
	Version      string // reported in logs and the User-Agent
	// HTTP server limits; zero takes the defaults (5s, 15s, 90s, 32 KiB).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// AuditRetention (FLASHAUTH_AUDIT_RETENTION): audit events older than
	// this are deleted by the purge loop. Zero takes DefaultAuditRetention.
	AuditRetention time.Duration
	// PurgeInterval is how often the purge loop runs; zero takes 30s.
	PurgeInterval time.Duration
}

// Defaults of the settings cmd/flashauth reads (and tests that must run at
// the default configuration).
const (
	// DefaultAuditRetention is how long audit events are kept.
	DefaultAuditRetention = 90 * 24 * time.Hour
	// Rate limits per minute: per client IP, per refresh token (charged only
	// for attempts that claim the token), per user.
	DefaultRateIP    = 600
	DefaultRateToken = 30
	DefaultRateUser  = 120
	// DefaultMaxRefreshes, no bound, is serve's FLASHAUTH_MAX_REFRESHES. A
	// bound trades throughput for memory at thousands of concurrent clients:
	// on an idle 2-core machine at 2,000 clients and 100 ms upstream, 512
	// lowered the peak RSS from 211-214 to 177 MB but also the throughput
	// by 30% (smaller group commits); 1,024 saved 13 MB for about 5%
	// (docs/deploy.md).
	DefaultMaxRefreshes = 0
)

// App is a wired flashauth: store, GitHub client, domain services and the
// HTTP handler.
type App struct {
	Store   flashauth.Store
	Ledger  *ledger.Ledger
	Handler http.Handler

	// audits is the audit queue in front of the store: what the auditor
	// records to (see stores).
	audits         *auditQueue
	log            *slog.Logger
	clock          flashauth.Clock
	sessions       *session.Service
	auditRetention time.Duration
	purgeInterval  time.Duration
}

// New opens the store c names (applying its migrations), makes sure a
// signing key exists, and wires the services and the HTTP handler. Close
// releases what it opened.
func New(ctx context.Context, c Config, log *slog.Logger, clock flashauth.Clock) (*App, error) {
	reg := newRegistry()
	metered, err := openMeteredStore(ctx, c.DatabaseURL, reg)
	if err != nil {
		return nil, err
	}
	store, audits := stores(metered, log)
	a := &App{
		log: log, Store: store, audits: audits, clock: clock,
		auditRetention: orDefault(c.AuditRetention, DefaultAuditRetention),
		purgeInterval:  orDefault(c.PurgeInterval, 30*time.Second),
	}
	if err := a.wire(ctx, c, reg); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// stores is what New builds on the metered store: the audit queue in
// front of it, which writes audit rows off the answer path
// (auditqueue.go), and the store the services use - the queue, still
// reading lineage and ledger in one round trip when the metered store does
// (withLineageLedger). The auditor records to the queue itself: the
// services' store hides its TryAppendAudit (audit.Queue), without which
// every event is appended the slow way, under a timer of its own.
func stores(metered flashauth.Store, log *slog.Logger) (flashauth.Store, *auditQueue) {
	q := newAuditQueue(metered, log)
	return withLineageLedger(q, metered), q
}

// wire builds the services on a's store, each from its part of c, and the
// HTTP handler in front of them.
func (a *App) wire(ctx context.Context, c Config, reg *prometheus.Registry) error {
	gh, err := a.newGitHub(c, reg)
	if err != nil {
		return err
	}
	a.Ledger = a.newLedger(c, reg)
	// The services record what happened through the one auditor.
	auditor := audit.New(a.audits, a.log, a.clock)
	if a.sessions, err = a.newSessions(ctx, c, auditor); err != nil {
		return err
	}
	signIn, err := a.newSignIn(c, gh, auditor)
	if err != nil {
		return err
	}
	ref := a.newRefresh(c, gh, auditor)
	a.Handler = a.newHandler(c, reg, ref, signIn)
	return nil
}

// newRegistry is the registry /metrics serves, with the Go runtime's and
// the process's collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// openMeteredStore opens the store url names and times its operations into
// reg.
func openMeteredStore(ctx context.Context, url string, reg prometheus.Registerer) (flashauth.Store, error) {
	raw, err := OpenStore(ctx, url)
	if err != nil {
		return nil, err
	}
	_, local := raw.(*sqlite.DB)
	store, err := newMeteredStore(raw, reg, local)
	if err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("store metrics: %w", err)
	}
	return store, nil
}

// newGitHub is the GitHub client behind its circuit breaker, whose metrics
// go to reg.
func (a *App) newGitHub(c Config, reg prometheus.Registerer) (*github.Breaker, error) {
	gh, err := github.New(github.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		BaseURL:      c.GitHubURL,
		APIURL:       c.GitHubAPIURL,
		Timeout:      c.UpstreamTimeout,
		UserAgent:    "flashauth/" + c.Version,
		Clock:        a.clock,
	})
	if err != nil {
		return nil, fmt.Errorf("GitHub client: %w", err)
	}
	breaker := github.NewBreaker(gh, github.BreakerConfig{Failures: c.BreakerFailures, Cooldown: c.BreakerCooldown, Clock: a.clock})
	if err := breaker.Register(reg); err != nil {
		return nil, fmt.Errorf("GitHub metrics: %w", err)
	}
	return breaker, nil
}

// newLedger is the ledger every exactly-once operation goes through,
// charging the per-token rate limit, with its pending gauge in reg.
func (a *App) newLedger(c Config, reg prometheus.Registerer) *ledger.Ledger {
	// The per-token limit protects GitHub and the store from one token
	// hammered while its attempts fail. It is charged by the ledger only
	// for a request about to claim the token and do the work: callers that
	// join an attempt in flight or replay a committed outcome cost nothing
	// and are never refused, and requests refused before the ledger (a
	// foreign owner, a missing access token) cannot spend the owner's
	// bucket. Every request is still charged to its client IP.
	tokenLimit := ratelimit.New(c.RateTokenPerMin, burstOf(c.RateTokenPerMin), a.clock)
	l := ledger.New(a.Store, ledger.Options{
		Clock: a.clock,
		// A claim must outlive the upstream calls it guards: one for a
		// refresh; a code exchange plus /user and /user/emails (with their
		// retries) for a sign-in.
		Lease:     c.UpstreamTimeout + 5*time.Second,
		KindLease: map[string]time.Duration{flashauth.LedgerGitHubCode: codeLease(c.UpstreamTimeout)},
		Logger:    a.log,
		BeforeClaim: func(_ context.Context, kind string, key []byte) error {
			if tokenLimit == nil || kind != flashauth.LedgerGitHubRefresh && kind != flashauth.LedgerSessionRefresh {
				// No limit (nor its key to build), or a code: codes are
				// single-use at GitHub, the per-IP limit is enough.
				return nil
			}
			if ok, wait := tokenLimit.Allow(kind + "\x00" + string(key)); !ok {
				return ratelimit.Refused(wait)
			}
			return nil
		},
	})
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flashauth_ledger_pending",
		Help: "Ledger operations this process has claimed or is waiting on (one per secret, however many callers share it). " +
			"Summed over replicas it approximates the live pending entries (a replica waiting on another's claim counts it too; claims of dead processes are not counted).",
	}, func() float64 { return float64(l.InFlight()) }))
	return l
}

// newSessions is the session service, with a signing key in the store.
func (a *App) newSessions(ctx context.Context, c Config, auditor flashauth.Auditor) (*session.Service, error) {
	sessions, err := session.New(a.Store, a.Ledger, session.Config{
		Issuer:        c.Issuer,
		Audience:      c.Audience,
		AccessTTL:     c.SessionAccessTTL,
		RefreshTTL:    c.SessionTTL,
		ReuseInterval: c.ReuseInterval,
		KeyRotation:   c.KeyRotation,
		SecretKey:     c.SecretKey,
		OldSecretKeys: c.OldSecretKeys,
		Clock:         a.clock,
		Logger:        a.log,
		Auditor:       auditor,
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	if err := sessions.EnsureKeys(ctx); err != nil {
		return nil, fmt.Errorf("signing keys (is FLASHAUTH_SECRET_KEY the one they were sealed with?): %w", err)
	}
	return sessions, nil
}

// newSignIn is the GitHub sign-in service; it opens sessions.
func (a *App) newSignIn(c Config, gh flashauth.GitHub, auditor flashauth.Auditor) (*signin.Service, error) {
	signIn, err := signin.New(a.Store, gh, a.sessions, a.Ledger, signin.Config{
		ClientID:            c.ClientID,
		AuthorizeURL:        strings.TrimRight(c.GitHubURL, "/") + "/login/oauth/authorize",
		ReplayWindow:        c.ReplayWindow,
		AllowedRedirectURIs: c.RedirectURIs,
		RequirePKCE:         c.SignInRequirePKCE,
		Clock:               a.clock,
		Logger:              a.log,
		Auditor:             auditor,
	})
	if err != nil {
		return nil, fmt.Errorf("sign-in: %w", err)
	}
	return signIn, nil
}

// newRefresh is the GitHub refresh service; with
// FLASHAUTH_REUSE_REVOKES_SESSIONS a suspected reuse also revokes the
// owner's sessions in the store.
func (a *App) newRefresh(c Config, gh flashauth.GitHub, auditor flashauth.Auditor) *refresh.Service {
	var revoker refresh.SessionRevoker
	if c.ReuseRevokesSessions {
		revoker = a.Store
	}
	return refresh.New(gh, a.Store, a.Ledger, refresh.Config{
		ReplayWindow:  c.ReplayWindow,
		Policy:        c.RefreshAuth,
		Clock:         a.clock,
		Logger:        a.log,
		Auditor:       auditor,
		RevokeOnReuse: revoker,
	})
}

// newHandler is the HTTP API in front of the services, with its per-IP and
// per-user limits and /metrics serving reg.
func (a *App) newHandler(c Config, reg *prometheus.Registry, ref *refresh.Service, signIn *signin.Service) http.Handler {
	return httpapi.NewServer(httpapi.Config{
		Logger:   a.log,
		Clock:    a.clock,
		Store:    a.Store,
		Refresh:  ref,
		Sessions: a.sessions,
		SignIn:   signIn,
		Limits: httpapi.Limits{
			IPPerMinute: c.RateIPPerMinute, IPBurst: burstOf(c.RateIPPerMinute),
			UserPerMinute: c.RateUserPerMin, UserBurst: burstOf(c.RateUserPerMin),
		},
		TrustedProxies: c.TrustedProxies,
		CORSOrigins:    c.CORSOrigins,
		Registry:       reg,
		Issuer:         a.sessions.Issuer(),
		PublicURL:      c.PublicURL,
		MaxRefreshes:   c.MaxRefreshes,
	})
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
// results do not outlive it, expired logins, and audit events past their
// retention; and rotates signing keys.
func (a *App) purgeLoop(ctx context.Context) {
	t := time.NewTicker(a.purgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.purgeAudit(ctx)
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

// auditPurgeBatch bounds one delete, so a long backlog (the first start
// with a retention, or after an outage) never holds the database's write
// lock for long; at most auditPurgeBatches run per tick.
const (
	auditPurgeBatch   = 5000
	auditPurgeBatches = 20
)

// purgeAudit deletes audit events older than the retention.
func (a *App) purgeAudit(ctx context.Context) {
	before := a.clock.Now().Add(-a.auditRetention)
	var total int64
	for range auditPurgeBatches {
		n, err := a.Store.PurgeAudit(ctx, before, auditPurgeBatch)
		if err != nil {
			a.log.Warn("audit purge failed", "err", err)
			break
		}
		total += n
		if n < auditPurgeBatch {
			break
		}
	}
	if total > 0 {
		a.log.Debug("audit events purged", "events", total, "retention", a.auditRetention.String())
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
