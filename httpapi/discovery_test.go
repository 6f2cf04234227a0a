package httpapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestDiscoveryBaseURL: jwks_uri comes from FLASHAUTH_PUBLIC_URL, else from
// the request; X-Forwarded-Proto is believed only from a trusted proxy, and
// only as one clean value.
func TestDiscoveryBaseURL(t *testing.T) {
	proxy := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name      string
		publicURL string
		trusted   []netip.Prefix
		remote    string
		host      string
		tls       bool
		proto     string
		want      string
		wantVary  bool
	}{
		{name: "configured wins", publicURL: "https://auth.example.com/fa", remote: "10.1.1.1:1", host: "evil.example", proto: "http",
			want: "https://auth.example.com/fa/.well-known/jwks.json"},
		{name: "from Host", remote: "192.0.2.1:1", host: "auth.example.com:8080",
			want: "http://auth.example.com:8080/.well-known/jwks.json", wantVary: true},
		{name: "TLS is https", remote: "192.0.2.1:1", host: "auth.example.com", tls: true,
			want: "https://auth.example.com/.well-known/jwks.json", wantVary: true},
		{name: "untrusted X-Forwarded-Proto ignored", remote: "192.0.2.1:1", host: "auth.example.com", proto: "https",
			want: "http://auth.example.com/.well-known/jwks.json", wantVary: true},
		{name: "trusted proxy's X-Forwarded-Proto", trusted: proxy, remote: "10.1.1.1:1", host: "auth.example.com", proto: "HTTPS",
			want: "https://auth.example.com/.well-known/jwks.json", wantVary: true},
		{name: "trusted proxy's list ignored", trusted: proxy, remote: "10.1.1.1:1", host: "auth.example.com", proto: "https, http",
			want: "http://auth.example.com/.well-known/jwks.json", wantVary: true},
		{name: "trusted proxy's odd scheme ignored", trusted: proxy, remote: "10.1.1.1:1", host: "auth.example.com", proto: "javascript",
			want: "http://auth.example.com/.well-known/jwks.json", wantVary: true},
		{name: "IPv6 Host", remote: "192.0.2.1:1", host: "[2001:db8::1]:8080",
			want: "http://[2001:db8::1]:8080/.well-known/jwks.json", wantVary: true},
		{name: "odd Host replaced by the local address", remote: "192.0.2.1:1", host: "a/b@c",
			want: "http://127.0.0.1:8080/.well-known/jwks.json", wantVary: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewServer(Config{Issuer: "https://issuer.example", PublicURL: tt.publicURL, TrustedProxies: tt.trusted})
			req := httptest.NewRequest(http.MethodGet, "/.well-known/openid-configuration", nil)
			req.RemoteAddr = tt.remote
			req.Host = tt.host
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			}
			if tt.proto != "" {
				req.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			req = req.WithContext(contextWithLocalAddr(req, "127.0.0.1:8080"))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var doc struct {
				Issuer  string   `json:"issuer"`
				JWKSURI string   `json:"jwks_uri"`
				Algs    []string `json:"id_token_signing_alg_values_supported"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.JWKSURI != tt.want {
				t.Errorf("jwks_uri = %q, want %q", doc.JWKSURI, tt.want)
			}
			if doc.Issuer != "https://issuer.example" {
				t.Errorf("issuer = %q, want the configured one", doc.Issuer)
			}
			if len(doc.Algs) != 1 || doc.Algs[0] != "EdDSA" {
				t.Errorf("algorithms = %v, want [EdDSA]", doc.Algs)
			}
			if got := rec.Header().Get("Vary") == "X-Forwarded-Proto"; got != tt.wantVary {
				t.Errorf("Vary = %q, want X-Forwarded-Proto: %v", rec.Header().Get("Vary"), tt.wantVary)
			}
			// A document built from the request must not be stored by a
			// shared cache: one that keys on its upstream's name rather than
			// the client's Host would hand an attacker's jwks_uri to everyone.
			wantCache := "public, max-age=300"
			if tt.publicURL == "" {
				wantCache = "no-store"
			}
			if got := rec.Header().Get("Cache-Control"); got != wantCache {
				t.Errorf("Cache-Control = %q, want %q", got, wantCache)
			}
		})
	}
}

// contextWithLocalAddr is what net/http puts in a request's context: the
// address the connection arrived at.
func contextWithLocalAddr(r *http.Request, addr string) context.Context {
	return context.WithValue(r.Context(), http.LocalAddrContextKey, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
}
