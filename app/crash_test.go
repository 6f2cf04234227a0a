package app_test

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/app/apptest"
	"github.com/flashbacktech/flashauth/internal/testhook"
	"github.com/flashbacktech/flashauth/logging"
)

// TestCrashAfterCommitReplays kills a real flashauth process with SIGKILL
// after it committed a refresh and before it answered. The client sees a
// dead connection; after a restart on the same database the old token
// replays the committed result, and GitHub was called once.
func TestCrashAfterCommitReplays(t *testing.T) {
	h := apptest.New(t)
	g := h.Grant()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
	cmd.Env = append(os.Environ(),
		"FLASHAUTH_CRASH_CHILD=1",
		"FLASHAUTH_CRASH_DB="+h.Cfg.DatabaseURL,
		"FLASHAUTH_CRASH_GITHUB="+h.EmuSrv.URL,
	)
	cmd.Stderr = h.Logs // the child's logs are scanned for secrets too
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child did not start: %v", err)
	}
	base := strings.TrimSpace(strings.TrimPrefix(line, "listening "))

	resp, err := http.Post(base+"/auth/github/refresh", "application/json",
		strings.NewReader(`{"refresh_token":"`+g.RefreshToken+`"}`))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the child answered %d; it should have died before answering", resp.StatusCode)
	}
	werr := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL", werr)
	}
	if c := h.Emu.Calls().TokenRefresh; c != 1 {
		t.Fatalf("upstream refreshes = %d before restart, want 1", c)
	}

	h.Start() // a fresh process's worth of flashauth on the same database
	r := h.Refresh(g.RefreshToken)
	if r.Status != http.StatusOK {
		t.Fatalf("after restart: %d %s", r.Status, r.Body)
	}
	if c := h.Emu.Calls().TokenRefresh; c != 1 {
		t.Fatalf("upstream refreshes = %d after restart, want 1 (replayed)", c)
	}
	// The replayed token is the one GitHub really issued: it refreshes.
	if r2 := h.Refresh(r.Str(t, "refreshToken")); r2.Status != http.StatusOK {
		t.Fatalf("the replayed refresh token does not work: %d %s", r2.Status, r2.Body)
	}
}

// TestCrashChild is the process TestCrashAfterCommitReplays kills.
func TestCrashChild(t *testing.T) {
	if os.Getenv("FLASHAUTH_CRASH_CHILD") != "1" {
		t.Skip("helper process for TestCrashAfterCommitReplays")
	}
	cfg := app.Config{
		DatabaseURL: os.Getenv("FLASHAUTH_CRASH_DB"), ClientID: apptest.ClientID, ClientSecret: apptest.ClientSecret,
		GitHubURL: os.Getenv("FLASHAUTH_CRASH_GITHUB"), GitHubAPIURL: os.Getenv("FLASHAUTH_CRASH_GITHUB"),
		ReplayWindow: time.Hour, UpstreamTimeout: 5 * time.Second, RefreshAuth: "compat",
		BreakerFailures: 5, BreakerCooldown: time.Second, ShutdownTimeout: time.Second, Version: "test",
	}
	a, err := app.New(context.Background(), cfg, logging.New(os.Stderr, "json", slog.LevelDebug), flashauth.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	testhook.SetAfterLedgerCommit(func(string) { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("listening http://" + ln.Addr().String() + "\n")
	_ = a.Serve(context.Background(), ln, cfg)
}
