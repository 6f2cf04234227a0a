// Package testhook holds the few seams that crash tests need inside
// production code paths. It is internal, so no user of flashauth's packages
// can reach it, and each hook is nil (a no-op) unless a test of this module
// sets it in a process of its own.
package testhook

import "sync/atomic"

var afterLedgerCommit atomic.Pointer[func(kind string)]

// SetAfterLedgerCommit installs f to run after every ledger commit, before
// the answer is returned (a crash test kills the process there); nil removes
// it.
func SetAfterLedgerCommit(f func(kind string)) {
	if f == nil {
		afterLedgerCommit.Store(nil)
		return
	}
	afterLedgerCommit.Store(&f)
}

// AfterLedgerCommit runs the installed hook, if any.
func AfterLedgerCommit(kind string) {
	if f := afterLedgerCommit.Load(); f != nil {
		(*f)(kind)
	}
}
