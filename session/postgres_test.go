package session_test

import (
	"testing"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/postgres/pgtest"
)

// The tests where replicas meet, again on PostgreSQL: key rotation by
// several replicas at once makes one generation, a token signed on one
// replica verifies on the others, and session refresh rotation stays
// exactly-once across replicas. They skip without FLASHAUTH_TEST_POSTGRES_URL.
func TestReplicasOnPostgres(t *testing.T) {
	pgtest.BaseURL(t) // skips without a server
	prev := openStore
	openStore = func(tb testing.TB) flashauth.Store { return pgtest.Open(tb) }
	t.Cleanup(func() { openStore = prev })
	for name, test := range map[string]func(*testing.T){
		"ConcurrentRotationMakesOneGeneration":    TestConcurrentRotationMakesOneGeneration,
		"ReplicaVerifiesKeyRotatedElsewhere":      TestReplicaVerifiesKeyRotatedElsewhere,
		"RefreshConcurrentCallersGetOneAnswer":    TestRefreshConcurrentCallersGetOneAnswer,
		"RefreshReplicasRacingOneTokenCommitOnce": TestRefreshReplicasRacingOneTokenCommitOnce,
		"RefreshIsOneReadAndOneWrite":             TestRefreshIsOneReadAndOneWrite,
		"RefreshReuseAfterIntervalRevokesFamily":  TestRefreshReuseAfterIntervalRevokesFamily,
		"Logout":                                  TestLogout,
	} {
		t.Run(name, test)
	}
}
