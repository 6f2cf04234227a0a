package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/flashbacktech/flashauth/internal/testkit"
)

var updateDemoPNG = flag.Bool("update-demo-png", false, "write TestDemoInBrowser's screenshot to docs/demo.png")

// chromiumPath finds Debian's chromium. Without it the browser test skips,
// except in CI (CI set, to anything but a false value), where it fails: CI
// must run it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci, err := strconv.ParseBool(os.Getenv("CI")); ci || (err != nil && os.Getenv("CI") != "") {
		t.Fatal("CI is set but no chromium is on PATH: install it (apt-get install -y chromium; .ci/run does)")
	}
	t.Skip("no chromium on PATH (apt-get install -y chromium); CI runs this test")
	return ""
}

// fullToken matches a whole GitHub token or JWT: the page shows only their
// first four characters.
var fullToken = regexp.MustCompile(`(gh[ousr]_|eyJ)[A-Za-z0-9_-]{5,}`)

// TestDemoInBrowser drives the demo page `flashauth dev` serves with a real
// headless Chromium: sign-in through the emulator's authorize page, both
// refreshes, the race, the session list and revocation, reading what the
// page shows. The page's own CSP must let it run: script errors and CSP
// reports fail the test.
func TestDemoInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	var stderr testkit.SyncBuffer
	// The default limits: the race's eight callers must all get the same
	// answer with the settings most users never change.
	env := map[string]string{"FLASHAUTH_ADDR": "127.0.0.1:0"}
	lines, stop := startCmd(t, []string{"dev"}, env, &stderr)
	base := waitLine(t, lines, regexp.MustCompile(`^flashauth listening on (http://\S+)$`))[1]
	signInURL := waitLine(t, lines, regexp.MustCompile(`^\s+(http://\S+/auth/github/authorize\?\S+)$`))[1]
	go func() {
		for lines.Scan() {
		}
	}()
	// Another device of the same user, signed in through the dev callback
	// page: the demo lists it and revokes it.
	followDevSignIn(t, base, signInURL)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 1200),
	)
	defer cancelAlloc()
	var (
		mu       sync.Mutex
		problems []string
	)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithListener(func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, "script error: "+ev.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
				problems = append(problems, "console: "+ev.Entry.Text)
			}
		}
	}))
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// A bound on a hung browser, not a performance assertion.
	tctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tctx, steps...); err != nil {
			t.Fatalf("%s: %v\nstatus: %q", what, err, text(t, tctx, "#status"))
		}
	}
	waitText := func(sel, want string) chromedp.Action[chromedp.Void] {
		s, _ := json.Marshal(sel)
		w, _ := json.Marshal(want)
		return chromedp.Poll[chromedp.Void](`(document.querySelector(`+string(s)+`) || {textContent: ""}).textContent.includes(`+string(w)+`)`,
			chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second))
	}
	enableLog := func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, cdplog.Enable, cdp.Empty{})
		return chromedp.Void{}, err
	}

	do("open the demo", enableLog, chromedp.Navigate(base+"/"), waitText("#status", "Signed out"), chromedp.WaitVisible(chromedp.ID("signin")))
	// Clicks that navigate wait for the new page's load.
	navigate := func(what string, sel chromedp.CSS) {
		t.Helper()
		if _, err := chromedp.RunResponse(tctx, chromedp.Click(sel)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	navigate("go to the emulator's authorize page", "#signin")
	do("see the authorize page", chromedp.WaitVisible(chromedp.CSS(`button[value="approve"]`)))
	if h1 := text(t, tctx, "h1"); h1 != "Authorize Iv1.flashauthdev" {
		t.Fatalf("emulator page heading %q", h1)
	}
	navigate("approve", `button[value="approve"]`)
	do("finish the sign-in", waitText("#status", "Signed in as octocat@example.com"))
	if loc, err := chromedp.Run(tctx, chromedp.Location()); err != nil || loc != base+"/" {
		t.Errorf("after sign-in the address is %q (%v), want the code gone from it", loc, err)
	}
	if got := text(t, tctx, "#user"); got != "The Octocat <octocat@example.com>" {
		t.Errorf("user shown: %q", got)
	}
	shown := func(row string) (value, expires string) {
		return text(t, tctx, "#"+row+" .value"), text(t, tctx, "#"+row+" .expires")
	}
	future := regexp.MustCompile(`\(in \d+ (min|h|days)\)$`)
	for _, tc := range []struct{ row, value string }{
		{"tok-github-access", `^ghu_…$`}, {"tok-github-refresh", `^ghr_…$`},
		{"tok-access", `^eyJ[A-Za-z0-9_-]…$`}, {"tok-session", `^[A-Za-z0-9_-]{4}…$`},
	} {
		v, exp := shown(tc.row)
		if !regexp.MustCompile(tc.value).MatchString(v) {
			t.Errorf("%s shows %q, want %s", tc.row, v, tc.value)
		}
		if tc.row == "tok-github-refresh" {
			if exp != "unknown until the first refresh" {
				t.Errorf("GitHub refresh token expiry before any refresh: %q", exp)
			}
		} else if !future.MatchString(exp) {
			t.Errorf("%s expires %q, want a time in the future", tc.row, exp)
		}
	}
	do("list both sessions", chromedp.WaitVisible(chromedp.CSS(`#sessions[data-count="2"] tr.current`)))

	do("refresh the GitHub token", chromedp.Click(chromedp.ID("refresh-github")), waitText("#status", "GitHub token refreshed: ghu_… -> ghu_…"))
	if _, exp := shown("tok-github-refresh"); !regexp.MustCompile(`\(in \d+ days\)$`).MatchString(exp) {
		t.Errorf("GitHub refresh token expiry after a refresh: %q", exp)
	}
	do("race", chromedp.Click(chromedp.ID("race")), waitText("#status", "Race done"))
	if got := text(t, tctx, "#race-result"); got != "8/8 identical, 1 rotation" {
		t.Errorf("race result %q; log:\n%s", got, text(t, tctx, "#log"))
	}
	do("refresh the session", chromedp.Click(chromedp.ID("refresh-session")), waitText("#status", "Session refreshed"),
		chromedp.WaitVisible(chromedp.CSS(`#sessions[data-count="2"] tr.current`)))

	// Everything the page holds in its DOM, and its storage: no whole token.
	html, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.documentElement.outerHTML + JSON.stringify(sessionStorage) + JSON.stringify(localStorage)`))
	if err != nil {
		t.Fatal(err)
	}
	if m := fullToken.FindString(html); m != "" {
		t.Errorf("the page holds a whole token (%.8s…)", m)
	}

	shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if _, err := png.Decode(bytes.NewReader(shot)); err != nil {
		t.Fatalf("screenshot is no PNG: %v", err)
	}
	out := filepath.Join(t.TempDir(), "demo.png")
	if *updateDemoPNG {
		out = filepath.Join("..", "..", "docs", "demo.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}

	do("revoke the other device's session", chromedp.Click(chromedp.CSS(`#sessions tbody tr:not(.current) button.revoke`)),
		waitText("#status", "Revoked session"), chromedp.WaitVisible(chromedp.CSS(`#sessions[data-count="1"] tr.current`)))
	do("revoke this page's session", chromedp.Click(chromedp.CSS(`#sessions tbody tr.current button.revoke`)),
		waitText("#status", "this page's session was revoked"), chromedp.WaitVisible(chromedp.ID("signin")))

	mu.Lock()
	if len(problems) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(problems, "\n"))
	}
	mu.Unlock()
	cancel()
	if err := stop(); err != nil {
		t.Fatalf("dev did not exit cleanly: %v", err)
	}
	if m := fullToken.FindString(stderr.String()); m != "" {
		t.Errorf("dev logged a token (%.8s…)", m)
	}
}

// text returns the text content of the first element sel selects.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(`+quote(sel)+`) || {textContent: ""}).textContent`))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
