// Package signin signs users in with GitHub: it starts a login (one-time
// state and, unless asked not to, a PKCE challenge), checks the state of a
// sign-in before anything is spent, exchanges the authorization code exactly
// once through the ledger, finds or creates the user by GitHub id, records the
// GitHub refresh token's lineage and opens a flashauth session.
//
// Every error a caller may show is a *flashauth.Error; only the HTTP layer
// turns its code into a status.
package signin

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/session"
)

// Defaults of Config.
const (
	DefaultStateTTL     = 10 * time.Minute
	DefaultReplayWindow = 60 * time.Second
	DefaultRetryBackoff = 200 * time.Millisecond
)

// Provider is the provider name of sessions opened here.
const Provider = "GITHUB"

// Config configures a Service. Zero values take the defaults.
type Config struct {
	// ClientID is the GitHub App's client id, put in the authorize URL.
	ClientID string
	// AuthorizeURL is GitHub's authorize endpoint:
	// GITHUB_URL + "/login/oauth/authorize".
	AuthorizeURL string
	// Scope, when set, is sent as the authorize URL's scope (OAuth Apps need
	// "user:email" to read emails; GitHub Apps ignore it).
	Scope string
	// AllowedRedirectURIs, when not empty, lists the only redirect_uri
	// values a login may name (exact match). GitHub checks redirect_uri
	// against the app's callback URLs, but an OAuth App accepts any path
	// below its callback; and since flashauth keeps the PKCE verifier, the
	// code and state that reach a redirect_uri are all it takes to sign in.
	// Empty: any absolute URL, GitHub alone decides.
	AllowedRedirectURIs []string
	// RequirePKCE makes every sign-in go through Authorize with PKCE:
	// Authorize refuses WithoutPKCE, and a code that arrives without a state
	// is refused with STATE_REQUIRED before anything is spent. flashauth
	// only ever sees the code, and GitHub spends a PKCE-bound code exchanged
	// without its verifier, so this setting is how flashauth knows that a
	// code without state cannot be exchanged. Off (the default), codes without
	// state are exchanged without a verifier: clients that run GitHub's
	// authorize themselves, or started with WithoutPKCE, and never send the
	// state back (the Flashback TypeScript client) keep working.
	RequirePKCE bool
	// StateTTL is how long a started login may be completed.
	StateTTL time.Duration
	// ReplayWindow is how long a retried sign-in with the same code gets
	// the same answer.
	ReplayWindow time.Duration
	// RetryBackoff is the first wait before retrying GET /user or
	// /user/emails after a transient failure; later waits double, and
	// GitHub's Retry-After is honoured up to ten times this. Default 200ms.
	RetryBackoff time.Duration
	Clock        flashauth.Clock
	Logger       *slog.Logger
	// Auditor records every sign-in; nil records nothing.
	Auditor flashauth.Auditor
}

// Service signs users in with GitHub. It is safe for concurrent use.
type Service struct {
	store    flashauth.Store
	gh       flashauth.GitHub
	sessions *session.Service
	ledger   *ledger.Ledger
	cfg      Config
	authURL  *url.URL
	// redirects is the set of AllowedRedirectURIs; nil allows any.
	redirects map[string]bool
	log       *slog.Logger
}

// New returns a Service. l must be the process's one ledger.
func New(store flashauth.Store, gh flashauth.GitHub, sessions *session.Service, l *ledger.Ledger, cfg Config) (*Service, error) {
	if store == nil || gh == nil || sessions == nil || l == nil {
		return nil, errors.New("signin: store, github, sessions and ledger are required")
	}
	if cfg.ClientID == "" {
		return nil, errors.New("signin: ClientID is required")
	}
	u, err := url.Parse(cfg.AuthorizeURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("signin: AuthorizeURL must be an absolute http(s) URL")
	}
	var redirects map[string]bool
	if len(cfg.AllowedRedirectURIs) > 0 {
		redirects = make(map[string]bool, len(cfg.AllowedRedirectURIs))
		for _, r := range cfg.AllowedRedirectURIs {
			if !validRedirectURI(r) {
				return nil, errors.New("signin: every AllowedRedirectURIs entry must be an absolute URL without fragment")
			}
			redirects[r] = true
		}
	}
	if cfg.StateTTL <= 0 {
		cfg.StateTTL = DefaultStateTTL
	}
	if cfg.ReplayWindow <= 0 {
		cfg.ReplayWindow = DefaultReplayWindow
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	if cfg.Clock == nil {
		cfg.Clock = flashauth.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Auditor == nil {
		cfg.Auditor = audit.Discard
	}
	return &Service{store: store, gh: gh, sessions: sessions, ledger: l, cfg: cfg, authURL: u, redirects: redirects, log: cfg.Logger}, nil
}

// Request is a sign-in with an authorization code.
type Request struct {
	Code string
	// State is the state Authorize returned. Required for a login started
	// with PKCE (GitHub needs the verifier kept with it); optional for one
	// started WithoutPKCE or at GitHub directly, and checked when given.
	State       string
	RedirectURI string // optional
	DeviceInfo  json.RawMessage
	IPAddress   string
	UserAgent   string
}

// AuthState is the `authState` object of the sign-in answer (docs/api.md).
type AuthState struct {
	User                User   `json:"user"`
	Token               string `json:"token"`        // flashauth access JWT
	AccessToken         string `json:"accessToken"`  // GitHub access token
	RefreshToken        string `json:"refreshToken"` // GitHub refresh token, "" when GitHub issued none
	ExpiresAt           int64  `json:"expiresAt"`    // GitHub access token expiry, ms; 0: does not expire
	Provider            string `json:"provider"`
	SessionRefreshToken string `json:"sessionRefreshToken"`
	TokenID             string `json:"tokenId"`          // session id
	SessionExpiresAt    int64  `json:"sessionExpiresAt"` // ms

	// UserID is the flashauth user signed in, for the audit trail; not part
	// of the answer.
	UserID string `json:"-"`
	// Replayed and Joined say how the answer came (for metrics and the
	// audit trail; not part of the answer): from the committed outcome of
	// an earlier request, or by sharing another request's exchange in
	// flight. Neither made a GitHub call of its own.
	Replayed bool `json:"-"`
	Joined   bool `json:"-"`
}

// User is the user part of AuthState.
type User struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	ImageURL string `json:"imageUrl"`
}

// redirectAllowed reports whether a valid, non-empty redirect_uri may be
// used: it is in AllowedRedirectURIs, or no list is configured.
func (s *Service) redirectAllowed(uri string) bool {
	return s.redirects == nil || s.redirects[uri]
}

// validRedirectURI accepts an absolute URL without fragment, as OAuth
// requires of redirection endpoints.
func validRedirectURI(s string) bool {
	if !flashauth.ValidToken(s, 2048) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && u.Fragment == "" && (u.Host != "" || u.Opaque != "")
}
