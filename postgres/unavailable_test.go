package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/postgres"
	"github.com/flashbacktech/flashauth/seal"
)

// callerDeadline bounds each call of these tests. The store's own timeouts
// are far shorter, so a call that reaches it has hung.
const callerDeadline = 30 * time.Second

// bounded runs fn with the caller deadline and fails the test if fn only
// returned because that deadline passed.
func bounded(t *testing.T, what string, fn func(ctx context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callerDeadline)
	defer cancel()
	err := fn(ctx)
	if ctx.Err() != nil {
		t.Fatalf("%s hung until the caller's deadline: %v", what, err)
	}
	return err
}

func TestOpenUnreachable(t *testing.T) {
	// A listener that accepts connections and never answers, like a
	// server behind a black hole.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()

	tests := []struct {
		name string
		url  string
		opts []postgres.Option
	}{
		{"refused", "postgres://postgres@127.0.0.1:1/test?sslmode=disable", nil},
		{"silent server", "postgres://postgres@" + silent.Addr().String() + "/test?sslmode=disable",
			[]postgres.Option{postgres.WithConnectTimeout(200 * time.Millisecond)}},
		{"silent server, URL timeout", "postgres://postgres@" + silent.Addr().String() + "/test?sslmode=disable&connect_timeout=1", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := bounded(t, "Open", func(ctx context.Context) error {
				db, err := postgres.Open(ctx, tc.url, tc.opts...)
				if err == nil {
					db.Close()
				}
				return err
			})
			wantUnavailable(t, "Open", err)
		})
	}
}

func TestOpenRejectsBadURL(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://user:s3cret@[::1/db")
	if err == nil {
		t.Fatal("Open accepted a malformed URL")
	}
	if code := flashauth.ErrorCode(err); code == flashauth.CodeStoreUnavailable {
		t.Errorf("malformed URL reported as %s", code)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	db := open(t, testURL(t))
	db.Close()
	err := bounded(t, "Ping", db.Ping)
	wantUnavailable(t, "Ping after Close", err)
}

func TestTerminatedConnectionsRecover(t *testing.T) {
	url := testURL(t)
	app := schemaOf(t, url)
	db := open(t, withParam(t, url, "application_name", app), postgres.WithMaxConns(4))

	// Fill the pool with several connections for the server to kill.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			_, _, err := db.ClaimLedger(t.Context(), flashauth.LedgerGitHubRefresh, seal.Hash(string(rune('a'+i))), "c", base, base.Add(time.Minute))
			if err != nil {
				t.Errorf("warm-up: %v", err)
			}
		})
	}
	wg.Wait()

	for round := range 2 {
		var killed int
		admin(t, url, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1 AND pid <> pg_backend_pid()`, []any{app}, &killed)
		if killed == 0 {
			t.Fatalf("round %d: no connection of the store to terminate", round)
		}
		// The first call may find a dead connection; it must say so quickly.
		err := bounded(t, "GetLedger during the outage", func(ctx context.Context) error {
			_, err := db.GetLedger(ctx, flashauth.LedgerGitHubRefresh, seal.Hash("a"))
			return err
		})
		t.Logf("outage call: %v", err)
		if err != nil {
			wantUnavailable(t, "GetLedger during the outage", err)
		}
		// The next calls get fresh connections.
		e, err := db.GetLedger(t.Context(), flashauth.LedgerGitHubRefresh, seal.Hash("a"))
		if err != nil || e.ClaimID != "c" {
			t.Fatalf("round %d: GetLedger after the outage: %+v, %v", round, e, err)
		}
		if err := db.Ping(t.Context()); err != nil {
			t.Fatalf("round %d: Ping after the outage: %v", round, err)
		}
	}
}

func TestStalledNetworkTimesOut(t *testing.T) {
	url := testURL(t)
	p := newProxy(t, url)
	db := open(t, p.url(t, url), postgres.WithOperationTimeout(time.Second))
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	p.stall(true)
	err := bounded(t, "Ping on a stalled network", db.Ping)
	wantUnavailable(t, "Ping on a stalled network", err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cause %v, want the store's deadline", err)
	}
	err = bounded(t, "AppendAudit on a stalled network", func(ctx context.Context) error {
		return db.AppendAudit(ctx, auditEvent("stalled"))
	})
	wantUnavailable(t, "AppendAudit on a stalled network", err)

	p.stall(false)
	// Calls made during the stall may still be finishing on the pool's
	// connections (a dial, a cancel request); a few short retries absorb
	// that on a loaded machine, and each failure must be the same clean one.
	var err2 error
	for range 5 {
		if err2 = bounded(t, "Ping after the network recovered", db.Ping); err2 == nil {
			return
		}
		wantUnavailable(t, "Ping after the network recovered", err2)
	}
	t.Fatalf("Ping after the network recovered: %v", err2)
}

func TestCutConnectionsRecover(t *testing.T) {
	url := testURL(t)
	p := newProxy(t, url)
	db := open(t, p.url(t, url), postgres.WithMaxConns(4))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := db.Ping(t.Context()); err != nil {
				t.Errorf("warm-up: %v", err)
			}
		})
	}
	wg.Wait()

	// The network drops every connection without a word from the server.
	if p.cut() == 0 {
		t.Fatal("no connection to cut")
	}
	err := bounded(t, "AppendAudit after the cut", func(ctx context.Context) error {
		return db.AppendAudit(ctx, auditEvent("after cut"))
	})
	t.Logf("call after the cut: %v", err)
	if err != nil {
		wantUnavailable(t, "AppendAudit after the cut", err)
	}
	if err := db.AppendAudit(t.Context(), auditEvent("recovered")); err != nil {
		t.Fatalf("AppendAudit after recovery: %v", err)
	}
}

func TestCallerCancellationIsNotUnavailability(t *testing.T) {
	db := open(t, testURL(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := db.Ping(ctx)
	if err == nil {
		t.Fatal("Ping with a cancelled context succeeded")
	}
	if code := flashauth.ErrorCode(err); code == flashauth.CodeStoreUnavailable {
		t.Errorf("cancelled caller reported as %s", code)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}

// proxy forwards TCP connections to the database and can stall them: while
// stalled it reads but forwards nothing, like a network path gone dark.
type proxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	cond    *sync.Cond
	stalled bool
	conns   []net.Conn
}

func newProxy(t *testing.T, rawURL string) *proxy {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: u.Host}
	p.cond = sync.NewCond(&p.mu)
	t.Cleanup(func() {
		ln.Close()
		p.stall(false)
	})
	go p.serve(t)
	return p
}

// url returns rawURL pointing at the proxy.
func (p *proxy) url(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

func (p *proxy) stall(on bool) {
	p.mu.Lock()
	p.stalled = on
	p.mu.Unlock()
	p.cond.Broadcast()
}

// cut closes every connection made so far and returns how many.
func (p *proxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	n := len(p.conns)
	p.conns = nil
	return n
}

func (p *proxy) serve(t *testing.T) {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		t.Cleanup(func() { client.Close(); server.Close() })
		go p.pipe(client, server)
		go p.pipe(server, client)
	}
}

func (p *proxy) pipe(src, dst net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		for p.stalled {
			p.cond.Wait()
		}
		p.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				src.Close()
			}
			return
		}
	}
}
