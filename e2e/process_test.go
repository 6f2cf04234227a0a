package e2e

import (
	"bytes"
	"os/exec"
	"regexp"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/internal/testkit"
)

// startTimeout bounds a replica's start: migrations included, and a replica
// waiting for another's migration lock.
const startTimeout = 60 * time.Second

var listeningLine = regexp.MustCompile(`(?m)^flashauth listening on (http://\S+)$`)

// replica is one running `flashauth serve` process.
type replica struct {
	name string
	URL  string // base URL, e.g. http://127.0.0.1:41234
	cmd  *exec.Cmd
	logs *testkit.SyncBuffer // stderr: the process's JSON logs
	out  *lineWatcher

	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

// launch starts `flashauth serve` with exactly env (nothing is inherited
// from the test's environment) and kills it when the test ends.
func launch(tb testing.TB, name string, env map[string]string) *replica {
	tb.Helper()
	r := &replica{
		name: name,
		logs: &testkit.SyncBuffer{},
		out:  newLineWatcher(listeningLine),
		done: make(chan struct{}),
	}
	r.cmd = exec.Command(flashauthBinary(tb), "serve")
	for k, v := range env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	sort.Strings(r.cmd.Env)
	r.cmd.Stdout = r.out
	r.cmd.Stderr = r.logs
	r.cmd.SysProcAttr = procAttr()
	if err := r.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.done)
	}()
	tb.Cleanup(func() {
		r.kill()
		if tb.Failed() {
			tb.Logf("--- logs of %s (last 40 lines) ---\n%s", name, r.logs.Tail(40))
		}
	})
	return r
}

// waitListening waits for the process to print its address.
func (r *replica) waitListening(tb testing.TB) {
	tb.Helper()
	select {
	case u := <-r.out.match:
		r.URL = u
	case <-r.done:
		tb.Fatalf("%s exited before listening (%v):\n%s", r.name, r.waitErr, r.logs.Tail(20))
	case <-time.After(startTimeout):
		tb.Fatalf("%s did not listen within %s:\n%s", r.name, startTimeout, r.logs.Tail(20))
	}
}

// kill sends SIGKILL and waits for the process to be gone. Killing a dead
// process is a no-op.
func (r *replica) kill() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

// killedBySIGKILL reports whether the process ended by SIGKILL.
func (r *replica) killedBySIGKILL() bool {
	<-r.done
	ws, ok := r.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// lineWatcher is a process's stdout: it keeps the text and hands the first
// submatch of the first line matching re to match.
type lineWatcher struct {
	re    *regexp.Regexp
	match chan string
	mu    sync.Mutex
	buf   bytes.Buffer
	found bool
}

func newLineWatcher(re *regexp.Regexp) *lineWatcher {
	return &lineWatcher{re: re, match: make(chan string, 1)}
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.found {
		if m := w.re.FindSubmatch(w.buf.Bytes()); m != nil {
			w.found = true
			w.match <- string(m[1])
		}
	}
	return len(p), nil
}
