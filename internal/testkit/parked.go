package testkit

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Parked returns how many goroutines are blocked (in a select or a channel
// receive) with a frame of fn, such as "/ledger.(*Ledger).Do(", on their
// stack. A test waits for callers to be parked inside the code under test
// instead of sleeping and hoping they got there.
func Parked(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	k := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, "\n")
		blocked := strings.Contains(head, "[select") || strings.Contains(head, "[chan receive")
		if blocked && strings.Contains(g, fn) {
			k++
		}
	}
	return k
}

// WaitUntil polls cond, a state of the program, until it holds. It measures
// no time: the one-minute bound only turns a hang into a failure that says
// what was awaited.
func WaitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("still waiting for %s after a minute", what)
		}
	}
}
