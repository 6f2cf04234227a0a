package github

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
)

// hangingClient returns a Client whose server reads each request, reports
// its arrival on arrived (when not nil) and never answers: it waits for the
// client to go away or for the test to end.
func hangingClient(t *testing.T, arrived chan<- struct{}, mutate ...func(*Config)) *Client {
	t.Helper()
	release := make(chan struct{})
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if arrived != nil {
			arrived <- struct{}{}
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}), mutate...)
	t.Cleanup(func() { close(release) }) // before the server's Close, which waits for handlers
	return c
}

// everyCall runs each of the client's four calls.
func everyCall(c *Client) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		opRefresh: func(ctx context.Context) error { _, err := c.RefreshToken(ctx, testRefresh); return err },
		opExchange: func(ctx context.Context) error {
			_, err := c.ExchangeCode(ctx, flashauth.CodeExchange{Code: testCode})
			return err
		},
		opUser:   func(ctx context.Context) error { _, err := c.User(ctx, testAccess); return err },
		opEmails: func(ctx context.Context) error { _, err := c.Emails(ctx, testAccess); return err },
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	c := hangingClient(t, nil, func(cfg *Config) { cfg.Timeout = 200 * time.Millisecond })
	for op, call := range everyCall(c) {
		t.Run(op, func(t *testing.T) {
			err := call(t.Context())
			wantUpstream(t, err, flashauth.UpstreamTransient, op)
			if !errors.Is(err, ErrTimeout) {
				t.Errorf("err = %v, want ErrTimeout", err)
			}
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v looks like the caller's own context ended", err)
			}
		})
	}
}

func TestCallerCancellation(t *testing.T) {
	arrived := make(chan struct{}, 1)
	c := hangingClient(t, arrived)
	for op, call := range everyCall(c) {
		t.Run(op, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				<-arrived
				cancel()
			}()
			err := call(ctx)
			wantUpstream(t, err, flashauth.UpstreamTransient, op)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		})
	}
}

func TestCallerDeadline(t *testing.T) {
	c := hangingClient(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.RefreshToken(ctx, testRefresh)
	wantUpstream(t, err, flashauth.UpstreamTransient, opRefresh)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		t.Errorf("err = %v, want the caller's context.DeadlineExceeded", err)
	}
}

func TestCancelledBeforeTheCallSendsNothing(t *testing.T) {
	var calls, dials atomic.Int32
	c, _ := newTestClient(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }),
		func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: countingTransport(&dials, 0)} })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.RefreshToken(ctx, testRefresh)
	wantUpstream(t, err, flashauth.UpstreamTransient, opRefresh)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if calls.Load() != 0 || dials.Load() > 1 {
		t.Errorf("calls, dials = %d, %d; want 0 calls and no retry", calls.Load(), dials.Load())
	}
}

// TestNoRetryOnceWritten: a connection cut after GitHub read the request
// may have spent the refresh token or code, so it must not be sent again,
// neither by the client nor by net/http, on a fresh or a reused connection.
func TestNoRetryOnceWritten(t *testing.T) {
	ok := `{"access_token":"` + newAccess + `","token_type":"bearer"}`
	for _, warm := range []bool{false, true} {
		name := map[bool]string{false: "fresh connection", true: "reused connection"}[warm]
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int32
			c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := calls.Add(1)
				_, _ = io.Copy(io.Discard, r.Body)
				if warm && n == 1 {
					_, _ = io.WriteString(w, ok)
					return
				}
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Errorf("hijack: %v", err)
					return
				}
				conn.Close()
			}))
			want := int32(1)
			if warm {
				if _, err := c.RefreshToken(t.Context(), "ghr_warmup"); err != nil {
					t.Fatalf("warm-up: %v", err)
				}
				want = 2
			}
			for op, call := range map[string]func() error{
				opRefresh: func() error { _, err := c.RefreshToken(t.Context(), testRefresh); return err },
				opExchange: func() error {
					_, err := c.ExchangeCode(t.Context(), flashauth.CodeExchange{Code: testCode})
					return err
				},
			} {
				err := call()
				wantUpstream(t, err, flashauth.UpstreamTransient, op)
				if got := calls.Load(); got != want {
					t.Fatalf("%s: server saw %d requests in all, want %d: the request was re-sent", op, got, want)
				}
				want++
			}
		})
	}
}

// countingTransport dials normally, except that the first failFirst dials
// fail as if the connection were refused.
func countingTransport(dials *atomic.Int32, failFirst int32) *http.Transport {
	var d net.Dialer
	return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) <= failFirst {
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		return d.DialContext(ctx, network, addr)
	}}
}

func TestRetryOnlyWhenNothingWasSent(t *testing.T) {
	ok := `{"access_token":"` + newAccess + `","token_type":"bearer"}`
	tests := []struct {
		name      string
		failFirst int32
		wantErr   bool
		wantDials int32
		wantCalls int32
	}{
		{name: "first dial fails, one retry succeeds", failFirst: 1, wantDials: 2, wantCalls: 1},
		{name: "both dials fail, no third attempt", failFirst: 2, wantErr: true, wantDials: 2, wantCalls: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls, dials atomic.Int32
			c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				_, _ = io.WriteString(w, ok)
			}), func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: countingTransport(&dials, tt.failFirst)} })
			tok, err := c.RefreshToken(t.Context(), testRefresh)
			if tt.wantErr {
				wantUpstream(t, err, flashauth.UpstreamTransient, opRefresh)
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("err = %v, want ECONNREFUSED in the chain", err)
				}
			} else if err != nil || tok.AccessToken != newAccess {
				t.Fatalf("RefreshToken = %+v, %v; want success", tok, err)
			}
			if dials.Load() != tt.wantDials || calls.Load() != tt.wantCalls {
				t.Errorf("dials, calls = %d, %d; want %d, %d", dials.Load(), calls.Load(), tt.wantDials, tt.wantCalls)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := New(Config{ClientID: testClientID, ClientSecret: testClientSecret, BaseURL: "http://" + addr, APIURL: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	for op, call := range everyCall(c) {
		err := call(t.Context())
		wantUpstream(t, err, flashauth.UpstreamTransient, op)
		var opErr *net.OpError
		if !errors.As(err, &opErr) {
			t.Errorf("%s: err = %v, want a *net.OpError in the chain", op, err)
		}
	}
}

func TestNetErrorDoesNotQuoteTheWire(t *testing.T) {
	// A server that answers garbage instead of HTTP: net/http's error
	// quotes the status line, which is upstream content.
	var calls atomic.Int32
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			calls.Add(1)
			_, _ = io.WriteString(conn, "SSH-2.0 "+newRefresh+"\r\n\r\n")
			conn.Close()
		}
	}()
	c, err := New(Config{ClientID: testClientID, ClientSecret: testClientSecret, BaseURL: "http://" + l.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.hc.CloseIdleConnections)
	_, err = c.RefreshToken(t.Context(), testRefresh)
	wantUpstream(t, err, flashauth.UpstreamTransient, opRefresh)
	if n := calls.Load(); n != 1 {
		t.Errorf("server accepted %d connections, want 1", n)
	}
}
