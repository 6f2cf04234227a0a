package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestNonCanonicalPathsAnswerJSON: the mux redirects paths it cleans
// (//token, /a/../token) itself, in HTML, when the clean path names a
// route. Every answer must still be the contract's JSON.
func TestNonCanonicalPathsAnswerJSON(t *testing.T) {
	h := NewServer(Config{})
	tests := []struct {
		method, target, location string
	}{
		{http.MethodGet, "//token", "/token"},
		{http.MethodGet, "/x/../token?a=1", "/token?a=1"},
		{http.MethodPost, "//user/refresh", "/user/refresh"},
		{http.MethodGet, "//no/such/route", "/no/such/route"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://flashauth.test/", nil)
			req.URL.Path, req.URL.RawQuery, _ = strings.Cut(tt.target, "?")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code < 300 || rec.Code > 399 {
				t.Fatalf("status %d, want a redirect", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if loc := rec.Header().Get("Location"); loc != tt.location {
				t.Errorf("Location %q, want %q", loc, tt.location)
			}
			var body errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Success || body.ErrorCode != "NOT_FOUND" {
				t.Errorf("body %q (%v)", rec.Body.String(), err)
			}
			if rec.Header().Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
		})
	}
}
