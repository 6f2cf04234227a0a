package httpapi

import (
	"net"
	"net/http"
	"regexp"
	"strings"
)

// accessClaims lists the claims of flashauth access tokens, published by
// discovery. session.issueAccess is the source of truth.
var accessClaims = []string{"iss", "sub", "aud", "exp", "iat", "jti", "userId", "email", "orgId", "sid", "type"}

// handleOpenIDConfiguration serves GET /.well-known/openid-configuration:
// the OpenID Connect Discovery fields that let standard JWT libraries
// (go-oidc, jose) find the keys of access tokens. flashauth is not an OpenID
// Provider (no ID tokens, no OAuth token endpoint), so only the metadata
// that is true of it is published.
func (s *server) handleOpenIDConfiguration() http.Handler {
	type response struct {
		Issuer               string   `json:"issuer"`
		JWKSURI              string   `json:"jwks_uri"`
		ResponseTypes        []string `json:"response_types_supported"`
		SubjectTypes         []string `json:"subject_types_supported"`
		SigningAlgs          []string `json:"id_token_signing_alg_values_supported"`
		TokenEndpointAuth    []string `json:"token_endpoint_auth_methods_supported"`
		Claims               []string `json:"claims_supported"`
		CodeChallengeMethods []string `json:"code_challenge_methods_supported"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base, fromRequest := s.publicBase(r)
		if fromRequest {
			// The answer depends on Host and, from a trusted proxy, on
			// X-Forwarded-Proto. Not every shared cache keys on the Host the
			// client sent (nginx's default proxy_cache_key uses the upstream's
			// name), so a cacheable answer would let one request with
			// Host: evil.example point every verifier's jwks_uri at keys of
			// the attacker's choosing. Only FLASHAUTH_PUBLIC_URL makes the
			// document the same for everyone, and cacheable.
			w.Header().Add("Vary", "X-Forwarded-Proto")
			w.Header().Set("Cache-Control", "no-store")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=300")
		}
		writeJSON(w, http.StatusOK, response{
			Issuer:               s.Issuer,
			JWKSURI:              base + "/.well-known/jwks.json",
			ResponseTypes:        []string{"code"},
			SubjectTypes:         []string{"public"},
			SigningAlgs:          []string{"EdDSA"},
			TokenEndpointAuth:    []string{"none"},
			Claims:               accessClaims,
			CodeChallengeMethods: []string{"S256"},
		})
	})
}

// hostShape is what a Host header may hold: a name or address and a port.
// net/http already refuses worse; this keeps anything odd out of a URL.
var hostShape = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// publicBase returns the absolute URL callers reach flashauth at, without a
// trailing slash, and whether it was derived from r. PublicURL wins;
// otherwise the scheme is https on a TLS connection, or what
// X-Forwarded-Proto says when the direct peer is a trusted proxy, else http;
// the host is the request's Host, or the address the connection arrived at.
func (s *server) publicBase(r *http.Request) (string, bool) {
	if s.PublicURL != "" {
		return s.PublicURL, false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if peer := peerAddr(r.RemoteAddr); peer.IsValid() && s.trusted(peer) {
		// Only one clean value is believed: a list means several proxies
		// disagreed or the client wrote part of it.
		switch p := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto"))); p {
		case "http", "https":
			scheme = p
		}
	}
	host := r.Host
	if !hostShape.MatchString(host) {
		host = ""
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host = a.String()
		}
	}
	return scheme + "://" + host, true
}
