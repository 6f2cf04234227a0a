package githubemu

import (
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/flashbacktech/flashauth/internal/testkit"
)

func TestLogsHoldNoSecrets(t *testing.T) {
	var logs testkit.SyncBuffer
	te := newTestEmu(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	u, g := te.mustGrant(t, "octocat")
	code := te.login(t, LoginParams{UserID: u.ID})
	secrets := []string{te.ClientSecret(), g.AccessToken, g.RefreshToken, code}

	m := te.refreshJSON(t, g.RefreshToken)
	secrets = append(secrets, m["access_token"].(string), m["refresh_token"].(string))
	te.postToken(t, "application/json", te.creds("code", code))
	// Secrets in the query string, a failed attempt and a fault.
	te.postToken(t, "", url.Values{"client_id": {te.ClientID()}, "client_secret": {"wrong-" + te.ClientSecret()}})
	te.InjectFault(Fault{Kind: FaultServerError, Count: 1})
	te.postToken(t, "application/json", te.creds("grant_type", "refresh_token", "refresh_token", g.RefreshToken))
	te.get(t, UserPath+"?access_token="+g.AccessToken, g.AccessToken)

	out := logs.String()
	if !strings.Contains(out, "githubemu: request") {
		t.Fatalf("nothing was logged: %q", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Fatalf("log holds a secret:\n%s", out)
		}
	}
}
