package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashbacktech/flashauth/refresh"
)

// gatedRefresher holds every refresh until release is closed, announcing
// each on entered, and counts them.
type gatedRefresher struct {
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int32
}

func (g *gatedRefresher) Refresh(context.Context, string, refresh.Caller) (refresh.Result, error) {
	g.calls.Add(1)
	g.entered <- struct{}{}
	<-g.release
	return refresh.Result{Token: refresh.Token{AccessToken: "ghu_new", RefreshToken: "ghr_new", TokenType: "bearer",
		ExpiresIn: 28800, ExpiresAt: time.UnixMilli(1764148800000)}}, nil
}

// With MaxRefreshes 2, a third refresh waits for a turn instead of running
// (counted in flashauth_refreshes_waiting); one whose client leaves while
// waiting never runs, and is answered nothing; the ones admitted are
// answered as usual. Without a bound all three run at once.
func TestMaxRefreshesAdmission(t *testing.T) {
	body := `{"refresh_token":"ghr_` + strings.Repeat("a", 76) + `"}`
	post := func(h http.Handler, ctx context.Context) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "http://flashauth.test/auth/github/refresh", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s", what)
			}
		}
	}

	g := &gatedRefresher{entered: make(chan struct{}, 3), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	h := NewServer(Config{Refresh: g, Sessions: bearerSessions{}, Registry: reg, MaxRefreshes: 2})
	waiting := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "flashauth_refreshes_waiting" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Go(func() { codes[i] = post(h, context.Background()).Code })
	}
	<-g.entered
	<-g.entered
	ctx, leave := context.WithCancel(context.Background())
	third := make(chan *httptest.ResponseRecorder)
	go func() { third <- post(h, ctx) }()
	waitFor("the third refresh waits", func() bool { return waiting() == 1 })
	leave()
	w := <-third
	if n := g.calls.Load(); n != 2 {
		t.Errorf("%d refreshes ran, want 2: the third's client left while it waited", n)
	}
	if w.Body.Len() != 0 {
		t.Errorf("a request whose client left was answered %d %s", w.Code, w.Body)
	}
	if got := waiting(); got != 0 {
		t.Errorf("flashauth_refreshes_waiting = %v after the wait ended, want 0", got)
	}
	close(g.release)
	wg.Wait()
	for _, c := range codes {
		if c != http.StatusOK {
			t.Errorf("an admitted refresh got %d, want 200", c)
		}
	}

	// A turn given back admits the next waiter: a refresh after the others
	// runs.
	g.entered = make(chan struct{}, 1)
	if w := post(h, context.Background()); w.Code != http.StatusOK {
		t.Errorf("a later refresh got %d, want 200", w.Code)
	}

	// No bound: three at once.
	g = &gatedRefresher{entered: make(chan struct{}, 3), release: make(chan struct{})}
	h = NewServer(Config{Refresh: g, Sessions: bearerSessions{}})
	for range 3 {
		wg.Go(func() { post(h, context.Background()) })
	}
	for range 3 {
		<-g.entered
	}
	close(g.release)
	wg.Wait()
}
