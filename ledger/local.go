package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/testhook"
)

// maxLocalRuns bounds how often a Local operation runs in one attempt. It
// runs again only when its writes no longer applied (another process
// rotated or revoked first); the second run sees that and decides a
// rejection, which has no writes that could stop applying.
const maxLocalRuns = 3

// local is the attempt at a Call.Local operation, on the leader's
// goroutine: the replay lookup (seen, when the caller read the entry), then
// BeforeClaim, the operation and its commit - the verdict sealed and
// stored together with the operation's writes, in one transaction
// (CommitLedger), or nothing.
//
// No claim is written first: a claim exists to keep a second caller from
// repeating a call to someone outside the store, and a local operation
// makes none. Concurrent callers in this process have joined this attempt
// (do). Callers in other processes each run the operation, and their
// commits exclude each other in the store: the first commits; the others
// find its live entry (their writes are not applied) and replay it, as a
// claim would have had them do. A live pending entry is a claim by a
// process that still claims first (an older version, during a rolling
// upgrade): it is waited for as Replay waits.
func (l *Ledger) local(ctx context.Context, kind, secret string, key []byte, seen *flashauth.LedgerEntry, window time.Duration, op Op) (Result, error) {
	var e flashauth.LedgerEntry
	if seen != nil {
		e = *seen
	} else {
		var err error
		if e, err = l.store.GetLedger(ctx, kind, key); err != nil && !errors.Is(err, flashauth.ErrNotFound) {
			return Result{}, fmt.Errorf("ledger get: %w", err)
		}
	}
	for runs := 0; ; runs++ {
		now := l.opt.Clock.Now()
		switch {
		case e.State == flashauth.LedgerDone && e.ExpiresAt.After(now):
			return l.open(kind, secret, key, e)
		case e.State == flashauth.LedgerPending && e.LeaseUntil.After(now):
			if res, ok, err := l.await(ctx, kind, secret, key); err != nil || ok {
				return res, err
			}
		}
		switch {
		case runs == maxLocalRuns:
			return Result{}, errors.New("ledger: the operation's writes kept conflicting")
		case runs == 0 && l.opt.BeforeClaim != nil:
			if err := l.opt.BeforeClaim(ctx, kind, key); err != nil {
				return Result{}, err
			}
		}
		out, err := l.call(ctx, kind, time.Now().Add(l.lease(kind)), op)
		if err != nil {
			return Result{}, err
		}
		if out.Lineage != nil {
			return Result{}, errors.New("ledger: a Local call commits no lineage")
		}
		sealed, err := l.keys.Seal([]byte(secret), sealInfo(kind), out.Payload, key)
		if err != nil {
			return Result{}, err
		}
		id, err := newClaimID()
		if err != nil {
			return Result{}, err
		}
		now = l.opt.Clock.Now()
		var committed bool
		e, committed, err = l.store.CommitLedger(ctx, kind, key, id, sealed, now, now.Add(window), out.Rotation)
		switch {
		case errors.Is(err, flashauth.ErrConflict):
			// The writes no longer apply, and no outcome is committed:
			// nothing was written, and the operation runs again on what
			// the store holds now.
			e = flashauth.LedgerEntry{}
		case err != nil:
			return Result{}, fmt.Errorf("ledger commit: %w", err)
		case committed:
			testhook.AfterLedgerCommit(kind)
			return Result{Payload: out.Payload, verdict: out.verdict}, nil
		}
		// Not committed: e is the live entry that stopped it, replayed or
		// waited for above.
	}
}
