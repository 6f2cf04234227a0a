// Package e2e tests flashauth as operators run it: real `flashauth serve`
// processes, several replicas sharing one PostgreSQL database (or one SQLite
// file), one GitHub emulator, and faults injected from outside (SIGKILL, a
// TCP proxy that cuts the database's connections).
//
// The package holds only tests and their helpers. PostgreSQL tests need
// FLASHAUTH_TEST_POSTGRES_URL (see postgres/pgtest) and skip without it. The
// flashauth binary is built once per test run. Its benchmarks drive the
// replicas with internal/loadgen, the engine of cmd/flashload.
package e2e
