package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/refresh"
	"github.com/flashbacktech/flashauth/session"
)

// setting is one configuration variable.
type setting struct {
	env, def, help string
	secret         bool // never echoed in errors or help
}

var settings = []setting{
	{env: "FLASHAUTH_ADDR", def: ":8080", help: "listen address"},
	{env: "FLASHAUTH_DATABASE_URL", def: "sqlite:flashauth.db", help: "sqlite:PATH or postgres://..."},
	{env: "GITHUB_CLIENT_ID", help: "GitHub App client id (required)"},
	{env: "GITHUB_CLIENT_SECRET", help: "GitHub App client secret (this or GITHUB_CLIENT_SECRET_FILE is required)", secret: true},
	{env: "GITHUB_CLIENT_SECRET_FILE", help: "file holding the GitHub App client secret"},
	{env: "GITHUB_URL", def: "https://github.com", help: "GitHub base URL (token endpoint)"},
	{env: "GITHUB_API_URL", def: "https://api.github.com", help: "GitHub REST API base URL"},
	{env: "FLASHAUTH_REPLAY_WINDOW", def: "60s", help: "how long a refresh result is replayed to retries"},
	{env: "FLASHAUTH_UPSTREAM_TIMEOUT", def: "10s", help: "timeout of one call to GitHub"},
	{env: "FLASHAUTH_GITHUB_REFRESH_AUTH", def: "compat", help: "ownership policy of /auth/github/refresh: compat or session"},
	{env: "FLASHAUTH_LOG_LEVEL", def: "info", help: "debug, info, warn or error"},
	{env: "FLASHAUTH_LOG_FORMAT", def: "json", help: "json or text"},
	{env: "FLASHAUTH_TRUSTED_PROXIES", help: "comma-separated CIDRs whose X-Forwarded-For/Forwarded is believed"},
	{env: "FLASHAUTH_CORS_ORIGINS", help: "comma-separated origins allowed by CORS"},
	{env: "FLASHAUTH_TLS_CERT", help: "TLS certificate file (with FLASHAUTH_TLS_KEY)"},
	{env: "FLASHAUTH_TLS_KEY", help: "TLS key file"},
	{env: "FLASHAUTH_RATE_IP", def: fmt.Sprint(app.DefaultRateIP), help: "requests per minute per client IP (0 disables)"},
	{env: "FLASHAUTH_RATE_TOKEN", def: fmt.Sprint(app.DefaultRateToken), help: "attempts per minute per refresh token that reach GitHub or the store (joined and replayed requests are free; 0 disables)"},
	{env: "FLASHAUTH_RATE_USER", def: fmt.Sprint(app.DefaultRateUser), help: "session requests per minute per user (0 disables)"},
	{env: "FLASHAUTH_BREAKER_FAILURES", def: "5", help: "consecutive GitHub failures that open the circuit breaker"},
	{env: "FLASHAUTH_BREAKER_COOLDOWN", def: "30s", help: "how long the breaker stays open before a probe"},
	{env: "FLASHAUTH_MAX_REFRESHES", def: fmt.Sprint(app.DefaultMaxRefreshes), help: "GitHub refreshes, sign-ins and session refreshes run at once per replica; more wait their turn in arrival order (0: no limit)"},
	{env: "FLASHAUTH_SHUTDOWN_TIMEOUT", def: "30s", help: "how long shutdown waits for in-flight requests"},
	{env: "FLASHAUTH_SECRET_KEY", help: "seals signing keys at rest: at least 32 bytes, used as given (this or FLASHAUTH_SECRET_KEY_FILE is required)", secret: true},
	{env: "FLASHAUTH_SECRET_KEY_FILE", help: "file holding the secret key (surrounding whitespace trimmed)"},
	{env: "FLASHAUTH_SECRET_KEY_OLD", help: "the previous secret key while rotating it: opens keys it sealed, which are re-sealed under the new one at start", secret: true},
	{env: "FLASHAUTH_SECRET_KEY_OLD_FILE", help: "file holding the previous secret key"},
	{env: "FLASHAUTH_ACCESS_TTL", def: "1h", help: "lifetime of flashauth access tokens (JWTs)"},
	{env: "FLASHAUTH_SESSION_TTL", def: "720h", help: "lifetime of a flashauth session after its last refresh"},
	{env: "FLASHAUTH_REUSE_INTERVAL", def: "10s", help: "how long a rotated-out session refresh token still gets its first answer"},
	{env: "FLASHAUTH_KEY_ROTATION", def: "720h", help: "how long a JWT signing key signs before the next one is generated"},
	{env: "FLASHAUTH_REDIRECT_URIS", help: "comma-separated redirect_uri values sign-in accepts (exact match; empty accepts any)"},
	{env: "FLASHAUTH_SIGNIN_REQUIRE_PKCE", def: "false", help: "every sign-in starts at /auth/github/authorize with PKCE and sends its state back: refuses ?pkce=false and, before spending them, codes without state (STATE_REQUIRED); breaks clients that never send the state"},
	{env: "FLASHAUTH_REUSE_REVOKES_SESSIONS", def: "false", help: "revoke a user's sessions when a rotated-out GitHub refresh token of theirs comes back after the replay window"},
	{env: "FLASHAUTH_ISSUER", def: "flashauth", help: "iss of flashauth access tokens"},
	{env: "FLASHAUTH_AUDIENCE", def: "flashauth", help: "aud of flashauth access tokens"},
	{env: "FLASHAUTH_AUDIT_RETENTION", def: "2160h", help: "how long audit events are kept (default 90 days) before the purge loop deletes them"},
	{env: "FLASHAUTH_PUBLIC_URL", help: "absolute URL callers reach flashauth at, for the discovery document's jwks_uri (empty: from each request)"},
}

func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "FLASHAUTH_")), "_", "-")
}

// parseConfig reads the settings from getenv and args and checks them, one
// concern at a time; an error names the variable and quotes no secret.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (app.Config, error) {
	v, err := readSettings(args, getenv, out)
	if err != nil {
		return app.Config{}, err
	}
	var c app.Config
	for _, parse := range []func(*app.Config, settingValues) error{
		parseGitHub,
		parseDatabase,
		parseRefresh,
		parseLogging,
		parseLimits,
		parseListen,
		parseSessions,
	} {
		if err := parse(&c, v); err != nil {
			return c, err
		}
	}
	return c, nil
}

// settingValues are the settings as given, by variable name.
type settingValues map[string]*string

// readSettings takes each setting from its flag, else its variable, else
// its default.
func readSettings(args []string, getenv func(string) string, out io.Writer) (settingValues, error) {
	fs := newFlagSet("serve", out)
	vals := make(settingValues, len(settings))
	for _, s := range settings {
		v := getenv(s.env)
		if v == "" {
			v = s.def
		}
		def := v
		if s.secret {
			def = "" // flag's help must not print it
		}
		p := fs.String(flagName(s.env), def, s.help+" ($"+s.env+")")
		if s.secret {
			*p = v
		}
		vals[s.env] = p
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return vals, nil
}

// parseGitHub reads the GitHub App's credentials, GitHub's URLs, and how
// flashauth calls GitHub (timeout, circuit breaker).
func parseGitHub(c *app.Config, v settingValues) error {
	c.ClientID = v.get("GITHUB_CLIENT_ID")
	if c.ClientID == "" {
		return errors.New("GITHUB_CLIENT_ID is required")
	}
	c.ClientSecret = *v["GITHUB_CLIENT_SECRET"]
	if file := v.get("GITHUB_CLIENT_SECRET_FILE"); file != "" {
		if c.ClientSecret != "" {
			return errors.New("set only one of GITHUB_CLIENT_SECRET and GITHUB_CLIENT_SECRET_FILE")
		}
		var err error
		if c.ClientSecret, err = readSecretFile("GITHUB_CLIENT_SECRET_FILE", file); err != nil {
			return err
		}
	}
	if c.ClientSecret == "" {
		return errors.New("GITHUB_CLIENT_SECRET (or GITHUB_CLIENT_SECRET_FILE) is required")
	}
	c.GitHubURL, c.GitHubAPIURL = v.get("GITHUB_URL"), v.get("GITHUB_API_URL")
	for _, u := range []struct{ env, v string }{{"GITHUB_URL", c.GitHubURL}, {"GITHUB_API_URL", c.GitHubAPIURL}} {
		// The GitHub client checks the same, but its error cannot name the variable.
		if !baseURL(u.v) {
			return fmt.Errorf("%s: want an absolute http(s) URL without credentials, query or fragment, got %q", u.env, app.RedactURL(u.v))
		}
	}
	if err := v.durations(
		durationSetting{"FLASHAUTH_UPSTREAM_TIMEOUT", &c.UpstreamTimeout},
		durationSetting{"FLASHAUTH_BREAKER_COOLDOWN", &c.BreakerCooldown},
	); err != nil {
		return err
	}
	var err error
	if c.BreakerFailures, err = strconv.Atoi(v.get("FLASHAUTH_BREAKER_FAILURES")); err != nil || c.BreakerFailures < 1 {
		return fmt.Errorf("FLASHAUTH_BREAKER_FAILURES: want a whole number >= 1, got %q", v.get("FLASHAUTH_BREAKER_FAILURES"))
	}
	return nil
}

// parseDatabase reads which store to open.
func parseDatabase(c *app.Config, v settingValues) error {
	c.DatabaseURL = v.get("FLASHAUTH_DATABASE_URL")
	if !strings.HasPrefix(c.DatabaseURL, "sqlite:") && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return fmt.Errorf("FLASHAUTH_DATABASE_URL: want sqlite:PATH or postgres://..., got %q", app.RedactURL(c.DatabaseURL))
	}
	return nil
}

// parseRefresh reads the GitHub refresh's policies: how long a result is
// replayed, who may refresh a token, what a stale token's return costs.
func parseRefresh(c *app.Config, v settingValues) error {
	if err := v.durations(durationSetting{"FLASHAUTH_REPLAY_WINDOW", &c.ReplayWindow}); err != nil {
		return err
	}
	var err error
	if c.RefreshAuth, err = refresh.ParsePolicy(v.get("FLASHAUTH_GITHUB_REFRESH_AUTH")); err != nil {
		return fmt.Errorf("FLASHAUTH_GITHUB_REFRESH_AUTH: %v", err)
	}
	return v.boolean("FLASHAUTH_REUSE_REVOKES_SESSIONS", &c.ReuseRevokesSessions)
}

// parseLogging reads the log's shape and how long the audit trail is kept.
func parseLogging(c *app.Config, v settingValues) error {
	c.LogLevel, c.LogFormat = v.get("FLASHAUTH_LOG_LEVEL"), v.get("FLASHAUTH_LOG_FORMAT")
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return fmt.Errorf("FLASHAUTH_LOG_FORMAT: want json or text, got %q", c.LogFormat)
	}
	return v.durations(durationSetting{"FLASHAUTH_AUDIT_RETENTION", &c.AuditRetention})
}

// parseLimits reads the rate limits.
func parseLimits(c *app.Config, v settingValues) error {
	for _, r := range []struct {
		env string
		dst *float64
	}{{"FLASHAUTH_RATE_IP", &c.RateIPPerMinute}, {"FLASHAUTH_RATE_TOKEN", &c.RateTokenPerMin}, {"FLASHAUTH_RATE_USER", &c.RateUserPerMin}} {
		// ParseFloat takes NaN and Inf, which would wreck the token buckets.
		rate, err := strconv.ParseFloat(v.get(r.env), 64)
		if err != nil || !(rate >= 0) || math.IsInf(rate, 0) {
			return fmt.Errorf("%s: want a number of requests per minute (0 disables), got %q", r.env, v.get(r.env))
		}
		*r.dst = rate
	}
	n, err := strconv.Atoi(v.get("FLASHAUTH_MAX_REFRESHES"))
	if err != nil || n < 0 {
		return fmt.Errorf("FLASHAUTH_MAX_REFRESHES: want a whole number of requests (0: no limit), got %q", v.get("FLASHAUTH_MAX_REFRESHES"))
	}
	c.MaxRefreshes = n
	return nil
}

// parseListen reads how the HTTP server listens and whom it believes: the
// address, TLS, the shutdown grace, trusted proxies, CORS origins, and the
// public URL.
func parseListen(c *app.Config, v settingValues) error {
	c.Addr = v.get("FLASHAUTH_ADDR")
	if err := parseTLS(c, v); err != nil {
		return err
	}
	if err := v.durations(durationSetting{"FLASHAUTH_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout}); err != nil {
		return err
	}
	for _, p := range splitList(v.get("FLASHAUTH_TRUSTED_PROXIES")) {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return fmt.Errorf("FLASHAUTH_TRUSTED_PROXIES: %q is not a CIDR or an address", p)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx.Masked())
	}
	for _, o := range splitList(v.get("FLASHAUTH_CORS_ORIGINS")) {
		origin, ok := parseOrigin(o)
		if !ok {
			return fmt.Errorf("FLASHAUTH_CORS_ORIGINS: %q is not an origin such as https://app.example or http://localhost:3000 (no path, no trailing slash, no wildcard)", app.RedactURL(o))
		}
		c.CORSOrigins = append(c.CORSOrigins, origin)
	}
	if pub := v.get("FLASHAUTH_PUBLIC_URL"); pub != "" {
		if !baseURL(pub) {
			return fmt.Errorf("FLASHAUTH_PUBLIC_URL: want an absolute http(s) URL such as https://auth.example.com, without credentials, query or fragment, got %q", app.RedactURL(pub))
		}
		c.PublicURL = strings.TrimRight(pub, "/")
	}
	return nil
}

// parseTLS reads the certificate and key, which go together, and loads them
// once: the server loads the pair only after listening, so fail here, by
// name. The error names files and PEM problems, never key material.
func parseTLS(c *app.Config, v settingValues) error {
	c.TLSCert, c.TLSKey = v.get("FLASHAUTH_TLS_CERT"), v.get("FLASHAUTH_TLS_KEY")
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("FLASHAUTH_TLS_CERT and FLASHAUTH_TLS_KEY must be set together")
	}
	if c.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			return fmt.Errorf("FLASHAUTH_TLS_CERT: cannot load it with FLASHAUTH_TLS_KEY: %v", err)
		}
	}
	return nil
}

// parseSessions reads flashauth's own sessions: the access tokens' claims
// and lifetimes, the signing keys' rotation and the secret key sealing
// them, and what sign-in accepts.
func parseSessions(c *app.Config, v settingValues) error {
	c.Issuer, c.Audience = v.get("FLASHAUTH_ISSUER"), v.get("FLASHAUTH_AUDIENCE")
	if err := v.durations(
		durationSetting{"FLASHAUTH_ACCESS_TTL", &c.SessionAccessTTL},
		durationSetting{"FLASHAUTH_SESSION_TTL", &c.SessionTTL},
		durationSetting{"FLASHAUTH_REUSE_INTERVAL", &c.ReuseInterval},
		durationSetting{"FLASHAUTH_KEY_ROTATION", &c.KeyRotation},
	); err != nil {
		return err
	}
	for _, u := range splitList(v.get("FLASHAUTH_REDIRECT_URIS")) {
		pu, perr := url.Parse(u)
		if perr != nil || !pu.IsAbs() || pu.Host == "" || pu.Fragment != "" {
			return fmt.Errorf("FLASHAUTH_REDIRECT_URIS: %q is not an absolute URL such as https://app.example/callback", u)
		}
		c.RedirectURIs = append(c.RedirectURIs, u)
	}
	if err := v.boolean("FLASHAUTH_SIGNIN_REQUIRE_PKCE", &c.SignInRequirePKCE); err != nil {
		return err
	}
	return parseSecretKeys(c, v)
}

// parseSecretKeys reads the secret key (required) and the previous one.
func parseSecretKeys(c *app.Config, v settingValues) error {
	key, err := secretSetting(v, "FLASHAUTH_SECRET_KEY")
	if err != nil {
		return err
	}
	if key == "" {
		return errors.New("FLASHAUTH_SECRET_KEY (or FLASHAUTH_SECRET_KEY_FILE) is required: it seals the signing keys in the database; generate one with `openssl rand -base64 48`")
	}
	old, err := secretSetting(v, "FLASHAUTH_SECRET_KEY_OLD")
	if err != nil {
		return err
	}
	c.SecretKey = []byte(key)
	if old != "" {
		c.OldSecretKeys = [][]byte{[]byte(old)}
	}
	return nil
}

// get is env's value, surrounding whitespace trimmed.
func (v settingValues) get(env string) string { return strings.TrimSpace(*v[env]) }

// durationSetting is a variable holding a duration and where it goes.
type durationSetting struct {
	env string
	dst *time.Duration
}

// durations parses each setting as a positive duration; the first that is
// not one is the error.
func (v settingValues) durations(ds ...durationSetting) error {
	for _, d := range ds {
		var err error
		if *d.dst, err = time.ParseDuration(v.get(d.env)); err != nil || *d.dst <= 0 {
			return fmt.Errorf("%s: want a positive duration such as 60s, got %q", d.env, v.get(d.env))
		}
	}
	return nil
}

// boolean parses env as true or false into dst.
func (v settingValues) boolean(env string, dst *bool) error {
	var err error
	if *dst, err = strconv.ParseBool(v.get(env)); err != nil {
		return fmt.Errorf("%s: want true or false, got %q", env, v.get(env))
	}
	return nil
}

// baseURL reports whether s is an absolute http(s) URL without
// credentials, query or fragment: a base other URLs are built on.
func baseURL(s string) bool {
	p, err := url.Parse(s)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" && p.Opaque == "" &&
		p.User == nil && p.RawQuery == "" && !p.ForceQuery && p.Fragment == ""
}

// secretSetting reads the secret key env names from its variable or from
// the file env_FILE names (set at most one), and checks its length.
func secretSetting(vals settingValues, env string) (string, error) {
	return secretKey(env, *vals[env], strings.TrimSpace(*vals[env+"_FILE"]))
}

// secretKey is value, the secret key env names, or else the content of file
// (env_FILE): at most one of them, and at least session.MinSecretKeyLen
// bytes when given. The value is used as given; a file's surrounding
// whitespace is trimmed. Errors never quote the key.
func secretKey(env, value, file string) (string, error) {
	if file != "" {
		if value != "" {
			return "", fmt.Errorf("set only one of %s and %s_FILE", env, env)
		}
		var err error
		if value, err = readSecretFile(env+"_FILE", file); err != nil {
			return "", err
		}
	}
	if value != "" && len(value) < session.MinSecretKeyLen {
		return "", fmt.Errorf("%s: must be at least %d bytes; generate one with `openssl rand -base64 48`", env, session.MinSecretKeyLen)
	}
	return value, nil
}

// parseOrigin checks a CORS origin, scheme://host[:port], and lower-cases it
// the way browsers send it: origins are matched exactly, so one with a path
// or a trailing slash would silently never match.
func parseOrigin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || !baseURL(s) || u.Path != "" || strings.Contains(u.Host, "*") {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
