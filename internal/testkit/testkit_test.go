package testkit_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/testkit"
)

var _ flashauth.Clock = (*testkit.Clock)(nil)

func TestClock(t *testing.T) {
	start := time.UnixMilli(1764120000000)
	c := testkit.NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want the start %v", got, start)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), start.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("after Advance: Now = %v, want %v", got, want)
	}
	c.Advance(-time.Minute)
	if got, want := c.Now(), start.Add(30*time.Second); !got.Equal(want) {
		t.Fatalf("after a negative Advance: Now = %v, want %v", got, want)
	}
	later := start.Add(24 * time.Hour)
	c.Set(later)
	if got := c.Now(); !got.Equal(later) {
		t.Fatalf("after Set: Now = %v, want %v", got, later)
	}
	var zero testkit.Clock
	if !zero.Now().IsZero() {
		t.Fatalf("zero Clock reads %v, want the zero time", zero.Now())
	}
}

// Advances from many goroutines all count (run with -race to see that
// readers and writers do not collide).
func TestClockConcurrent(t *testing.T) {
	start := time.UnixMilli(0)
	c := testkit.NewClock(start)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Millisecond)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(800*time.Millisecond); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
}

func TestSyncBufferConcurrentWrites(t *testing.T) {
	var b testkit.SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				fmt.Fprintf(&b, "writer %d\n", i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 400 {
		t.Fatalf("%d lines written, want 400", n)
	}
}

func TestSyncBufferTail(t *testing.T) {
	tests := []struct {
		name, written string
		n             int
		want          string
	}{
		{"empty", "", 3, ""},
		{"fewer lines than n", "a\nb\n", 3, "a\nb"},
		{"exactly n", "a\nb\nc\n", 3, "a\nb\nc"},
		{"more than n", "a\nb\nc\nd\ne\n", 2, "[... 3 lines]\nd\ne"},
		{"no final newline", "a\nb\nc", 1, "[... 2 lines]\nc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b testkit.SyncBuffer
			if _, err := b.Write([]byte(tc.written)); err != nil {
				t.Fatal(err)
			}
			if got := b.Tail(tc.n); got != tc.want {
				t.Fatalf("Tail(%d) = %q, want %q", tc.n, got, tc.want)
			}
			if got := b.String(); got != tc.written {
				t.Fatalf("String = %q, want %q", got, tc.written)
			}
		})
	}
}

// fatalRecorder is a testing.TB whose Fatalf records instead of stopping
// the test.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Helper()               {}
func (f *fatalRecorder) Fatalf(string, ...any) { f.failed = true }

func TestWantCode(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantFail bool
	}{
		{"the code", flashauth.Errorf(flashauth.CodeNotFound, "x"), false},
		{"the code, wrapped", fmt.Errorf("op: %w", flashauth.Errorf(flashauth.CodeNotFound, "x")), false},
		{"another code", flashauth.Errorf(flashauth.CodeInvalidRequest, "x"), true},
		{"not a flashauth error", errors.New("x"), true},
		{"nil", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fatalRecorder{TB: t}
			testkit.WantCode(f, tc.err, flashauth.CodeNotFound)
			if f.failed != tc.wantFail {
				t.Fatalf("failed = %v, want %v", f.failed, tc.wantFail)
			}
		})
	}
}

func TestRandomHex(t *testing.T) {
	a, b := testkit.RandomHex(t, 8), testkit.RandomHex(t, 8)
	if len(a) != 16 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Fatalf("RandomHex(8) = %q, want 16 hex digits", a)
	}
	if a == b {
		t.Fatalf("two RandomHex(8) are equal: %q", a)
	}
}

//go:noinline
func parkHere(release chan struct{}, done chan struct{}) {
	<-release
	close(done)
}

func TestParkedAndWaitUntil(t *testing.T) {
	const fn = "/testkit_test.parkHere("
	if n := testkit.Parked(fn); n != 0 {
		t.Fatalf("Parked = %d before any goroutine parks, want 0", n)
	}
	release, done := make(chan struct{}), make(chan struct{})
	go parkHere(release, done)
	testkit.WaitUntil(t, "the goroutine parked", func() bool { return testkit.Parked(fn) == 1 })
	close(release)
	<-done
	if n := testkit.Parked(fn); n != 0 {
		t.Fatalf("Parked = %d after the goroutine returned, want 0", n)
	}
}

func TestTokenShaped(t *testing.T) {
	jwt := "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjMiLCJleHAiOjE3fQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"refresh ghr_" + strings.Repeat("aZ9", 20) + " done", 1},
		{`{"token":"ghu_` + strings.Repeat("x", 36) + `","jwt":"` + jwt + `"}`, 2},
		{"gho_" + strings.Repeat("A", 36) + "\nghs_" + strings.Repeat("b", 36), 2},
		{"redacted ghr_abcd... and a kid eyJabc", 0},
		{"error_code INVALID_REFRESH_TOKEN, request id 0123456789abcdef0123456789abcdef", 0},
		{"", 0},
	} {
		if got := testkit.TokenShaped(tc.in); len(got) != tc.want {
			t.Errorf("TokenShaped(%.40q...) = %d matches, want %d", tc.in, len(got), tc.want)
		}
	}
}

func TestStringConsts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.go")
	src := "package p\n\nconst (\n\tCodeA = \"A\"\n\tCodeB, Other = \"B\", \"x\"\n\tNumber = 3\n\tcodeLower = \"no\"\n)\n\nconst CodeC = `C`\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got := testkit.StringConsts(t, path, 3, "Code")
	want := []testkit.Const{{"CodeA", "A"}, {"CodeB", "B"}, {"CodeC", "C"}}
	if !slices.Equal(got, want) {
		t.Fatalf("StringConsts = %v, want %v", got, want)
	}
}
