// Package loadgentest starts, in process, what a load run needs: a GitHub
// emulator and a flashauth on SQLite in front of it. The tests of loadgen
// and of cmd/flashload share it; it is for tests only.
package loadgentest

import (
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/githubemu"
)

// Serve starts a fresh emulator and a flashauth on SQLite against it, both
// on loopback and stopped when the test ends. It returns flashauth's and the
// emulator's base URLs, and the emulator for faults and call counts.
// flashauth's rate limits are off and its breaker out of the way: a load
// generator would trip both.
func Serve(tb testing.TB) (target, emuURL string, emu *githubemu.Emulator) {
	tb.Helper()
	emu = githubemu.New(githubemu.Config{})
	emuSrv := httptest.NewServer(emu)
	tb.Cleanup(func() { emu.Close(); emuSrv.Close() })
	a, err := app.New(tb.Context(), app.Config{
		DatabaseURL:     "sqlite:" + filepath.Join(tb.TempDir(), "flashauth.db"),
		ClientID:        githubemu.DefaultClientID,
		ClientSecret:    githubemu.DefaultClientSecret,
		GitHubURL:       emuSrv.URL,
		GitHubAPIURL:    emuSrv.URL,
		UpstreamTimeout: 5 * time.Second,
		BreakerFailures: 1000,
		BreakerCooldown: time.Second,
		SecretKey:       []byte("loadgentest-secret-key-of-32-bytes!"),
	}, slog.New(slog.DiscardHandler), flashauth.SystemClock{})
	if err != nil {
		tb.Fatalf("app.New: %v", err)
	}
	srv := httptest.NewServer(a.Handler)
	tb.Cleanup(func() { srv.Close(); a.Close() })
	return srv.URL, emuSrv.URL, emu
}
