// Package httpapi is flashauth's HTTP surface: routing, decoding and
// validation at the edge, middleware, and the only mapping of domain error
// codes to HTTP statuses.
package httpapi

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/ratelimit"
	"github.com/flashbacktech/flashauth/refresh"
	"github.com/flashbacktech/flashauth/session"
	"github.com/flashbacktech/flashauth/signin"
)

// Limits are the rate limits the HTTP layer applies, in events per minute
// with a burst. Zero disables a limit. The per-token limit is not here: it
// is charged by the ledger, only for requests that claim a token (see
// app.New).
type Limits struct {
	IPPerMinute   float64
	IPBurst       int
	UserPerMinute float64 // per authenticated user on session endpoints
	UserBurst     int
}

// Config holds the server's dependencies. The services are the small
// interfaces below, declared here where they are used: app.New passes the
// real ones (refresh.Service, session.Service, signin.Service, a store).
type Config struct {
	Logger *slog.Logger
	Clock  flashauth.Clock
	// Store answers /readyz.
	Store          Pinger
	Refresh        Refresher
	Sessions       Sessions
	SignIn         SignIn
	Limits         Limits
	TrustedProxies []netip.Prefix
	CORSOrigins    []string
	// Issuer is the iss of access tokens, published as the discovery
	// document's issuer.
	Issuer string
	// PublicURL (FLASHAUTH_PUBLIC_URL) is the absolute base URL callers
	// reach flashauth at, without a trailing slash. Empty: derived from each
	// request (see publicBase).
	PublicURL string
	// Registry receives the server's metrics and is served on /metrics. A
	// fresh registry is made when nil.
	Registry *prometheus.Registry
	// ReadyTimeout bounds /readyz's store check; zero is DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// MaxRefreshes bounds the requests that run the ledger at once (GitHub
	// refreshes, sign-ins, session refreshes); the others wait in arrival
	// order after their body is read. Zero or less: no bound.
	MaxRefreshes int
}

// Pinger reports whether the store answers and commits a write
// (flashauth.Store implements it).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Refresher refreshes a GitHub user token exactly once (package refresh
// implements it).
type Refresher interface {
	Refresh(ctx context.Context, refreshToken string, caller refresh.Caller) (refresh.Result, error)
}

// Sessions are the flashauth sessions the HTTP layer reads and changes
// (package session implements them).
type Sessions interface {
	Authenticate(ctx context.Context, accessToken string) (session.Principal, error)
	Refresh(ctx context.Context, refreshToken string) (session.Issued, error)
	Logout(ctx context.Context, refreshToken string) (flashauth.Session, error)
	List(ctx context.Context, p session.Principal) ([]flashauth.Session, error)
	Revoke(ctx context.Context, p session.Principal, sessionID string) error
	JWKS(ctx context.Context) ([]byte, error)
}

// SignIn is GitHub sign-in (package signin implements it).
type SignIn interface {
	Authorize(ctx context.Context, req signin.AuthorizeRequest) (signin.AuthorizeResult, error)
	SignIn(ctx context.Context, req signin.Request) (signin.AuthState, error)
}

type limiters struct {
	ip, user *ratelimit.Limiter
}

type server struct {
	Config
	log            *slog.Logger
	limits         limiters
	trustedProxies []netip.Prefix
	corsOrigins    map[string]bool
	metrics        *metrics
	mux            *http.ServeMux
	ready          readiness
	readyTimeout   time.Duration
	admission      admission
}

// NewServer returns the flashauth HTTP handler.
func NewServer(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = flashauth.SystemClock{}
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &server{
		Config:         cfg,
		log:            cfg.Logger,
		trustedProxies: cfg.TrustedProxies,
		corsOrigins:    make(map[string]bool),
		metrics:        newMetrics(cfg.Registry),
		mux:            http.NewServeMux(),
		readyTimeout:   cmp.Or(cfg.ReadyTimeout, DefaultReadyTimeout),
		limits: limiters{
			ip:   ratelimit.New(cfg.Limits.IPPerMinute, cfg.Limits.IPBurst, cfg.Clock),
			user: ratelimit.New(cfg.Limits.UserPerMinute, cfg.Limits.UserBurst, cfg.Clock),
		},
	}
	s.admission = newAdmission(cfg.MaxRefreshes, s.metrics.waiting)
	for _, o := range cfg.CORSOrigins {
		s.corsOrigins[o] = true
	}
	s.routes()
	return s.withRequest(s.cors(s.limitIP(http.HandlerFunc(s.dispatch))))
}

// dispatch routes through the mux but answers the mux's own 404 and 405 in
// the contract's JSON shape, keeping the Allow header.
func (s *server) dispatch(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	// A non-canonical path (//token, /a/../token) gets the mux's HTML
	// redirect even when its clean form names a route, and then pattern is
	// that route's: it is answered here like the other fallbacks.
	if pattern != "" && canonicalPath(r) {
		s.mux.ServeHTTP(w, r)
		return
	}
	probe := &headerProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	switch probe.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", probe.header.Get("Allow"))
		writeError(w, flashauth.Errorf(flashauth.CodeMethodNotAllowed, "Method %s is not allowed here.", r.Method))
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		// The mux cleans paths like //x or /a/../b; say where, in JSON.
		w.Header().Set("Location", probe.header.Get("Location"))
		writeJSON(w, probe.status, errorBody{ErrorCode: flashauth.CodeNotFound, Message: "The resource has moved."})
	default:
		writeError(w, flashauth.Errorf(flashauth.CodeNotFound, "No such endpoint."))
	}
}

// canonicalPath reports whether the mux would serve r's path as it is,
// rather than redirect to its cleaned form (CONNECT paths are not cleaned).
func canonicalPath(r *http.Request) bool {
	if r.Method == http.MethodConnect {
		return true
	}
	p := r.URL.EscapedPath()
	if p == "" || p[0] != '/' {
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean == p
}

// headerProbe captures what the mux's fallback handlers would answer.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

// fail answers err and logs it under the request id. Errors that are the
// caller's fault are logged at debug; operator faults at error.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := flashauth.ErrorCode(err)
	level := slog.LevelDebug
	switch status := statusOf(code); {
	case code == flashauth.CodeUpstreamCredentials || status == http.StatusInternalServerError:
		level = slog.LevelError
	case status >= 500:
		level = slog.LevelWarn
	}
	if r.Context().Err() != nil {
		level = slog.LevelInfo // the caller went away
	}
	s.log.Log(r.Context(), level, "request failed", "request_id", requestID(r.Context()), "error_code", code, "err", err)
	if code == flashauth.CodeStoreUnavailable {
		s.ready.forget() // the next /readyz checks the store, not a passed check's memory
	}
	writeError(w, err)
}

// The real services implement the interfaces above.
var (
	_ Pinger    = flashauth.Store(nil)
	_ Refresher = (*refresh.Service)(nil)
	_ Sessions  = (*session.Service)(nil)
	_ SignIn    = (*signin.Service)(nil)
)
