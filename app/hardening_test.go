package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/app/apptest"
	"github.com/flashbacktech/flashauth/githubemu"
)

// The hardening tests of issue 5: abuse, upstream faults, store failure,
// slow clients, CORS, TLS and a final scan for secrets. Every one runs the
// whole flashauth (real SQLite, real GitHub client) against the emulator.

// The per-token limit stops one token from hammering GitHub while its
// attempts fail, leaves other tokens alone, and recovers. Replays of a
// committed answer (here a rejection) cost GitHub nothing and never spend
// it.
func TestTokenLimitTripsAndRecovers(t *testing.T) {
	// 6 a minute: one every 10 s, bursts of 5.
	h := apptest.NewSpied(t, func(c *app.Config) { c.RateTokenPerMin = 6 })
	bad := "ghr_" + strings.Repeat("Z", 76)
	h.See(bad)
	for range 20 {
		apptest.WantError(t, h.Refresh(bad), http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)
	}
	apptest.WantRefreshes(t, h, 1) // the rejection is replayed

	// GitHub failing: every retry of g is an attempt of its own.
	g := h.Grant()
	h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Status: http.StatusBadGateway}) // until cleared
	for range 5 {
		apptest.WantError(t, h.Refresh(g.RefreshToken), http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	}
	r := h.Refresh(g.RefreshToken)
	apptest.WantError(t, r, http.StatusTooManyRequests, flashauth.CodeRateLimited)
	apptest.WantRetryAfter(t, r, "10")
	apptest.WantRefreshes(t, h, 6)
	h.Emu.ClearFaults()
	apptest.NewToken(t, h.Refresh(h.Grant().RefreshToken)) // another token has its own bucket
	apptest.WantError(t, h.Refresh(g.RefreshToken), http.StatusTooManyRequests, flashauth.CodeRateLimited)
	h.Clock.Advance(10 * time.Second)
	apptest.NewToken(t, h.Refresh(g.RefreshToken))
	apptest.WantRefreshes(t, h, 8)
}

func TestBreakerOpensFailsFastHalfOpensCloses(t *testing.T) {
	h := apptest.NewSpied(t, func(c *app.Config) {
		c.BreakerFailures = 3
		c.BreakerCooldown = 10 * time.Second
	})
	g := h.Grant()
	h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Status: http.StatusBadGateway}) // until cleared
	for i := range 3 {
		apptest.WantError(t, h.Refresh(g.RefreshToken), http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
		apptest.WantRefreshes(t, h, int64(i+1))
	}

	// Open: fail fast, GitHub is not called, Retry-After counts down.
	r := h.Refresh(g.RefreshToken)
	apptest.WantError(t, r, http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	apptest.WantRetryAfter(t, r, "10")
	h.Clock.Advance(4 * time.Second)
	apptest.WantRetryAfter(t, h.Refresh(g.RefreshToken), "6")
	apptest.WantRefreshes(t, h, 3)

	// Half-open after the cooldown: one probe reaches GitHub; it fails, so
	// the circuit opens again for a whole cooldown.
	h.Clock.Advance(6 * time.Second)
	apptest.WantError(t, h.Refresh(g.RefreshToken), http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	apptest.WantRefreshes(t, h, 4)
	r = h.Refresh(g.RefreshToken)
	apptest.WantError(t, r, http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	apptest.WantRetryAfter(t, r, "10")
	apptest.WantRefreshes(t, h, 4)

	// GitHub recovers: the next probe succeeds and closes the circuit. The
	// token survived every failure, since none of them consumed it.
	h.Emu.ClearFaults()
	h.Clock.Advance(10 * time.Second)
	rt := apptest.NewToken(t, h.Refresh(g.RefreshToken))
	apptest.WantRefreshes(t, h, 5)
	apptest.NewToken(t, h.Refresh(rt))
	apptest.WantRefreshes(t, h, 6)
}

// serveOnLoopback runs h's app with a real http.Server (app.Serve, with cfg's
// timeouts and TLS) on a loopback port and returns its address.
func serveOnLoopback(t *testing.T, h *apptest.Harness, cfg app.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.App.Serve(ctx, ln, cfg) }()
	t.Cleanup(func() { // before the harness closes the app
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// postToken posts a refresh of token to base with client, outside the
// harness's httptest server.
func postToken(t *testing.T, h *apptest.Harness, client *http.Client, base, token string) apptest.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/auth/github/refresh", strings.NewReader(`{"refresh_token":"`+token+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	r, err := apptest.Send(client, req)
	if err != nil {
		t.Fatalf("POST %s: %v", base, err)
	}
	h.SeeJSON(r.Body)
	return r
}

// dripResult is how a slow client's connection ended.
type dripResult struct {
	answer   string // what the server sent before hanging up
	readErr  error  // nil (EOF) or a reset when the server hung up
	finished bool   // every slow byte was sent before that: the server waited
}

// drip connects to addr, sends head at once, then slow one byte every 25 ms,
// and reads until the server hangs up (or 10 s pass).
func drip(t *testing.T, addr, head, slow string) <-chan dripResult {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wrote := make(chan bool, 1)
	go func() {
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(slow); i++ {
			select {
			case <-stop:
				wrote <- false
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte{slow[i]}); err != nil {
				wrote <- false
				return
			}
		}
		wrote <- true
	}()
	out := make(chan dripResult, 1)
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(conn)
		close(stop)
		out <- dripResult{answer: string(b), readErr: err, finished: <-wrote}
	}()
	return out
}

// Slowloris: clients that send their headers or their body a byte at a time
// are cut off by the server's timeouts, while a normal client is served.
func TestSlowClientsCutOff(t *testing.T) {
	h := apptest.New(t, func(c *app.Config) {
		c.ReadHeaderTimeout = 300 * time.Millisecond
		c.ReadTimeout = 300 * time.Millisecond
	})
	addr := serveOnLoopback(t, h, h.Cfg)
	slow := strings.Repeat("a", 200) // 5 s at 25 ms a byte
	var slowHeaders, slowBodies []<-chan dripResult
	for range 4 {
		slowHeaders = append(slowHeaders, drip(t, addr,
			"GET /healthz HTTP/1.1\r\nHost: flashauth\r\nX-Slow: ", slow))
		slowBodies = append(slowBodies, drip(t, addr,
			"POST /auth/github/refresh HTTP/1.1\r\nHost: flashauth\r\nContent-Type: application/json\r\n"+
				"Content-Length: "+strconv.Itoa(len(slow))+"\r\n\r\n", slow))
	}

	// Meanwhile a normal client refreshes a chain of tokens.
	client := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	tok := h.Grant().RefreshToken
	for range 3 {
		tok = apptest.NewToken(t, postToken(t, h, client, "http://"+addr, tok))
	}

	check := func(kind string, chans []<-chan dripResult) {
		t.Helper()
		for i, c := range chans {
			res := <-c
			if errors.Is(res.readErr, os.ErrDeadlineExceeded) || res.finished {
				t.Errorf("%s client %d was not cut off (read: %v, sent everything: %v)", kind, i, res.readErr, res.finished)
			}
			if strings.HasPrefix(res.answer, "HTTP/1.1 2") {
				t.Errorf("%s client %d was served: %.40q", kind, i, res.answer)
			}
		}
	}
	check("slow-header", slowHeaders)
	check("slow-body", slowBodies)
	apptest.WantRefreshes(t, h, 3)
}

// writeSelfSignedCert writes a certificate for 127.0.0.1 and its key to
// files and returns them with a pool that trusts the certificate.
func writeSelfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "flashauth test"},
		NotBefore:             time.Now().Add(-time.Hour), // TLS checks wall time
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestRefreshOverTLS(t *testing.T) {
	h := apptest.New(t)
	certFile, keyFile, pool := writeSelfSignedCert(t)
	cfg := h.Cfg
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	addr := serveOnLoopback(t, h, cfg)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	t.Cleanup(client.CloseIdleConnections)
	g := h.Grant()
	r := postToken(t, h, client, "https://"+addr, g.RefreshToken)
	rt := apptest.NewToken(t, r)
	if r.TLS == nil || !r.TLS.HandshakeComplete {
		t.Fatalf("answer did not come over TLS")
	}
	apptest.CheckSecurityHeaders(t, "refresh over TLS", r.Header, true)
	apptest.WantNoStore(t, "refresh over TLS", r)
	apptest.NewToken(t, postToken(t, h, client, "https://"+addr, rt))
	apptest.WantRefreshes(t, h, 2)

	// Plain HTTP on the TLS port gets nowhere near a token.
	plain := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(plain.CloseIdleConnections)
	if resp, err := plain.Post("http://"+addr+"/auth/github/refresh", "application/json",
		strings.NewReader(`{"refresh_token":"`+rt+`"}`)); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to the TLS port answered 200")
		}
	}
	apptest.WantRefreshes(t, h, 2)
}
