package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/app/apptest"
	"github.com/flashbacktech/flashauth/logging"
)

// discoveryDoc is the part of /.well-known/openid-configuration a verifier
// reads.
type discoveryDoc struct {
	Issuer  string   `json:"issuer"`
	JWKSURI string   `json:"jwks_uri"`
	Algs    []string `json:"id_token_signing_alg_values_supported"`
}

func discovery(t *testing.T, h *apptest.Harness) discoveryDoc {
	t.Helper()
	r := h.Do(http.MethodGet, "/.well-known/openid-configuration", "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("discovery: %d %s", r.Status, r.Body)
	}
	var d discoveryDoc
	if err := json.Unmarshal(r.Body, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDiscoveryKeySetVerifiesAccessToken: with the default issuer
// ("flashauth", not a URL), a standard library verifies an access token
// from nothing but the discovery document: go-oidc's remote key set at its
// jwks_uri and a verifier for its issuer. Forged and foreign tokens fail.
func TestDiscoveryKeySetVerifiesAccessToken(t *testing.T) {
	h := apptest.New(t)
	l := h.SignIn(t, h.GitHubUser("oidc-keyset").ID, "")
	d := discovery(t, h)
	if d.Issuer != "flashauth" || d.JWKSURI != h.Srv.URL+"/.well-known/jwks.json" {
		t.Fatalf("discovery = %+v, want issuer flashauth and jwks_uri under %s", d, h.Srv.URL)
	}
	ctx := oidc.ClientContext(context.Background(), h.Srv.Client())
	keys := oidc.NewRemoteKeySet(ctx, d.JWKSURI)
	verifier := oidc.NewVerifier(d.Issuer, keys, &oidc.Config{ClientID: "flashauth", SupportedSigningAlgs: d.Algs, Now: h.Clock.Now})
	tok, err := verifier.Verify(ctx, l.JWT)
	if err != nil {
		t.Fatalf("go-oidc rejects a flashauth access token: %v", err)
	}
	var claims struct {
		Sid  string `json:"sid"`
		Type string `json:"type"`
	}
	if err := tok.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if tok.Subject != l.UserID() || claims.Sid != l.TokenID || claims.Type != "access" {
		t.Errorf("verified sub %q sid %q type %q, want %q %q access", tok.Subject, claims.Sid, claims.Type, l.UserID(), l.TokenID)
	}

	// The verifier is not a rubber stamp: a changed payload, another
	// audience or another issuer fail.
	parts := strings.Split(l.JWT, ".")
	forged := parts[0] + "." + apptest.B64URL([]byte(`{"iss":"flashauth","aud":"flashauth","sub":"someone-else","exp":4102444800}`)) + "." + parts[2]
	if _, err := verifier.Verify(ctx, forged); err == nil {
		t.Error("go-oidc accepted a token whose payload was changed")
	}
	other := oidc.NewVerifier(d.Issuer, keys, &oidc.Config{ClientID: "another-audience", Now: h.Clock.Now})
	if _, err := other.Verify(ctx, l.JWT); err == nil {
		t.Error("go-oidc accepted the token for another audience")
	}
	if _, err := oidc.NewVerifier("https://elsewhere.example", keys, &oidc.Config{ClientID: "flashauth", Now: h.Clock.Now}).Verify(ctx, l.JWT); err == nil {
		t.Error("go-oidc accepted the token for another issuer")
	}
}

// TestDiscoveryProviderWithURLIssuer: with FLASHAUTH_ISSUER set to the URL
// flashauth is reached at, go-oidc's NewProvider (which requires the
// discovery document's issuer to equal that URL) finds the keys on its own,
// and its verifier accepts the access token.
func TestDiscoveryProviderWithURLIssuer(t *testing.T) {
	h := apptest.New(t)
	// The issuer must be the server's URL, known once it listens.
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	base := "http://" + srv.Listener.Addr().String()
	cfg := h.Cfg
	cfg.Issuer = base
	level, err := logging.ParseLevel(cfg.LogLevel)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, logging.New(h.Logs, "json", level), h.Clock)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = a.Handler
	srv.Start()
	t.Cleanup(func() { srv.Close(); a.Close() })
	p := *h
	p.App, p.Srv, p.Cfg = a, srv, cfg

	l := p.SignIn(t, p.GitHubUser("oidc-provider").ID, "")
	if iss, _ := l.Claims["iss"].(string); iss != base {
		t.Fatalf("iss = %q, want %q", iss, base)
	}
	ctx := oidc.ClientContext(context.Background(), srv.Client())
	provider, err := oidc.NewProvider(ctx, base)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	tok, err := provider.Verifier(&oidc.Config{ClientID: "flashauth", Now: h.Clock.Now}).Verify(ctx, l.JWT)
	if err != nil {
		t.Fatalf("go-oidc rejects a flashauth access token: %v", err)
	}
	if tok.Subject != l.UserID() {
		t.Errorf("sub = %q, want %q", tok.Subject, l.UserID())
	}
	// The default issuer is not a URL: NewProvider refuses it, which is why
	// docs/api.md says to set FLASHAUTH_ISSUER for it.
	if _, err := oidc.NewProvider(oidc.ClientContext(context.Background(), h.Srv.Client()), h.Srv.URL); err == nil {
		t.Error("NewProvider accepted a discovery document whose issuer is not its URL")
	}
}
