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

// parseConfig reads the settings from getenv and args.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (app.Config, error) {
	fs := newFlagSet("serve", out)
	vals := make(map[string]*string, len(settings))
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
		return app.Config{}, err
	}
	if fs.NArg() > 0 {
		return app.Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	get := func(env string) string { return strings.TrimSpace(*vals[env]) }
	var c app.Config
	var err error
	c.Addr = get("FLASHAUTH_ADDR")
	c.DatabaseURL = get("FLASHAUTH_DATABASE_URL")
	c.ClientID = get("GITHUB_CLIENT_ID")
	c.GitHubURL = get("GITHUB_URL")
	c.GitHubAPIURL = get("GITHUB_API_URL")
	c.LogFormat = get("FLASHAUTH_LOG_FORMAT")
	c.LogLevel = get("FLASHAUTH_LOG_LEVEL")
	c.TLSCert, c.TLSKey = get("FLASHAUTH_TLS_CERT"), get("FLASHAUTH_TLS_KEY")
	c.Issuer, c.Audience = get("FLASHAUTH_ISSUER"), get("FLASHAUTH_AUDIENCE")

	if c.ClientID == "" {
		return c, errors.New("GITHUB_CLIENT_ID is required")
	}
	c.ClientSecret = *vals["GITHUB_CLIENT_SECRET"]
	if file := get("GITHUB_CLIENT_SECRET_FILE"); file != "" {
		if c.ClientSecret != "" {
			return c, errors.New("set only one of GITHUB_CLIENT_SECRET and GITHUB_CLIENT_SECRET_FILE")
		}
		if c.ClientSecret, err = readSecretFile("GITHUB_CLIENT_SECRET_FILE", file); err != nil {
			return c, err
		}
	}
	if c.ClientSecret == "" {
		return c, errors.New("GITHUB_CLIENT_SECRET (or GITHUB_CLIENT_SECRET_FILE) is required")
	}
	if !strings.HasPrefix(c.DatabaseURL, "sqlite:") && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return c, fmt.Errorf("FLASHAUTH_DATABASE_URL: want sqlite:PATH or postgres://..., got %q", app.RedactURL(c.DatabaseURL))
	}
	for _, u := range []struct{ env, v string }{{"GITHUB_URL", c.GitHubURL}, {"GITHUB_API_URL", c.GitHubAPIURL}} {
		// The GitHub client checks the same, but its error cannot name the variable.
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Opaque != "" ||
			p.User != nil || p.RawQuery != "" || p.ForceQuery || p.Fragment != "" {
			return c, fmt.Errorf("%s: want an absolute http(s) URL without credentials, query or fragment, got %q", u.env, app.RedactURL(u.v))
		}
	}
	durations := []struct {
		env string
		dst *time.Duration
	}{
		{"FLASHAUTH_REPLAY_WINDOW", &c.ReplayWindow},
		{"FLASHAUTH_UPSTREAM_TIMEOUT", &c.UpstreamTimeout},
		{"FLASHAUTH_BREAKER_COOLDOWN", &c.BreakerCooldown},
		{"FLASHAUTH_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout},
		{"FLASHAUTH_ACCESS_TTL", &c.SessionAccessTTL},
		{"FLASHAUTH_SESSION_TTL", &c.SessionTTL},
		{"FLASHAUTH_REUSE_INTERVAL", &c.ReuseInterval},
		{"FLASHAUTH_KEY_ROTATION", &c.KeyRotation},
		{"FLASHAUTH_AUDIT_RETENTION", &c.AuditRetention},
	}
	for _, d := range durations {
		if *d.dst, err = time.ParseDuration(get(d.env)); err != nil || *d.dst <= 0 {
			return c, fmt.Errorf("%s: want a positive duration such as 60s, got %q", d.env, get(d.env))
		}
	}
	if c.RefreshAuth, err = refresh.ParsePolicy(get("FLASHAUTH_GITHUB_REFRESH_AUTH")); err != nil {
		return c, fmt.Errorf("FLASHAUTH_GITHUB_REFRESH_AUTH: %v", err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return c, fmt.Errorf("FLASHAUTH_LOG_FORMAT: want json or text, got %q", c.LogFormat)
	}
	rates := []struct {
		env string
		dst *float64
	}{{"FLASHAUTH_RATE_IP", &c.RateIPPerMinute}, {"FLASHAUTH_RATE_TOKEN", &c.RateTokenPerMin}, {"FLASHAUTH_RATE_USER", &c.RateUserPerMin}}
	for _, r := range rates {
		// ParseFloat takes NaN and Inf, which would wreck the token buckets.
		if *r.dst, err = strconv.ParseFloat(get(r.env), 64); err != nil || !(*r.dst >= 0) || math.IsInf(*r.dst, 0) {
			return c, fmt.Errorf("%s: want a number of requests per minute (0 disables), got %q", r.env, get(r.env))
		}
	}
	if c.BreakerFailures, err = strconv.Atoi(get("FLASHAUTH_BREAKER_FAILURES")); err != nil || c.BreakerFailures < 1 {
		return c, fmt.Errorf("FLASHAUTH_BREAKER_FAILURES: want a whole number >= 1, got %q", get("FLASHAUTH_BREAKER_FAILURES"))
	}
	for _, p := range splitList(get("FLASHAUTH_TRUSTED_PROXIES")) {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return c, fmt.Errorf("FLASHAUTH_TRUSTED_PROXIES: %q is not a CIDR or an address", p)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx.Masked())
	}
	for _, o := range splitList(get("FLASHAUTH_CORS_ORIGINS")) {
		origin, ok := parseOrigin(o)
		if !ok {
			return c, fmt.Errorf("FLASHAUTH_CORS_ORIGINS: %q is not an origin such as https://app.example or http://localhost:3000 (no path, no trailing slash, no wildcard)", app.RedactURL(o))
		}
		c.CORSOrigins = append(c.CORSOrigins, origin)
	}
	for _, u := range splitList(get("FLASHAUTH_REDIRECT_URIS")) {
		pu, perr := url.Parse(u)
		if perr != nil || !pu.IsAbs() || pu.Host == "" || pu.Fragment != "" {
			return c, fmt.Errorf("FLASHAUTH_REDIRECT_URIS: %q is not an absolute URL such as https://app.example/callback", u)
		}
		c.RedirectURIs = append(c.RedirectURIs, u)
	}
	if pub := get("FLASHAUTH_PUBLIC_URL"); pub != "" {
		p, perr := url.Parse(pub)
		if perr != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Opaque != "" ||
			p.User != nil || p.RawQuery != "" || p.ForceQuery || p.Fragment != "" {
			return c, fmt.Errorf("FLASHAUTH_PUBLIC_URL: want an absolute http(s) URL such as https://auth.example.com, without credentials, query or fragment, got %q", app.RedactURL(pub))
		}
		c.PublicURL = strings.TrimRight(pub, "/")
	}
	if c.SignInRequirePKCE, err = strconv.ParseBool(get("FLASHAUTH_SIGNIN_REQUIRE_PKCE")); err != nil {
		return c, fmt.Errorf("FLASHAUTH_SIGNIN_REQUIRE_PKCE: want true or false, got %q", get("FLASHAUTH_SIGNIN_REQUIRE_PKCE"))
	}
	if c.ReuseRevokesSessions, err = strconv.ParseBool(get("FLASHAUTH_REUSE_REVOKES_SESSIONS")); err != nil {
		return c, fmt.Errorf("FLASHAUTH_REUSE_REVOKES_SESSIONS: want true or false, got %q", get("FLASHAUTH_REUSE_REVOKES_SESSIONS"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, errors.New("FLASHAUTH_TLS_CERT and FLASHAUTH_TLS_KEY must be set together")
	}
	if c.TLSCert != "" {
		// The server loads the pair only after listening; fail here, by name.
		// The error names files and PEM problems, never key material.
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			return c, fmt.Errorf("FLASHAUTH_TLS_CERT: cannot load it with FLASHAUTH_TLS_KEY: %v", err)
		}
	}
	key, err := secretSetting(vals, "FLASHAUTH_SECRET_KEY")
	if err != nil {
		return c, err
	}
	if key == "" {
		return c, errors.New("FLASHAUTH_SECRET_KEY (or FLASHAUTH_SECRET_KEY_FILE) is required: it seals the signing keys in the database; generate one with `openssl rand -base64 48`")
	}
	old, err := secretSetting(vals, "FLASHAUTH_SECRET_KEY_OLD")
	if err != nil {
		return c, err
	}
	c.SecretKey = []byte(key)
	if old != "" {
		c.OldSecretKeys = [][]byte{[]byte(old)}
	}
	return c, nil
}

// secretSetting reads the secret key env names from its variable or from
// the file env_FILE names (set at most one), and checks its length.
func secretSetting(vals map[string]*string, env string) (string, error) {
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
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" ||
		u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(u.Host, "*") {
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
