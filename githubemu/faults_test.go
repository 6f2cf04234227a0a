package githubemu

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// refreshRequest builds a refresh request for token.
func (te *testEmu) refreshRequest(t *testing.T, ctx context.Context, token string) *http.Request {
	t.Helper()
	body := te.creds("grant_type", "refresh_token", "refresh_token", token).Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, te.srv.URL+TokenPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return req
}

// wantClientTimeout sends a refresh of token with a 50ms deadline and
// requires the client to give up before any answer comes.
func (te *testEmu) wantClientTimeout(t *testing.T, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := http.DefaultClient.Do(te.refreshRequest(t, ctx, token))
	if err == nil {
		res.Body.Close()
		t.Fatalf("want a timeout, got status %d", res.StatusCode)
	}
}

func refreshParams(te *testEmu, token string) url.Values {
	return te.creds("grant_type", "refresh_token", "refresh_token", token)
}

func TestFaultsBeforeProcessing(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fault      Fault
		status     int
		ctype      string
		body       string
		retryAfter string
	}{
		{"server error default", Fault{Kind: FaultServerError}, 502, "text/html", "Unicorn", ""},
		{"server error 500 empty", Fault{Kind: FaultServerError, Status: 500}, 500, "", "", ""},
		{"server error 503", Fault{Kind: FaultServerError, Status: 503, RetryAfter: 30 * time.Second}, 503, "text/html", "503", "30"},
		{"rate limit html", Fault{Kind: FaultRateLimitHTML, RetryAfter: 1500 * time.Millisecond}, 429, "text/html", "You have exceeded a secondary rate limit", "2"},
		{"rate limit html 403", Fault{Kind: FaultRateLimitHTML, Status: 403}, 403, "text/html", "secondary rate limit", ""},
		{"rate limit json", Fault{Kind: FaultRateLimitJSON, RetryAfter: time.Minute}, 429, "application/json", `"message":"You have exceeded a secondary rate limit`, "60"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newTestEmu(t, Config{})
			_, g := te.mustGrant(t, "octocat")
			tc.fault.Count = 1
			te.InjectFault(tc.fault)
			res := te.postToken(t, "application/json", refreshParams(te, g.RefreshToken))
			if res.status != tc.status || !strings.HasPrefix(res.header.Get("Content-Type"), tc.ctype) ||
				!strings.Contains(res.body, tc.body) || res.header.Get("Retry-After") != tc.retryAfter {
				t.Fatalf("got %d %q Retry-After %q body %q", res.status, res.header.Get("Content-Type"), res.header.Get("Retry-After"), res.body)
			}
			if tc.body == "" && res.body != "" {
				t.Fatalf("body %q, want empty", res.body)
			}
			if tc.fault.Kind == FaultRateLimitJSON && res.header.Get("X-RateLimit-Remaining") != "0" {
				t.Fatalf("X-RateLimit-Remaining %q", res.header.Get("X-RateLimit-Remaining"))
			}
			// Count 1 is used up, and the fault consumed nothing.
			te.refreshJSON(t, g.RefreshToken)
		})
	}
}

func TestFaultTruncatedJSONConsumes(t *testing.T) {
	te := newTestEmu(t, Config{})
	_, g := te.mustGrant(t, "octocat")
	te.InjectFault(Fault{Kind: FaultTruncatedJSON, Count: 1})
	res := te.postToken(t, "application/json", refreshParams(te, g.RefreshToken))
	var m map[string]any
	if res.status != 200 || json.Unmarshal([]byte(res.body), &m) == nil || !strings.HasPrefix(res.body, `{"access_token":"ghu_`) {
		t.Fatalf("want 200 with cut JSON, got %d %q", res.status, res.body)
	}
	if res.header.Get("Content-Length") != strconv.Itoa(len(res.body)) {
		t.Fatalf("Content-Length %q for %d bytes", res.header.Get("Content-Length"), len(res.body))
	}
	// The refresh happened on the emulator's side: the old token is spent.
	wantOAuthError(t, te.postToken(t, "application/json", refreshParams(te, g.RefreshToken)), ErrCodeBadRefreshToken)
}

func TestFaultCloseConnectionConsumes(t *testing.T) {
	te := newTestEmu(t, Config{})
	_, g := te.mustGrant(t, "octocat")
	te.InjectFault(Fault{Kind: FaultCloseConnection, Count: 1})
	res, err := http.DefaultClient.Do(te.refreshRequest(t, context.Background(), g.RefreshToken))
	if err == nil {
		res.Body.Close()
		t.Fatalf("want a transport error, got status %d", res.StatusCode)
	}
	wantOAuthError(t, te.postToken(t, "application/json", refreshParams(te, g.RefreshToken)), ErrCodeBadRefreshToken)
}

func TestFaultHangUntilClientGivesUp(t *testing.T) {
	te := newTestEmu(t, Config{})
	_, g := te.mustGrant(t, "octocat")
	te.InjectFault(Fault{Kind: FaultHang, Count: 1})
	te.wantClientTimeout(t, g.RefreshToken)
	// The hung request was not processed.
	te.refreshJSON(t, g.RefreshToken)
}

func TestFaultHangReleasedByClose(t *testing.T) {
	te := newTestEmu(t, Config{})
	_, g := te.mustGrant(t, "octocat")
	te.InjectFault(Fault{Kind: FaultHang})
	errc := make(chan error, 1)
	go func() {
		res, err := http.DefaultClient.Do(te.refreshRequest(t, context.Background(), g.RefreshToken))
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "the request to arrive", func() bool { return te.Calls().TokenTotal == 1 })
	te.Close()
	if err := <-errc; err == nil {
		t.Fatal("want a dropped connection after Close")
	}
}

func TestFaultMatchingAndCount(t *testing.T) {
	te := newTestEmu(t, Config{})
	_, g := te.mustGrant(t, "octocat")

	// A fault on /user applies under /api/v3 too, and not to the token endpoint.
	te.InjectFault(Fault{Kind: FaultRateLimitJSON, Path: "/api/v3/user", Status: 403})
	for _, p := range []string{UserPath, "/api/v3/user", UserPath} {
		if res := te.get(t, p, g.AccessToken); res.status != 403 {
			t.Fatalf("%s: %d, want 403 until cleared", p, res.status)
		}
	}
	if res := te.get(t, EmailsPath, g.AccessToken); res.status != 200 {
		t.Fatalf("emails: %d", res.status)
	}
	te.ClearFaults()
	if res := te.get(t, UserPath, g.AccessToken); res.status != 200 {
		t.Fatalf("after ClearFaults: %d", res.status)
	}

	// Count 2 applies twice; "*" matches every path.
	te.InjectFault(Fault{Kind: FaultServerError, Path: "*", Count: 2, Status: 503})
	statuses := []int{te.get(t, EmailsPath, g.AccessToken).status, te.get(t, UserPath, g.AccessToken).status, te.get(t, UserPath, g.AccessToken).status}
	if statuses[0] != 503 || statuses[1] != 503 || statuses[2] != 200 {
		t.Fatalf("statuses %v, want [503 503 200]", statuses)
	}
	// Faulted requests are counted.
	if c := te.Calls(); c.User != 6 || c.Emails != 2 {
		t.Fatalf("calls = %+v", c)
	}
}

func TestLatencyHonorsCancellation(t *testing.T) {
	te := newTestEmu(t, Config{})
	_, g := te.mustGrant(t, "octocat")
	te.SetLatency(time.Hour)
	te.wantClientTimeout(t, g.RefreshToken)
	te.SetLatency(time.Millisecond)
	// The abandoned request was dropped unprocessed (were it still waiting,
	// the server's Close in cleanup would block for an hour).
	te.refreshJSON(t, g.RefreshToken)
	// The control API is exempt from latency.
	te.SetLatency(time.Hour)
	if res := te.get(t, "/_emulator/calls", ""); res.status != 200 {
		t.Fatalf("control API under latency: %d", res.status)
	}
}

func TestFaultKindText(t *testing.T) {
	for k := range faultNames {
		b, err := k.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got FaultKind
		if err := got.UnmarshalText(b); err != nil || got != k {
			t.Fatalf("%s round trip: %v %v", b, got, err)
		}
	}
	var k FaultKind
	if err := k.UnmarshalText([]byte("meltdown")); err == nil {
		t.Fatal("unknown kind accepted")
	}
}
