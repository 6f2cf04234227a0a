// Package githubemu emulates the parts of GitHub that flashauth talks to: the
// OAuth token endpoint, the authorize page, GET /user, GET /user/emails and
// the token-revocation endpoints. It is as unforgiving as github.com (see
// GITHUB.md): single-use rotating refresh tokens, OAuth errors in HTTP 200,
// Accept negotiation with 406 for the REST media type, a mandatory
// User-Agent on the REST API.
//
// Like tailscale's testcontrol, its defaults work and its knobs are exported:
// users, grants and logins can be created directly, faults and latency can be
// injected, and an injected clock expires codes and tokens. A JSON control API
// under /_emulator/ offers the same knobs to other processes.
package githubemu

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashbacktech/flashauth"
)

// Defaults of Config.
const (
	DefaultClientID        = "Iv1.flashauthdev"
	DefaultClientSecret    = "dev-secret"
	DefaultAccessTokenTTL  = 8 * time.Hour
	DefaultRefreshTokenTTL = 15897600 * time.Second
	DefaultCodeTTL         = 10 * time.Minute
)

// Paths the emulator serves. The REST paths are also served under the
// GitHub Enterprise prefix /api/v3.
const (
	TokenPath     = "/login/oauth/access_token"
	AuthorizePath = "/login/oauth/authorize"
	UserPath      = "/user"
	EmailsPath    = "/user/emails"
	ControlPrefix = "/_emulator/"
	enterprisePfx = "/api/v3"
)

// Config configures an Emulator. Its zero value works.
type Config struct {
	// ClientID and ClientSecret are the GitHub App's credentials. Defaults
	// DefaultClientID and DefaultClientSecret.
	ClientID, ClientSecret string
	// Clock decides when codes and tokens expire. Default flashauth.SystemClock.
	Clock flashauth.Clock
	// AccessTokenTTL is the lifetime of access tokens (expires_in). Default 8h.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of refresh tokens
	// (refresh_token_expires_in). Default 15897600s.
	RefreshTokenTTL time.Duration
	// CodeTTL is the lifetime of authorization codes. Default 10m.
	CodeTTL time.Duration
	// ExpiringTokens selects GitHub App user tokens (ghu_/ghr_, expiring,
	// rotating). Default true. False gives classic OAuth App tokens (gho_)
	// that never expire and come without refresh or expiry fields.
	ExpiringTokens *bool
	// StringExpiresIn sends expires_in and refresh_token_expires_in as JSON
	// strings, as older GitHub responses did.
	StringExpiresIn bool
	// CallbackURL is the registered callback. When set, a redirect_uri that
	// differs from it is refused (redirect_uri_mismatch), and it is used when
	// the authorize request names no redirect_uri.
	CallbackURL string
	// MoreCallbackURLs are further registered callbacks (a GitHub App may
	// register several): a redirect_uri matching any registered callback
	// is accepted. With none registered at all, any redirect_uri is.
	MoreCallbackURLs []string
	// LoopbackAnyPort makes a registered callback on a loopback host
	// (http://127.0.0.1/..., http://[::1]/..., http://localhost/...) also
	// match a redirect_uri that differs only in its port, as GitHub does for
	// OAuth Apps and RFC 8252 section 7.3 asks of every server: native apps
	// such as `flashauth login` listen on whatever port is free. Off by
	// default, like a GitHub App, whose callback URLs match as registered.
	LoopbackAnyPort bool
	// RejectUnverifiedEmail makes code exchange answer unverified_user_email
	// for a user without a verified primary email. Off by default: GitHub
	// issues the token and leaves the check to the caller's /user/emails.
	RejectUnverifiedEmail bool
	// Logger receives request and knob events; never tokens or secrets.
	// Default: discard.
	Logger *slog.Logger
}

// Counters counts requests by endpoint. A request is counted when it
// arrives, before latency and faults, so faulted requests count too.
type Counters struct {
	// TokenRefresh: token requests with grant_type=refresh_token.
	TokenRefresh int64 `json:"token_refresh"`
	// TokenCode: token requests with no grant_type or authorization_code.
	TokenCode int64 `json:"token_code"`
	// TokenTotal: every request to the token endpoint.
	TokenTotal int64 `json:"token_total"`
	// User and Emails: GET /user and GET /user/emails.
	User   int64 `json:"user"`
	Emails int64 `json:"emails"`
	// Authorize: GET and POST of the authorize page.
	Authorize int64 `json:"authorize"`
}

type counters struct {
	tokenRefresh, tokenCode, tokenTotal, user, emails, authorize atomic.Int64
}

// Emulator is a GitHub emulator. It implements http.Handler. Create it with
// New; all methods are safe for concurrent use.
type Emulator struct {
	cfg      Config
	clock    flashauth.Clock
	expiring bool
	log      *slog.Logger
	control  *http.ServeMux

	mu      sync.Mutex
	users   map[int64]*userRecord
	logins  map[string]int64 // lower-cased login -> id
	nextID  int64
	access  map[string]*grant // access token -> grant
	refresh map[string]*grant // refresh token -> grant
	codes   map[string]*authCode
	issued  int // codes and grants issued since the last sweep
	faults  []*activeFault
	latency time.Duration

	calls     counters
	closed    chan struct{}
	closeOnce sync.Once
}

// New returns an Emulator with cfg's zero fields set to their defaults.
func New(cfg Config) *Emulator {
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = DefaultClientSecret
	}
	if cfg.Clock == nil {
		cfg.Clock = flashauth.SystemClock{}
	}
	if cfg.AccessTokenTTL <= 0 {
		cfg.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if cfg.RefreshTokenTTL <= 0 {
		cfg.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	if cfg.CodeTTL <= 0 {
		cfg.CodeTTL = DefaultCodeTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Emulator{
		cfg:      cfg,
		clock:    cfg.Clock,
		expiring: cfg.ExpiringTokens == nil || *cfg.ExpiringTokens,
		log:      cfg.Logger,
		users:    make(map[int64]*userRecord),
		logins:   make(map[string]int64),
		nextID:   1000,
		access:   make(map[string]*grant),
		refresh:  make(map[string]*grant),
		codes:    make(map[string]*authCode),
		closed:   make(chan struct{}),
	}
	e.control = e.controlRoutes()
	return e
}

// ClientID returns the client id the emulator accepts.
func (e *Emulator) ClientID() string { return e.cfg.ClientID }

// ClientSecret returns the client secret the emulator accepts.
func (e *Emulator) ClientSecret() string { return e.cfg.ClientSecret }

// Close releases requests held by FaultHang or latency; they end with a
// dropped connection or proceed, respectively. The emulator keeps serving
// other requests, and hang faults injected afterwards drop at once.
func (e *Emulator) Close() {
	e.closeOnce.Do(func() { close(e.closed) })
}

// SetLatency adds d before every request outside the control API. A request
// whose client gives up while waiting is dropped without being processed.
// Latency is wall time, not the injected clock.
func (e *Emulator) SetLatency(d time.Duration) {
	e.mu.Lock()
	e.latency = max(d, 0)
	e.mu.Unlock()
	e.log.Info("githubemu: latency set", "latency", d)
}

// Calls returns the request counters.
func (e *Emulator) Calls() Counters {
	return Counters{
		TokenRefresh: e.calls.tokenRefresh.Load(),
		TokenCode:    e.calls.tokenCode.Load(),
		TokenTotal:   e.calls.tokenTotal.Load(),
		User:         e.calls.user.Load(),
		Emails:       e.calls.emails.Load(),
		Authorize:    e.calls.authorize.Load(),
	}
}

// ResetCalls sets every counter to zero.
func (e *Emulator) ResetCalls() {
	for _, c := range []*atomic.Int64{&e.calls.tokenRefresh, &e.calls.tokenCode,
		&e.calls.tokenTotal, &e.calls.user, &e.calls.emails, &e.calls.authorize} {
		c.Store(0)
	}
}

// ServeHTTP routes a request: the control API directly; everything else
// after counting, latency and fault injection.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, ControlPrefix) {
		e.control.ServeHTTP(w, r)
		return
	}
	path := canonicalPath(r.URL.Path)
	// The path is logged, never the query: it may carry secrets.
	e.log.Debug("githubemu: request", "method", r.Method, "path", r.URL.Path)
	h := e.route(w, r, path)
	if !e.wait(r.Context()) {
		return
	}
	if f, ok := e.takeFault(path); ok {
		e.applyFault(w, r, f, h)
		return
	}
	h(w)
}

// route counts the request and returns the handler that answers it.
func (e *Emulator) route(w http.ResponseWriter, r *http.Request, path string) func(http.ResponseWriter) {
	switch {
	case path == TokenPath:
		e.calls.tokenTotal.Add(1)
		if r.Method != http.MethodPost {
			return notFoundHTML
		}
		// Parameters are read now so the request can be counted by grant
		// type even when a fault answers it.
		params, err := readTokenParams(w, r)
		switch params.Get("grant_type") {
		case "refresh_token":
			e.calls.tokenRefresh.Add(1)
		case "", "authorization_code":
			e.calls.tokenCode.Add(1)
		}
		if err != nil {
			return func(w http.ResponseWriter) { http.Error(w, "Bad Request", http.StatusBadRequest) }
		}
		return func(w http.ResponseWriter) { e.serveToken(w, r, params) }
	case path == AuthorizePath:
		e.calls.authorize.Add(1)
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return func(w http.ResponseWriter) { e.serveAuthorizePage(w, r) }
		case http.MethodPost:
			return func(w http.ResponseWriter) { e.serveAuthorizeSubmit(w, r) }
		}
		return notFoundHTML
	case path == UserPath:
		e.calls.user.Add(1)
		return e.restGET(r, e.serveUser)
	case path == EmailsPath:
		e.calls.emails.Add(1)
		return e.restGET(r, e.serveEmails)
	case strings.HasPrefix(path, "/applications/"):
		return func(w http.ResponseWriter) { e.serveRevoke(w, r, path) }
	}
	return notFoundJSON
}

// canonicalPath strips the GitHub Enterprise API prefix.
func canonicalPath(p string) string {
	if rest, ok := strings.CutPrefix(p, enterprisePfx); ok && strings.HasPrefix(rest, "/") {
		return rest
	}
	return p
}

// wait applies the configured latency. It reports false when the client
// gave up meanwhile; Close cuts the wait short.
func (e *Emulator) wait(ctx context.Context) bool {
	e.mu.Lock()
	d := e.latency
	e.mu.Unlock()
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-e.closed:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}
