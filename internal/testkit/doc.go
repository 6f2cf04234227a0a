// Package testkit holds the small helpers that the tests of every flashauth
// package share: a clock the test moves by hand, a log sink that the
// server's goroutines may write to while the test reads it, WantCode for
// domain errors and RandomHex for names no other run uses.
//
// It imports only the root package, so the tests of any package (in-package
// tests included) can use it without an import cycle. The whole-flashauth
// harness, which imports app, is app/apptest.
//
// It is for tests only; production code must not import it.
package testkit
