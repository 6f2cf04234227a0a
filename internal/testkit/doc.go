// Package testkit holds the small helpers that the tests of every flashauth
// package share: a clock the test moves by hand and a log sink that the
// server's goroutines may write to while the test reads it.
//
// It is for tests only; production code must not import it.
package testkit
