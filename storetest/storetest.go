// Package storetest is the conformance suite of flashauth.Store: every store
// implementation (sqlite, postgres) runs it from its own tests, so they all
// keep the contract documented in the root package the same way. It uses the
// flashauth.Store interface only.
//
// Times are explicit: the suite passes a fixed base time and its offsets to
// the store and never depends on the wall clock.
package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth"
)

// Run runs the whole conformance suite. open returns a fresh, empty store
// for each subtest; the caller registers its Close with t.Cleanup.
// Subtests run sequentially, so open may reuse one database server.
func Run(t *testing.T, open func(t *testing.T) flashauth.Store) {
	groups := []struct {
		name string
		run  func(*testing.T, func(*testing.T) flashauth.Store)
	}{
		{"Ledger", testLedger},
		{"LedgerConcurrency", testLedgerConcurrency},
		{"Lineage", testLineage},
		{"LineageLedger", testLineageLedger},
		{"Users", testUsers},
		{"Sessions", testSessions},
		{"CommitLedger", testCommitLedger},
		{"CommitLedgerConcurrency", testCommitLedgerConcurrency},
		{"SessionLedger", testSessionLedger},
		{"Keys", testKeys},
		{"OAuthStates", testStates},
		{"Audit", testAudit},
		{"AppendAudits", testAppendAudits},
		{"AuditQuery", testAuditQuery},
		{"PurgeAudit", testPurgeAudit},
		{"Times", testTimes},
		{"NotFound", testNotFound},
		{"Ping", testPing},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.run(t, open) })
	}
}

// base is the suite's "now". Offsets from it stand for later instants.
var base = time.UnixMilli(1764120000000).UTC()

// at returns base + d.
func at(d time.Duration) time.Time { return base.Add(d) }

// cmpOpts compares DeviceInfo as JSON values, so a store may normalise the
// text (e.g. PostgreSQL jsonb) as long as the meaning is kept. time.Time
// values are compared with their Equal method by cmp itself.
var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b json.RawMessage) bool {
		if len(a) == 0 || len(b) == 0 {
			return len(a) == len(b)
		}
		var va, vb any
		if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
			return bytes.Equal(a, b)
		}
		return reflect.DeepEqual(va, vb)
	}),
}

// diff fails the test when got differs from want.
func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, cmpOpts...); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

// must fails the test now on an unexpected error.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr fails the test unless err matches target with errors.Is.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

// fixtureUser creates a user (and its organization) so that rows referring
// to it satisfy foreign keys a store may have.
func fixtureUser(t *testing.T, st flashauth.Store, id string, githubID int64) flashauth.User {
	t.Helper()
	u := flashauth.User{
		ID: id, GitHubID: githubID, Login: "login-" + id, Email: id + "@example.com",
		Name: "Name " + id, ImageURL: "https://avatars.example.com/" + id,
		CreatedAt: base, UpdatedAt: base,
	}
	org := flashauth.Organization{ID: "org-" + id, Name: "Org " + id, CreatedAt: base}
	got, _, err := st.UpsertGitHubUser(t.Context(), u, org)
	must(t, "fixture user", err)
	return got
}
