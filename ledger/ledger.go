// Package ledger makes an operation on a single-use secret (a GitHub refresh
// token, an authorization code, a session refresh token) happen at most once
// across every process sharing a store, and replays its outcome to anyone who
// presents the same secret within a window.
//
// The protocol: claim (kind, SHA-256(secret)) in the store -> run the
// operation -> commit the outcome, sealed under a key derived from the secret
// -> answer. Concurrent callers in one process share one attempt
// (single-flight); callers in other processes see the pending claim and poll
// until it is done or its lease runs out. An operation that calls nobody
// outside the store (Call.Local) is not claimed first: its outcome commits
// in one transaction with its own writes, and a process whose commit finds
// another's outcome there replays it.
package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/testhook"
	"github.com/flashbacktech/flashauth/seal"
)

// Outcome is what an operation decided and wants committed.
type Outcome struct {
	// Payload is sealed, committed and returned; replays return it unchanged.
	Payload []byte
	Writes
	// verdict is the value Payload encodes, when Run made it (see Copier):
	// handed to the callers that join the attempt with the payload.
	verdict any
}

// Writes are what an operation stores with its outcome, in the transaction
// that commits it.
type Writes struct {
	// Lineage is upserted (the tokens of a GitHub refresh). Not with
	// Call.Local.
	Lineage []flashauth.Lineage
	// Rotation (a session refresh's; Call.Local only) is applied if its old
	// refresh hash is still current; if it is not, nothing is written and
	// the operation runs again, on what the store holds now.
	Rotation *flashauth.SessionRotation
}

// Options configure a Ledger. Zero values take the defaults.
type Options struct {
	Clock flashauth.Clock
	// Lease bounds how long a claim blocks others when its holder dies. It
	// must exceed the longest operation (the upstream timeout); it is also
	// the operation's deadline, since past it another process may take the
	// claim over. Default 30s.
	Lease time.Duration
	// KindLease overrides Lease for some kinds (a sign-in makes several
	// upstream calls; a refresh one).
	KindLease map[string]time.Duration
	// PollInterval is the first wait between looks at another process's
	// pending claim; it doubles up to MaxPoll. Defaults 20ms and 500ms.
	PollInterval, MaxPoll time.Duration
	Logger                *slog.Logger
	// BeforeClaim, when set, runs once in the caller that is about to claim
	// a secret and run the operation: never for a replay of a committed
	// outcome, never for callers that join an attempt already in flight in
	// this process. An error from it is returned (to every caller sharing
	// the attempt) and nothing is claimed. Rate limits go here, so that they
	// charge only requests that would cause work (docs/api.md: racing callers
	// get one identical answer).
	BeforeClaim func(ctx context.Context, kind string, key []byte) error
}

// Ledger runs operations exactly once. Its zero value is not usable; use New.
type Ledger struct {
	store flashauth.LedgerStore
	opt   Options
	// keys seals and opens outcomes, keeping the ciphers of the secrets
	// sealed or opened last: a replay, which comes soon after the commit
	// if at all, opens without deriving its key again.
	keys *seal.Keys

	mu      sync.Mutex
	flights map[string]*flight // the attempts in flight, by kind and key
	// inflight counts the operations this process is running or waiting
	// on: one per secret, however many callers share it.
	inflight atomic.Int64
	// ended counts the attempts that ended in this process, by bucket of
	// their keys (see Mark). Incremented under mu, as the attempt leaves
	// flights.
	ended [markBuckets]atomic.Uint64
}

// keptKeys is how many secrets' ciphers the ledger keeps, at least (at
// most twice as many): at thousands of refreshes a second, those of the
// last tenth of a second or more - when callers race on a token, its
// replays come within milliseconds of the commit.
const keptKeys = 512

// markBuckets is how many buckets of keys Mark tells apart.
const markBuckets = 1024

// bucket is key's bucket: keys are SHA-256 digests, so any of their bits
// spread them evenly.
func bucket(key []byte) int {
	if len(key) < 2 {
		return 0
	}
	return (int(key[0])<<8 | int(key[1])) % markBuckets
}

// Mark is what this process knows about the attempts at a key at one
// instant, taken by Mark before its caller reads the key's ledger entry
// itself to hand to Run (Call.Entry). Its zero value marks nothing.
type Mark struct {
	ended  uint64
	bucket int
	ok     bool
}

// Mark returns key's mark, to be taken before the caller reads the ledger
// entry it hands to Run (Call.Entry, Call.Mark). An attempt at the key that
// was in flight in this process during that read and has ended by the time
// Run looks for one to join may have committed after the read: Run then
// reads the entry itself instead of taking the caller's, so the caller is
// replayed that outcome - as it would have joined the attempt had it
// arrived a moment earlier - and is never charged BeforeClaim for it.
// (Attempts in other processes race a read as they always do: the claim
// has the last word.)
func (l *Ledger) Mark(key []byte) Mark {
	b := bucket(key)
	return Mark{ended: l.ended[b].Load(), bucket: b, ok: true}
}

// New returns a Ledger over store.
func New(store flashauth.LedgerStore, opt Options) *Ledger {
	if opt.Clock == nil {
		opt.Clock = flashauth.SystemClock{}
	}
	if opt.Lease <= 0 {
		opt.Lease = 30 * time.Second
	}
	if opt.PollInterval <= 0 {
		opt.PollInterval = 20 * time.Millisecond
	}
	if opt.MaxPoll <= 0 {
		opt.MaxPoll = 500 * time.Millisecond
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Ledger{store: store, opt: opt, keys: seal.NewKeys(keptKeys), flights: map[string]*flight{}}
}

// flight is one attempt at (kind, key) in this process, shared by every
// caller that arrives while it runs.
type flight struct {
	done  chan struct{} // closed once res and err are set
	res   Result
	err   error
	joins int // callers that joined the attempt; guarded by Ledger.mu

	// An operation runs on a goroutine of its own (see lead). When it has
	// run, that goroutine hands its outcome to the leader, the caller that
	// started the attempt, which commits it on its own goroutine - unless
	// the leader went away first; then the goroutine commits it itself.
	// state says which happened (handoffs below).
	state   atomic.Int32
	handoff chan ran // cap 1

	bucket int // of its key, for Ledger.ended
}

// The states of a flight's handoff.
const (
	running   = iota // the operation runs; the leader waits
	handed           // the outcome was handed to the leader
	abandoned        // the leader went away: the goroutine commits
)

// ran is an operation that ran under a held claim: its outcome or error,
// not yet committed or released.
type ran struct {
	claimID string
	out     Outcome
	err     error
}

// Result is what Do returns.
type Result struct {
	Payload  []byte
	Replayed bool // the payload came from the store, not from running fn
	// Joined: this caller shared an attempt another caller in this process
	// started (single-flight); it caused no work of its own. A joined
	// caller of a replay is Replayed too.
	Joined bool
	// Lost is set (by Run; Do reports it as a *CommitError) when the
	// operation ran but its outcome could not be committed: the outcome is
	// still returned, as it may be the only copy of a spent secret's
	// successor, but a retry will not replay it.
	Lost error
	// verdict is Outcome.verdict of the operation that ran (nil for a
	// replay): Run copies it for the callers that joined (see Copier).
	verdict any
}

// InFlight returns how many operations this process is running or waiting
// on right now (one per secret, however many callers share it).
func (l *Ledger) InFlight() int64 { return l.inflight.Load() }

// Op is an operation on a secret. An error means "nothing definitive
// happened" (transient trouble): it is not committed, the claim is released
// and the next caller runs the operation again. Anything that must replay,
// including a definitive rejection, is an Outcome.
type Op func(ctx context.Context) (Outcome, error)

// Do runs op at most once for (kind, secret) across all processes sharing the
// store, and replays the committed payload to callers presenting the same
// secret until window has passed since the commit.
//
// op runs on a context detached from ctx's cancellation: a caller that goes
// away does not abort a refresh that may already have reached GitHub, and its
// outcome is still committed for the retry. Its deadline is the claim's lease.
// A panic in op is an INTERNAL_ERROR, and its claim is released.
func (l *Ledger) Do(ctx context.Context, kind, secret string, window time.Duration, op Op) (Result, error) {
	return l.do(ctx, Call{Kind: kind, Secret: secret, Window: window}, op)
}

// do is Do for the whole of c: the secret's hash when the caller already
// has it (nil: computed here), the ledger entry of (kind, key) with the
// mark taken before the caller read it (nil: the attempt reads it; see
// Call.Entry), and whether the operation is Local.
func (l *Ledger) do(ctx context.Context, c Call, op Op) (Result, error) {
	kind, secret, key, entry, mark, window := c.Kind, c.Secret, c.Hash, c.Entry, c.Mark, c.Window
	if window <= 0 {
		// A commit that is dead on arrival would let another replica run op
		// again: exactly-once needs a window.
		return Result{}, errors.New("ledger: the replay window must be positive")
	}
	if key == nil {
		key = seal.Hash(secret)
	}
	fk := kind + "\x00" + string(key)
	l.mu.Lock()
	if f, ok := l.flights[fk]; ok {
		f.joins++
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-f.done:
			return f.result(true)
		}
	}
	b := bucket(key)
	if entry != nil && (!mark.ok || mark.bucket != b || l.ended[b].Load() != mark.ended) {
		// An attempt at a key of this bucket ended since the caller's read
		// (or the read has no mark): it may have committed after the read.
		entry = nil
	}
	f := &flight{done: make(chan struct{}), handoff: make(chan ran, 1), bucket: b}
	l.flights[fk] = f
	l.mu.Unlock()
	l.inflight.Add(1)
	return l.lead(ctx, fk, f, kind, secret, key, entry, window, c.Local, op)
}

// result is f's outcome for one of its callers, once f is done.
func (f *flight) result(joined bool) (Result, error) {
	res := f.res // a CommitError comes with its payload
	if f.joins > 0 && res.Payload != nil {
		// Every caller gets its own copy of a shared payload. joins is
		// final here: the flight left the map before done was closed.
		res.Payload = append([]byte(nil), res.Payload...)
	}
	res.Joined = joined
	return res, f.err
}

// finish ends the attempt f with its outcome.
func (l *Ledger) finish(fk string, f *flight, res Result, err error) {
	l.mu.Lock()
	delete(l.flights, fk)
	l.ended[f.bucket].Add(1)
	l.mu.Unlock()
	f.res, f.err = res, err
	l.inflight.Add(-1)
	close(f.done)
}

// lead runs the attempt f for the caller that started it. Nothing of the
// attempt is cancelled by ctx (see Do): the caller may stop waiting, the
// attempt goes on.
//
// Only the operation - one upstream call, the longest step by far - runs on
// a goroutine of its own, so that the caller can go away while it runs and
// its outcome is still committed. Everything else runs on the caller's
// goroutine, whose stack the request already has: the replay lookup,
// BeforeClaim and the claim before, the commit after (unless the caller has
// gone). So the goroutine lives only as long as the upstream call: at a
// thousand concurrent refreshes, each extra goroutine is one more stack of
// 8-16 KiB, and a request waiting on the store holds none (docs/design.md).
func (l *Ledger) lead(ctx context.Context, fk string, f *flight, kind, secret string, key []byte, entry *flashauth.LedgerEntry, window time.Duration, local bool, op Op) (Result, error) {
	dctx := context.WithoutCancel(ctx)
	settled := false
	defer func() {
		if !settled {
			// A panic on the way (the store, BeforeClaim, sealing): the
			// callers that joined get an internal error, and the panic goes
			// on up the leader's own stack.
			l.finish(fk, f, Result{}, errInternal("ledger: attempt panicked"))
		}
	}()
	if local {
		// Nothing of it waits on anyone outside the store: the leader
		// stays to the end.
		res, err := l.local(dctx, kind, secret, key, entry, window, op)
		settled = true
		l.finish(fk, f, res, err)
		return f.result(false)
	}
	c, res, err := l.begin(dctx, kind, secret, key, entry)
	if c == nil {
		settled = true
		l.finish(fk, f, res, err)
		return f.result(false)
	}
	go l.operate(dctx, fk, f, kind, secret, key, c, window, op)
	var r ran
	select {
	case r = <-f.handoff:
	case <-f.done: // no operation ran: the wait for another process ended in its commit, or in an error
		settled = true
		return f.result(false)
	case <-ctx.Done():
		if f.state.CompareAndSwap(running, abandoned) {
			settled = true // the goroutine commits
			return Result{}, ctx.Err()
		}
		r = <-f.handoff // handed over just now: commit it here
	}
	res, err = l.settle(dctx, kind, secret, key, r, window)
	settled = true
	l.finish(fk, f, res, err)
	return f.result(false)
}

// operate is the goroutine of an attempt past its first claim: the wait
// for another process's claim, if any - until that commit or its lease -
// then the operation, whose outcome it hands to the leader or, if the
// leader has gone, commits itself.
func (l *Ledger) operate(ctx context.Context, fk string, f *flight, kind, secret string, key []byte, c *claim, window time.Duration, op Op) {
	wait := l.opt.PollInterval
	for !c.held {
		time.Sleep(wait)
		wait = min(2*wait, l.opt.MaxPoll)
		if res, over, err := l.tryClaim(ctx, kind, secret, key, c); over {
			l.finish(fk, f, res, err)
			return
		}
	}
	out, err := l.call(ctx, kind, c.deadline, op)
	r := ran{claimID: c.id, out: out, err: err}
	if f.state.CompareAndSwap(running, handed) {
		f.handoff <- r
		return
	}
	res, err := l.settle(ctx, kind, secret, key, r, window)
	l.finish(fk, f, res, err)
}

// claim is a claim id and, once held, the deadline of the operation it
// protects.
type claim struct {
	id       string
	held     bool // false: another process holds the key
	deadline time.Time
}

// begin is the start of an attempt: a replay of a committed outcome, or
// BeforeClaim and a first claim. A nil claim means the attempt is over with
// (res, err).
//
// A replay is the common case under retries and racing tabs: look first
// with a read, so replays do not queue behind writers - and so that
// BeforeClaim (the per-token rate limit) is never charged for one. When
// the caller has read the entry already (seen, not nil; a zero entry: none
// was there), that read is the look.
func (l *Ledger) begin(ctx context.Context, kind, secret string, key []byte, seen *flashauth.LedgerEntry) (*claim, Result, error) {
	var (
		e   flashauth.LedgerEntry
		err error
	)
	if seen != nil {
		e = *seen
	} else {
		e, err = l.store.GetLedger(ctx, kind, key)
	}
	if err == nil && e.State == flashauth.LedgerDone && e.ExpiresAt.After(l.opt.Clock.Now()) {
		res, err := l.open(kind, secret, key, e)
		return nil, res, err
	}
	if l.opt.BeforeClaim != nil {
		if err := l.opt.BeforeClaim(ctx, kind, key); err != nil {
			return nil, Result{}, err
		}
	}
	id, err := newClaimID()
	if err != nil {
		return nil, Result{}, err
	}
	c := &claim{id: id}
	if res, over, err := l.tryClaim(ctx, kind, secret, key, c); over {
		return nil, res, err
	}
	return c, Result{}, nil
}

// tryClaim tries to take c for (kind, key) once. over: the attempt is over
// with (res, err) - a committed outcome to replay, or a store error.
// Otherwise c.held says whether c is now held.
func (l *Ledger) tryClaim(ctx context.Context, kind, secret string, key []byte, c *claim) (res Result, over bool, err error) {
	now := l.opt.Clock.Now()
	lease := l.lease(kind)
	// The operation's deadline counts from before the claim is written,
	// so it never ends after the lease others see in the store.
	deadline := time.Now().Add(lease)
	entry, claimed, err := l.store.ClaimLedger(ctx, kind, key, c.id, now, now.Add(lease))
	switch {
	case err != nil:
		return Result{}, true, fmt.Errorf("ledger claim: %w", err)
	case claimed:
		c.held, c.deadline = true, deadline
		return Result{}, false, nil
	case entry.State == flashauth.LedgerDone:
		res, err := l.open(kind, secret, key, entry)
		return res, true, err
	}
	return Result{}, false, nil
}

func (l *Ledger) lease(kind string) time.Duration {
	if d, ok := l.opt.KindLease[kind]; ok && d > 0 {
		return d
	}
	return l.opt.Lease
}

func (l *Ledger) open(kind, secret string, key []byte, e flashauth.LedgerEntry) (Result, error) {
	pt, err := l.keys.Open([]byte(secret), sealInfo(kind), e.Sealed, key)
	if err != nil {
		return Result{}, fmt.Errorf("ledger open: %w", err)
	}
	return Result{Payload: pt, Replayed: true}, nil
}

// settle commits what an operation decided, or releases its claim when it
// failed (nothing definitive happened).
func (l *Ledger) settle(ctx context.Context, kind, secret string, key []byte, r ran, window time.Duration) (Result, error) {
	if r.err != nil {
		if err := l.store.ReleaseLedger(ctx, kind, key, r.claimID); err != nil {
			// The lease will free it; the op's error is what matters.
			l.opt.Logger.Warn("ledger release failed", "kind", kind, "err", err)
		}
		return Result{}, r.err
	}
	if r.out.Rotation != nil {
		if err := l.store.ReleaseLedger(ctx, kind, key, r.claimID); err != nil {
			l.opt.Logger.Warn("ledger release failed", "kind", kind, "err", err)
		}
		return Result{}, errors.New("ledger: a rotation commits only with a Local call")
	}
	sealed, err := l.keys.Seal([]byte(secret), sealInfo(kind), r.out.Payload, key)
	if err != nil {
		return Result{}, err
	}
	if err := l.commit(ctx, kind, key, r.claimID, sealed, window, r.out.Lineage); err != nil {
		// The operation happened (a single-use secret may be spent) but its
		// outcome is not stored. Returning it is the only way it is not lost;
		// a retry will not replay it.
		return Result{Payload: r.out.Payload, verdict: r.out.verdict}, &CommitError{Err: err}
	}
	testhook.AfterLedgerCommit(kind)
	return Result{Payload: r.out.Payload, verdict: r.out.verdict}, nil
}

// call runs op under the claim's lease. Past the lease another process may
// take the claim over and run the operation itself, so op must not outlive
// it: the lease is op's deadline. A panic in op becomes an error, because
// op runs on a goroutine of its own (see lead), where nothing else would
// recover it, and it would take every in-flight refresh of the process down
// with it.
func (l *Ledger) call(ctx context.Context, kind string, deadline time.Time, op Op) (out Outcome, err error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			// The panic value may hold a secret: only the stack is logged.
			l.opt.Logger.Error("ledger operation panicked", "kind", kind, "stack", string(debug.Stack()))
			out, err = Outcome{}, errInternal("ledger: operation panicked")
		}
	}()
	return op(ctx)
}

func errInternal(detail string) error {
	return &flashauth.Error{Code: flashauth.CodeInternal, Message: "An internal error occurred.", Err: errors.New(detail)}
}

// commit completes claimID's entry. When the claim was lost because the
// lease ran out during op and the purge loop deleted the pending entry,
// nobody else has claimed the secret since: the claim is taken again under
// the same id and completed, so the outcome (possibly the only copy of a
// rotated token) is replayable after all. An entry that exists (another
// holder's claim, or a committed outcome) is never overwritten.
func (l *Ledger) commit(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, window time.Duration, lineage []flashauth.Lineage) error {
	err := l.store.CompleteLedger(ctx, kind, key, claimID, sealed, l.opt.Clock.Now().Add(window), lineage)
	if !errors.Is(err, flashauth.ErrClaimLost) {
		return err
	}
	if _, gerr := l.store.GetLedger(ctx, kind, key); !errors.Is(gerr, flashauth.ErrNotFound) {
		return err
	}
	now := l.opt.Clock.Now()
	if _, held, cerr := l.store.ClaimLedger(ctx, kind, key, claimID, now, now.Add(l.lease(kind))); cerr != nil || !held {
		return err // someone claimed it in between: theirs stands
	}
	if cerr := l.store.CompleteLedger(ctx, kind, key, claimID, sealed, l.opt.Clock.Now().Add(window), lineage); cerr != nil {
		if rerr := l.store.ReleaseLedger(ctx, kind, key, claimID); rerr != nil {
			l.opt.Logger.Warn("ledger release failed", "kind", kind, "err", rerr)
		}
		return cerr
	}
	l.opt.Logger.Warn("ledger claim outlived its lease; committed after re-claiming it", "kind", kind)
	return nil
}

// CommitError reports that the operation ran but its outcome could not be
// committed. The Result returned with it still carries the payload.
type CommitError struct{ Err error }

func (e *CommitError) Error() string { return "ledger commit: " + e.Err.Error() }
func (e *CommitError) Unwrap() error { return e.Err }

// IsCommitError reports whether err is a *CommitError.
func IsCommitError(err error) bool {
	var ce *CommitError
	return errors.As(err, &ce)
}

// Replay returns the committed outcome of (kind, secret) if one is still
// replayable, without claiming anything: ok is false when there is none (no
// entry, an expired one, or a pending one that was released or outlived its
// lease). A pending entry is waited for, as Do waits for another process's
// claim, so a caller racing the holder gets the holder's answer. It lets a
// caller that may not run the operation still answer a retry of a request
// that ran it, or is running it.
func (l *Ledger) Replay(ctx context.Context, kind, secret string) (res Result, ok bool, err error) {
	return l.await(ctx, kind, secret, seal.Hash(secret))
}

// await is Replay of key, the hash of secret.
func (l *Ledger) await(ctx context.Context, kind, secret string, key []byte) (res Result, ok bool, err error) {
	wait := l.opt.PollInterval
	for {
		e, err := l.store.GetLedger(ctx, kind, key)
		if errors.Is(err, flashauth.ErrNotFound) {
			return Result{}, false, nil
		}
		if err != nil {
			return Result{}, false, fmt.Errorf("ledger get: %w", err)
		}
		now := l.opt.Clock.Now()
		switch {
		case e.State == flashauth.LedgerDone && e.ExpiresAt.After(now):
			res, err = l.open(kind, secret, key, e)
			return res, err == nil, err
		case e.State == flashauth.LedgerPending && e.LeaseUntil.After(now):
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return Result{}, false, ctx.Err()
			case <-t.C:
			}
			wait = min(2*wait, l.opt.MaxPoll)
		default:
			return Result{}, false, nil
		}
	}
}

// Purge deletes entries whose window or lease has passed.
func (l *Ledger) Purge(ctx context.Context) (int64, error) {
	return l.store.PurgeLedger(ctx, l.opt.Clock.Now())
}

func sealInfo(kind string) string { return "flashauth ledger v1 " + kind }

func newClaimID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("ledger: claim id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
