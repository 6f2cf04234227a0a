package app_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/app/apptest"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/internal/testkit"
)

// The benchmarks and the crash test (bench_test.go, crash_test.go) were
// written against the harness before it moved to package apptest; this
// adapter gives them apptest's harness under their old names. The other
// tests use apptest directly. Delete it once those two files say apptest.

const (
	testClientID     = apptest.ClientID
	testClientSecret = apptest.ClientSecret
)

type harness struct {
	*apptest.Harness
	emu    *githubemu.Emulator
	emuSrv *httptest.Server
	srv    *httptest.Server
	cfg    app.Config
	logs   *testkit.SyncBuffer
}

func newHarness(tb testing.TB, opts ...apptest.Option) *harness {
	tb.Helper()
	h := &harness{Harness: apptest.New(tb, opts...)}
	h.emu, h.emuSrv, h.srv, h.cfg, h.logs = h.Emu, h.EmuSrv, h.Srv, h.Cfg, h.Logs
	return h
}

func (h *harness) start() { h.Start(); h.srv = h.Srv }

func (h *harness) grant() githubemu.Grant { return h.Grant() }

func (h *harness) githubUser(login string) githubemu.User { return h.GitHubUser(login) }

func (h *harness) signIn(tb testing.TB, userID int64, deviceInfo string, hdr ...string) apptest.SignedIn {
	return h.SignIn(tb, userID, deviceInfo, hdr...)
}

func (h *harness) refresh(token string, hdr ...string) response {
	return response{h.Refresh(token, hdr...)}
}

type response struct{ apptest.Response }

func (r response) str(t testing.TB, keys ...string) string { return r.Str(t, keys...) }

func send(c *http.Client, req *http.Request) (response, error) {
	r, err := apptest.Send(c, req)
	return response{r}, err
}
