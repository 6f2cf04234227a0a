package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/flashbacktech/flashauth/internal/loadgen"
	"github.com/flashbacktech/flashauth/internal/loadgen/loadgentest"
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
	target, emuURL, _ := loadgentest.Serve(t)
	var out, errOut bytes.Buffer
	args := []string{"-target", target, "-emulator", emuURL, "-duration", "200ms",
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
