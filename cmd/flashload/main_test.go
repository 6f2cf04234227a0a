package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/e2e/loadgen"
	"github.com/flashbacktech/flashauth/githubemu"
)

func TestRunRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"remote target", []string{"-target", "http://192.0.2.1:8080"}, "loopback"},
		{"remote emulator", []string{"-emulator", "http://example.com"}, "loopback"},
		{"bad mode", []string{"-mode", "burst"}, "mode"},
		{"zero duration", []string{"-duration", "0s"}, "duration"},
		{"huge concurrency", []string{"-concurrency", "100000"}, "concurrency"},
		{"stray argument", []string{"extra"}, "unexpected argument"},
		{"unknown flag", []string{"-rps", "5"}, "rps"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), tc.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%q) = %v, want an error mentioning %q", tc.args, err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("printed a report after an error: %q", out.String())
			}
		})
	}
}

func TestRunReportsJSON(t *testing.T) {
	emu := githubemu.New(githubemu.Config{})
	emuSrv := httptest.NewServer(emu)
	t.Cleanup(func() { emu.Close(); emuSrv.Close() })
	a, err := app.New(t.Context(), app.Config{
		DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "db"),
		ClientID:    githubemu.DefaultClientID, ClientSecret: githubemu.DefaultClientSecret,
		GitHubURL: emuSrv.URL, GitHubAPIURL: emuSrv.URL,
		UpstreamTimeout: 5 * time.Second, BreakerFailures: 1000, BreakerCooldown: time.Second,
	}, slog.New(slog.DiscardHandler), flashauth.SystemClock{})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(func() { srv.Close(); a.Close() })

	var out, errOut bytes.Buffer
	args := []string{"-target", srv.URL, "-emulator", emuSrv.URL, "-duration", "200ms",
		"-concurrency", "2", "-mode", "mixed", "-json"}
	if err := run(t.Context(), args, &out, &errOut); err != nil {
		t.Fatalf("run: %v (%s)", err, errOut.String())
	}
	var rep loadgen.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v: %q", err, out.String())
	}
	if rep.Mode != loadgen.ModeMixed || rep.Requests == 0 || rep.Statuses["200"] != rep.Requests || rep.Upstream < 1 {
		t.Fatalf("report: %+v", rep)
	}
}
