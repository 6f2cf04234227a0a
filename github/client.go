package github

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flashbacktech/flashauth"
)

// Defaults of Config.
const (
	DefaultBaseURL   = "https://github.com"
	DefaultAPIURL    = "https://api.github.com"
	DefaultTimeout   = 10 * time.Second
	DefaultUserAgent = "flashauth"
)

const (
	// maxBodyBytes bounds every response body read; GitHub's answers are a
	// few hundred bytes, anything near this is not GitHub talking.
	maxBodyBytes = 1 << 20
	// apiVersion pins the REST API version the parsers are written for.
	apiVersion = "2022-11-28"
)

// Operation names, the Op of every UpstreamError.
const (
	opRefresh  = "refresh"
	opExchange = "exchange"
	opUser     = "user"
	opEmails   = "emails"
)

// Config configures a Client. Zero values take the defaults.
type Config struct {
	// ClientID and ClientSecret are the GitHub App's OAuth credentials.
	ClientID, ClientSecret string
	// BaseURL is GitHub's web root (GITHUB_URL), default DefaultBaseURL.
	// The token endpoint is BaseURL + "/login/oauth/access_token".
	BaseURL string
	// APIURL is the REST API root (GITHUB_API_URL), default DefaultAPIURL;
	// "https://HOST/api/v3" on GitHub Enterprise Server.
	APIURL string
	// HTTPClient sends the requests. Default: a client with its own
	// Transport (never http.DefaultClient). Its CheckRedirect is replaced:
	// redirects are never followed.
	HTTPClient *http.Client
	// Timeout bounds each call, including the one retry and the body read.
	// Default DefaultTimeout.
	Timeout time.Duration
	// UserAgent is sent with every request (GitHub answers 403 without one).
	// Default DefaultUserAgent.
	UserAgent string
	// Clock turns a Retry-After HTTP-date or x-ratelimit-reset into a
	// duration. Default flashauth.SystemClock.
	Clock flashauth.Clock
}

// Client talks to GitHub. It is safe for concurrent use.
type Client struct {
	clientID, clientSecret string
	// refreshForm is the encoded form of a refresh up to the token's value.
	refreshForm        string
	tokenURL           string
	userURL, emailsURL string
	hc                 *http.Client
	timeout            time.Duration
	userAgent          string
	clock              flashauth.Clock
}

var _ flashauth.GitHub = (*Client)(nil)

// New validates cfg and returns a Client. Its errors never quote the secret.
func New(cfg Config) (*Client, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("github: ClientID is required")
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("github: ClientSecret is required")
	}
	base, err := rootURL(cfg.BaseURL, DefaultBaseURL, "BaseURL")
	if err != nil {
		return nil, err
	}
	api, err := rootURL(cfg.APIURL, DefaultAPIURL, "APIURL")
	if err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("github: Timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if !headerSafe(cfg.UserAgent, ' ') {
		return nil, errors.New("github: UserAgent must be printable ASCII")
	}
	if cfg.Clock == nil {
		cfg.Clock = flashauth.SystemClock{}
	}
	var hc *http.Client
	if cfg.HTTPClient != nil {
		copied := *cfg.HTTPClient
		hc = &copied
	} else {
		hc = &http.Client{Transport: newTransport()}
	}
	hc.CheckRedirect = refuseRedirect
	return &Client{
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		refreshForm: url.Values{
			"client_id":     {cfg.ClientID},
			"client_secret": {cfg.ClientSecret},
			"grant_type":    {"refresh_token"},
		}.Encode() + "&refresh_token=",
		tokenURL:  base + "/login/oauth/access_token",
		userURL:   api + "/user",
		emailsURL: api + "/user/emails",
		hc:        hc,
		timeout:   cfg.Timeout,
		userAgent: cfg.UserAgent,
		clock:     cfg.Clock,
	}, nil
}

// rootURL validates an absolute http(s) root URL and drops a trailing slash.
// The URL itself stays out of the error: it could carry credentials.
func rootURL(raw, def, name string) (string, error) {
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("github: %s must be an absolute http or https URL without credentials, query or fragment", name)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// headerSafe reports whether s is non-empty printable ASCII, the lowest
// allowed byte being min (' ' for free text, '!' for tokens).
func headerSafe(s string, min byte) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < min || s[i] > '~' {
			return false
		}
	}
	return true
}

// The connections newTransport keeps to one host at most, and their
// buffer sizes.
const (
	transportMaxConns    = 1024
	transportReadBuffer  = 2 << 10
	transportWriteBuffer = 1 << 10
)

// refuseRedirect makes the client return a 3xx as it is: following it would
// re-send the token request somewhere GitHub did not intend.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// newTransport is the default Transport: bounded dials and handshakes (the
// per-call timeout bounds the rest), and idle connections closed before
// GitHub's load balancers would, so that a request is rarely written to a
// connection the server is closing (such a request could not be retried). The
// keep-alive pool is sized for the concurrency of a busy broker: over HTTP/1.1
// every request in flight needs a connection, and one closed after use (beyond
// MaxIdleConnsPerHost) means a new TCP and TLS handshake for the next. The
// connections to one host are capped at 1,024, open or dialing (over HTTP/1.1,
// 1,024 calls in flight: about 10,000 a second at 100 ms each); a call beyond
// the cap waits for one. Without it, a burst of claims committed together
// opened a connection, two goroutines and a dialing goroutine per call at
// once. The idle pool holds as many, so that the next burst reuses them
// instead of dialing again. Every connection, busy or idle, holds a read and a
// write buffer (4 KiB each by default): the requests and answers here are well
// under 1 KiB of body, so the buffers are 2 KiB and 1 KiB - at a thousand
// connections, 5 MiB less (a longer header line or body is still read whole,
// only in more steps). An idle connection then costs about 7 KiB.
func newTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   5 * time.Second,
		MaxIdleConns:          transportMaxConns,
		MaxIdleConnsPerHost:   transportMaxConns,
		MaxConnsPerHost:       transportMaxConns,
		IdleConnTimeout:       30 * time.Second,
		ExpectContinueTimeout: time.Second,
		ReadBufferSize:        transportReadBuffer,
		WriteBufferSize:       transportWriteBuffer,
	}
}
