package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A real `flashauth serve` sent SIGTERM while a refresh is at GitHub stops
// accepting, answers the in-flight refresh, commits it, and exits 0; a
// restarted process replays the committed answer.
func TestSIGTERMDrainsInFlightRefresh(t *testing.T) {
	b := newTestbed(t)
	env := b.env("sqlite:" + filepath.Join(t.TempDir(), "flashauth.db"))
	r := b.start(1, env)[0]
	token := b.grant()
	b.up.emu.SetLatency(700 * time.Millisecond)

	type result struct {
		a   answer
		err error
	}
	res := make(chan result, 1)
	go func() {
		a, err := b.refresh(r.URL, token)
		res <- result{a, err}
	}()
	waitFor(t, "the refresh to reach GitHub", 10*time.Second, func() bool { return b.up.emu.Calls().TokenRefresh > 0 })
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	got := <-res
	if got.err != nil || got.a.Status != 200 {
		t.Fatalf("in-flight refresh across SIGTERM: %v %v", got.a, got.err)
	}
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the process did not exit after SIGTERM")
	}
	if r.waitErr != nil {
		t.Fatalf("exit after SIGTERM: %v", r.waitErr)
	}
	if !strings.Contains(r.logs.String(), "shutdown complete") {
		t.Errorf("no clean shutdown in the logs")
	}

	b.up.emu.SetLatency(0)
	r2 := b.start(1, env)[0]
	again := b.mustRefresh(r2.URL, token)
	if again.Status != 200 || string(again.Body) != string(got.a.Body) || b.up.emu.Calls().TokenRefresh != 1 {
		t.Fatalf("after restart: %v, identical %v, upstream calls %d", again, string(again.Body) == string(got.a.Body), b.up.emu.Calls().TokenRefresh)
	}
}
