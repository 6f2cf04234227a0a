package github

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/testkit"
)

// stubGitHub answers every call with what answer returns (nil: success).
type stubGitHub struct {
	calls  atomic.Int32
	mu     sync.Mutex
	answer func(ctx context.Context) error
}

func (s *stubGitHub) set(answer func(ctx context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = answer
}

func (s *stubGitHub) do(ctx context.Context) error {
	s.calls.Add(1)
	s.mu.Lock()
	answer := s.answer
	s.mu.Unlock()
	if answer == nil {
		return nil
	}
	return answer(ctx)
}

func (s *stubGitHub) RefreshToken(ctx context.Context, _ string) (flashauth.GitHubToken, error) {
	if err := s.do(ctx); err != nil {
		return flashauth.GitHubToken{}, err
	}
	return flashauth.GitHubToken{AccessToken: newAccess}, nil
}

func (s *stubGitHub) ExchangeCode(ctx context.Context, _ flashauth.CodeExchange) (flashauth.GitHubToken, error) {
	if err := s.do(ctx); err != nil {
		return flashauth.GitHubToken{}, err
	}
	return flashauth.GitHubToken{AccessToken: newAccess}, nil
}

func (s *stubGitHub) User(ctx context.Context, _ string) (flashauth.GitHubUser, error) {
	if err := s.do(ctx); err != nil {
		return flashauth.GitHubUser{}, err
	}
	return flashauth.GitHubUser{ID: 1, Login: "octocat"}, nil
}

func (s *stubGitHub) Emails(ctx context.Context, _ string) ([]flashauth.GitHubEmail, error) {
	if err := s.do(ctx); err != nil {
		return nil, err
	}
	return []flashauth.GitHubEmail{{Email: "octocat@github.com"}}, nil
}

func upstream(kind flashauth.UpstreamKind) func(context.Context) error {
	return func(context.Context) error { return &flashauth.UpstreamError{Kind: kind, Op: opRefresh, Status: 502} }
}

var (
	transient = upstream(flashauth.UpstreamTransient)
	succeed   = func(context.Context) error { return nil }
)

// newTestBreaker returns a breaker opening after 3 failures for 30s.
func newTestBreaker() (*Breaker, *stubGitHub, *testkit.Clock) {
	stub, clock := &stubGitHub{}, testkit.NewClock(testNow)
	return NewBreaker(stub, BreakerConfig{Failures: 3, Cooldown: 30 * time.Second, Clock: clock}), stub, clock
}

func refresh(ctx context.Context, b *Breaker) error {
	_, err := b.RefreshToken(ctx, testRefresh)
	return err
}

// trip opens b with three transient failures.
func trip(t *testing.T, b *Breaker, stub *stubGitHub) {
	t.Helper()
	stub.set(transient)
	for range 3 {
		_ = refresh(t.Context(), b)
	}
	if got := b.State(); got != "open" {
		t.Fatalf("State = %q after 3 failures, want open", got)
	}
}

// wantFastFail asserts err is the breaker's own error with the given hint.
func wantFastFail(t *testing.T, err error, op string, retryAfter time.Duration) {
	t.Helper()
	ue := wantUpstream(t, err, flashauth.UpstreamTransient, op)
	if !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("err = %v, want ErrCircuitOpen", err)
	}
	if ue.RetryAfter != retryAfter {
		t.Errorf("RetryAfter = %s, want %s", ue.RetryAfter, retryAfter)
	}
}

func TestBreakerOpensAndFailsFast(t *testing.T) {
	b, stub, clock := newTestBreaker()
	stub.set(transient)
	for i := range 2 {
		if err := refresh(t.Context(), b); errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("call %d failed fast before the threshold", i+1)
		}
		if got := b.State(); got != "closed" {
			t.Fatalf("State = %q after %d failures, want closed", got, i+1)
		}
	}
	_ = refresh(t.Context(), b)
	if got := b.State(); got != "open" {
		t.Fatalf("State = %q, want open", got)
	}
	calls := stub.calls.Load()

	wantFastFail(t, refresh(t.Context(), b), opRefresh, 30*time.Second)
	clock.Advance(10 * time.Second)
	_, err := b.User(t.Context(), testAccess)
	wantFastFail(t, err, opUser, 20*time.Second)
	clock.Advance(19*time.Second + 500*time.Millisecond)
	_, err = b.Emails(t.Context(), testAccess)
	wantFastFail(t, err, opEmails, time.Second) // 0.5s left, reported as the 1s minimum
	_, err = b.ExchangeCode(t.Context(), flashauth.CodeExchange{Code: testCode})
	wantFastFail(t, err, opExchange, time.Second)
	if got := stub.calls.Load(); got != calls {
		t.Errorf("inner saw %d calls while open, want 0", got-calls)
	}
}

func TestBreakerCountsConsecutiveTransientFailuresOnly(t *testing.T) {
	cancelled := func(ctx context.Context) error {
		return &flashauth.UpstreamError{Kind: flashauth.UpstreamTransient, Op: opRefresh, Err: context.Canceled}
	}
	tests := []struct {
		name string
		seq  []func(context.Context) error
		// cancelAt is the index of the call made with a cancelled context (-1: none).
		cancelAt int
		want     string
	}{
		{"three transient failures", []func(context.Context) error{transient, transient, transient}, -1, "open"},
		{"success resets", []func(context.Context) error{transient, transient, succeed, transient, transient}, -1, "closed"},
		{"rejected resets", []func(context.Context) error{transient, transient, upstream(flashauth.UpstreamRejected), transient, transient}, -1, "closed"},
		{"config resets", []func(context.Context) error{transient, transient, upstream(flashauth.UpstreamConfig), transient, transient}, -1, "closed"},
		{"bad response resets", []func(context.Context) error{transient, transient, upstream(flashauth.UpstreamBadResponse), transient, transient}, -1, "closed"},
		{"caller cancellation does not count", []func(context.Context) error{transient, transient, cancelled}, 2, "closed"},
		{"caller cancellation does not reset", []func(context.Context) error{transient, transient, cancelled, transient}, 2, "open"},
		{"errors outside the contract count", []func(context.Context) error{transient, transient, func(context.Context) error { return errors.New("boom") }}, -1, "open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, stub, _ := newTestBreaker()
			for i, answer := range tt.seq {
				stub.set(answer)
				ctx := t.Context()
				if i == tt.cancelAt {
					c, cancel := context.WithCancel(ctx)
					cancel()
					ctx = c
				}
				_ = refresh(ctx, b)
			}
			if got := b.State(); got != tt.want {
				t.Errorf("State = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBreakerHalfOpenLetsOneProbeThrough(t *testing.T) {
	b, stub, clock := newTestBreaker()
	trip(t, b, stub)
	clock.Advance(30 * time.Second)
	if got := b.State(); got != "half-open" {
		t.Fatalf("State = %q after the cooldown, want half-open", got)
	}

	entered, release := make(chan struct{}), make(chan struct{})
	stub.set(func(context.Context) error {
		close(entered)
		<-release
		return nil
	})
	probe := make(chan error, 1)
	go func() { probe <- refresh(context.Background(), b) }()
	<-entered
	calls := stub.calls.Load()
	for range 3 {
		wantFastFail(t, refresh(t.Context(), b), opRefresh, time.Second)
	}
	if got := stub.calls.Load(); got != calls {
		t.Errorf("inner saw %d calls besides the probe", got-calls)
	}
	if got := b.State(); got != "half-open" {
		t.Errorf("State = %q during the probe, want half-open", got)
	}
	close(release)
	if err := <-probe; err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got := b.State(); got != "closed" {
		t.Fatalf("State = %q after a successful probe, want closed", got)
	}
	stub.set(succeed)
	if err := refresh(t.Context(), b); err != nil {
		t.Errorf("call after closing: %v", err)
	}
}

func TestBreakerProbeOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		answer func(context.Context) error
		cancel bool
		want   string
	}{
		{"transient failure re-opens", transient, false, "open"},
		{"rejected closes", upstream(flashauth.UpstreamRejected), false, "closed"},
		{"caller cancellation frees the probe slot", transient, true, "half-open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, stub, clock := newTestBreaker()
			trip(t, b, stub)
			clock.Advance(31 * time.Second)
			stub.set(tt.answer)
			ctx := t.Context()
			if tt.cancel {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			if err := refresh(ctx, b); errors.Is(err, ErrCircuitOpen) {
				t.Fatalf("the probe failed fast: %v", err)
			}
			if got := b.State(); got != tt.want {
				t.Fatalf("State = %q, want %q", got, tt.want)
			}
			switch tt.want {
			case "open": // a full cooldown from the probe's failure
				wantFastFail(t, refresh(t.Context(), b), opRefresh, 30*time.Second)
			case "half-open": // the next call is the probe
				stub.set(succeed)
				if err := refresh(t.Context(), b); err != nil {
					t.Fatalf("second probe: %v", err)
				}
				if got := b.State(); got != "closed" {
					t.Errorf("State = %q after the second probe, want closed", got)
				}
			}
		})
	}
}

// Calls admitted before the last state change report stale news: slow
// failures from before the circuit opened must not re-open the circuit a
// successful probe has since closed.
func TestBreakerIgnoresStaleOutcomes(t *testing.T) {
	b, stub, clock := newTestBreaker()
	entered, release := make(chan struct{}, 3), make(chan struct{})
	stub.set(func(ctx context.Context) error {
		entered <- struct{}{}
		<-release
		return transient(ctx)
	})
	slow := make(chan error, 3)
	for range 3 {
		go func() { slow <- refresh(context.Background(), b) }()
		<-entered
	}
	trip(t, b, stub)
	clock.Advance(30 * time.Second)
	stub.set(succeed)
	if err := refresh(t.Context(), b); err != nil {
		t.Fatalf("probe: %v", err)
	}
	close(release)
	for range 3 {
		if err := <-slow; errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("slow call: %v", err)
		}
	}
	if got := b.State(); got != "closed" {
		t.Errorf("State = %q after stale failures, want closed", got)
	}
}

func TestBreakerConcurrentUse(t *testing.T) {
	b, stub, clock := newTestBreaker()
	stub.set(transient)
	var wg sync.WaitGroup
	var fastFails atomic.Int32
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if errors.Is(refresh(context.Background(), b), ErrCircuitOpen) {
					fastFails.Add(1)
				}
				clock.Advance(100 * time.Millisecond)
				_ = b.State()
			}
		})
	}
	wg.Wait()
	if fastFails.Load() == 0 {
		t.Error("no call failed fast while GitHub kept failing")
	}
	if got := stub.calls.Load() + fastFails.Load(); got != 400 {
		t.Errorf("inner calls + fast failures = %d, want 400", got)
	}
}

func TestBreakerDefaults(t *testing.T) {
	b := NewBreaker(&stubGitHub{}, BreakerConfig{})
	if b.failures != DefaultBreakerFailures || b.cooldown != DefaultBreakerCooldown || b.clock == nil {
		t.Errorf("defaults = %d, %s, %v", b.failures, b.cooldown, b.clock)
	}
	if got := b.State(); got != "closed" {
		t.Errorf("State = %q, want closed", got)
	}
}
