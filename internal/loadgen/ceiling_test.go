package loadgen_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/internal/loadgen"
)

// serveCeiling starts an emulator and the ceiling proxy in front of it.
func serveCeiling(t *testing.T) (ceilingURL, emuURL string, emu *githubemu.Emulator) {
	t.Helper()
	emu = githubemu.New(githubemu.Config{ClientSecret: "ceiling-secret"})
	emuSrv := httptest.NewServer(emu)
	t.Cleanup(func() { emu.Close(); emuSrv.Close() })
	srv := httptest.NewServer(loadgen.NewCeiling(emuSrv.URL, githubemu.DefaultClientID, "ceiling-secret", 16))
	t.Cleanup(srv.Close)
	return srv.URL, emuSrv.URL, emu
}

type ceilingAnswer struct {
	status int
	body   []byte
	fields map[string]any
}

func postCeiling(t *testing.T, url, body string) ceilingAnswer {
	t.Helper()
	resp, err := http.Post(url+"/auth/github/refresh", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Errorf("post: %v", err)
		return ceilingAnswer{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := ceilingAnswer{status: resp.StatusCode, body: b}
	if err := json.Unmarshal(b, &a.fields); err != nil {
		t.Errorf("answer is not JSON: %q", b)
	}
	return a
}

func refreshBody(token string) string {
	b, _ := json.Marshal(map[string]string{"refresh_token": token})
	return string(b)
}

func TestCeilingAnswersAsFlashauth(t *testing.T) {
	url, _, emu := serveCeiling(t)
	u := emu.AddUser(githubemu.User{Login: "ceiling"})
	g, err := emu.MintGrant(u.ID)
	if err != nil {
		t.Fatal(err)
	}
	a := postCeiling(t, url, refreshBody(g.RefreshToken))
	if a.status != http.StatusOK || a.fields["success"] != true {
		t.Fatalf("answer %d %s", a.status, a.body)
	}
	for _, f := range []string{"token", "accessToken", "refreshToken", "expiresAt", "expiresIn", "refreshTokenExpiresAt", "tokenType", "scope"} {
		if _, ok := a.fields[f]; !ok {
			t.Errorf("answer lacks %q", f)
		}
	}
	if a.fields["refreshToken"] == g.RefreshToken || a.fields["token"] != a.fields["accessToken"] {
		t.Errorf("not rotated: %s", a.body)
	}
	// Nothing is remembered after the answer: the spent token goes to
	// GitHub again, which refuses it.
	again := postCeiling(t, url, refreshBody(g.RefreshToken))
	if again.status != http.StatusUnauthorized || again.fields["error_code"] != "INVALID_REFRESH_TOKEN" || emu.Calls().TokenRefresh != 2 {
		t.Errorf("second use: %d %s, %d upstream calls", again.status, again.body, emu.Calls().TokenRefresh)
	}
}

func TestCeilingJoinsConcurrentCallers(t *testing.T) {
	url, _, emu := serveCeiling(t)
	g, err := emu.MintGrant(emu.AddUser(githubemu.User{Login: "racer"}).ID)
	if err != nil {
		t.Fatal(err)
	}
	emu.SetLatency(100 * time.Millisecond)
	const n = 20
	answers := make([]ceilingAnswer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = postCeiling(t, url, refreshBody(g.RefreshToken)) })
	}
	wg.Wait()
	if c := emu.Calls().TokenRefresh; c != 1 {
		t.Errorf("%d upstream calls for one token, want 1", c)
	}
	for i, a := range answers {
		if a.status != http.StatusOK || !bytes.Equal(a.body, answers[0].body) {
			t.Errorf("answer %d differs: %d %s", i, a.status, a.body)
		}
	}
}

func TestCeilingErrors(t *testing.T) {
	url, _, emu := serveCeiling(t)
	tests := []struct {
		name   string
		body   string
		fault  *githubemu.Fault
		status int
		code   string
	}{
		{"unknown token", refreshBody("ghr_unknown"), nil, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN"},
		{"no token", `{}`, nil, http.StatusBadRequest, "INVALID_REQUEST"},
		{"not JSON", `ghr_`, nil, http.StatusBadRequest, "INVALID_REQUEST"},
		{"GitHub down", refreshBody("ghr_down"), &githubemu.Fault{Kind: githubemu.FaultServerError, Count: 1}, http.StatusServiceUnavailable, "UPSTREAM_UNAVAILABLE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				emu.InjectFault(*tc.fault)
			}
			a := postCeiling(t, url, tc.body)
			if a.status != tc.status || a.fields["error_code"] != tc.code || a.fields["success"] != false {
				t.Errorf("answer %d %s, want %d %s", a.status, a.body, tc.status, tc.code)
			}
		})
	}

	// A transient failure is not remembered: the next caller tries again.
	g, err := emu.MintGrant(emu.AddUser(githubemu.User{Login: "retry"}).ID)
	if err != nil {
		t.Fatal(err)
	}
	emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Count: 1})
	if a := postCeiling(t, url, refreshBody(g.RefreshToken)); a.status != http.StatusServiceUnavailable {
		t.Fatalf("with GitHub down: %d %s", a.status, a.body)
	}
	if a := postCeiling(t, url, refreshBody(g.RefreshToken)); a.status != http.StatusOK {
		t.Fatalf("after GitHub came back: %d %s", a.status, a.body)
	}
}

// The engine's unique scenario against the ceiling: every request one
// rotation and one upstream call, as against flashauth.
func TestCeilingUnique(t *testing.T) {
	url, emuURL, _ := serveCeiling(t)
	rep, err := loadgen.Run(t.Context(), small(loadgen.Config{
		Targets: []string{url}, Emulator: emuURL, Scenario: loadgen.ScenarioUnique, Concurrency: 8,
	}))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Errors != 0 || rep.Rotations != int64(rep.Requests) || rep.Upstream != rep.Rotations {
		t.Fatalf("report: %+v", rep)
	}
}
