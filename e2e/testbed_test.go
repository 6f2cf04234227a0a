package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/internal/testkit"
)

// requestTimeout bounds every request a test sends: far above any lease or
// upstream timeout the tests configure, so reaching it means a hang.
const requestTimeout = 30 * time.Second

// testbed is one upstream, the replicas started against it, and every
// secret the test saw; when the test ends the replicas are killed and their
// logs are searched for those secrets.
type testbed struct {
	tb     testing.TB
	up     *upstream
	client *http.Client

	mu       sync.Mutex
	replicas []*replica
	secrets  []string
}

func newTestbed(tb testing.TB) *testbed {
	tb.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 128
	b := &testbed{tb: tb, up: newUpstream(tb), client: &http.Client{Transport: tr}}
	b.see(clientSecret)
	// Registered first, so it runs last: after every replica is dead and
	// its logs are complete.
	tb.Cleanup(b.checkNoSecrets)
	tb.Cleanup(tr.CloseIdleConnections)
	return b
}

// env is the environment of a replica on databaseURL; kv overrides it.
func (b *testbed) env(databaseURL string, kv ...string) map[string]string {
	key := testkit.RandomHex(b.tb, 24)
	b.see(key)
	env := map[string]string{
		"FLASHAUTH_ADDR":             "127.0.0.1:0",
		"FLASHAUTH_DATABASE_URL":     databaseURL,
		"GITHUB_CLIENT_ID":           clientID,
		"GITHUB_CLIENT_SECRET":       clientSecret,
		"GITHUB_URL":                 b.up.URL,
		"GITHUB_API_URL":             b.up.URL,
		"FLASHAUTH_UPSTREAM_TIMEOUT": "5s",
		"FLASHAUTH_REPLAY_WINDOW":    "60s",
		// The tests hammer single tokens from one IP on purpose.
		"FLASHAUTH_RATE_IP":          "0",
		"FLASHAUTH_RATE_TOKEN":       "0",
		"FLASHAUTH_RATE_USER":        "0",
		"FLASHAUTH_BREAKER_FAILURES": "1000",
		"FLASHAUTH_SHUTDOWN_TIMEOUT": "5s",
		"FLASHAUTH_LOG_FORMAT":       "json",
		"FLASHAUTH_LOG_LEVEL":        "info",
		"FLASHAUTH_SECRET_KEY":       key,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

// start launches n replicas at once with env and waits until each listens.
func (b *testbed) start(n int, env map[string]string) []*replica {
	b.tb.Helper()
	rs := make([]*replica, n)
	for i := range rs {
		rs[i] = launch(b.tb, fmt.Sprintf("replica %c", 'A'+i), maps.Clone(env))
	}
	for _, r := range rs {
		r.waitListening(b.tb)
	}
	b.mu.Lock()
	b.replicas = append(b.replicas, rs...)
	b.mu.Unlock()
	return rs
}

// grant mints a fresh GitHub refresh token.
func (b *testbed) grant() string {
	b.tb.Helper()
	t := b.up.grant(b.tb)
	b.see(t)
	return t
}

// answer is one HTTP answer of flashauth.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// field returns a string field of the JSON body, or "".
func (a answer) field(name string) string {
	var m map[string]any
	_ = json.Unmarshal(a.Body, &m)
	s, _ := m[name].(string)
	return s
}

func (a answer) String() string {
	return fmt.Sprintf("%d %s", a.Status, a.field("error_code"))
}

// refresh posts token to base's refresh endpoint. A transport error is
// returned, not fatal: some tests expect one.
func (b *testbed) refresh(base, token string) (answer, error) {
	body, _ := json.Marshal(map[string]string{"refresh_token": token})
	a, err := b.do(http.MethodPost, base+"/auth/github/refresh", body)
	if err == nil && a.Status == http.StatusOK {
		b.see(a.field("accessToken"), a.field("refreshToken"))
	}
	return a, err
}

// mustRefresh is refresh for requests that must get an HTTP answer.
func (b *testbed) mustRefresh(base, token string) answer {
	b.tb.Helper()
	a, err := b.refresh(base, token)
	if err != nil {
		b.tb.Fatalf("refresh at %s: %v", base, err)
	}
	return a
}

// readyz asks base whether it is ready.
func (b *testbed) readyz(base string) (answer, error) {
	return b.do(http.MethodGet, base+"/readyz", nil)
}

func (b *testbed) do(method, url string, body []byte) (answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: rb}, nil
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// see records secrets that must never appear in a replica's logs.
func (b *testbed) see(secrets ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range secrets {
		if s != "" {
			b.secrets = append(b.secrets, s)
		}
	}
}

func (b *testbed) checkNoSecrets() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.replicas {
		logs := r.logs.String()
		// Also what the test never saw (a token minted by another replica).
		testkit.NoTokenShaped(b.tb, "the logs of "+r.name, logs)
		for _, s := range b.secrets {
			if strings.Contains(logs, s) {
				b.tb.Errorf("a secret (%d chars, prefix %.4s) appears in the logs of %s", len(s), s, r.name)
			}
		}
	}
}
