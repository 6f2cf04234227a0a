package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flashbacktech/flashauth"
)

// Verdict is the committed outcome of an operation run through Run: what
// the first caller got and every replay gets again. Err is nil for a
// success; for a definitive rejection (committed and replayed like a
// success) it is the error the caller sees.
type Verdict interface {
	Err() error
}

// Copier is a Verdict that makes its own copies: Copy returns a value
// equal to the receiver that shares nothing a caller could change with it
// (verdicts hold pointers). A caller that joined an attempt in this process
// gets a Copy of the verdict the attempt's operation returned instead of
// decoding the committed JSON again: the same value (a verdict reads back
// from its JSON as itself; the caller whose op ran keeps its own value
// already), for a fraction of the CPU - when many callers race on one
// secret, most of them join.
type Copier[T any] interface {
	Copy() T
}

// Call names the single-use secret a Run spends.
type Call struct {
	Kind   string
	Secret string
	// Hash is seal.Hash(Secret) when the caller already computed it (to
	// look up lineage, say); nil has Run compute it.
	Hash []byte
	// Window is how long the outcome replays.
	Window time.Duration
	// Entry, when not nil, is the ledger entry of (Kind, Hash) as the
	// caller just read it from the store (a zero entry: there was none),
	// in the same read as something else it needed first - a refresh reads
	// the token's lineage with it (flashauth.LineageLedgerReader), a
	// session refresh the session and its user (GetSessionLedger). Run
	// then takes it for the replay lookup it would otherwise make itself:
	// a committed outcome in it is replayed exactly as one read by Run.
	// Mark is the Ledger's Mark of Hash taken before that read; without
	// it, or when an attempt at the key ended in this process since, Run
	// reads the entry itself.
	Entry *flashauth.LedgerEntry
	Mark  Mark
	// Local says the operation calls nobody outside the store (a session
	// refresh: a rotation and a signature), so nothing needs claiming
	// before it runs: its verdict commits together with its writes
	// (Writes.Rotation) in one transaction, or nothing is written (see
	// Ledger.local). A store failure is then never a Lost verdict: there
	// is nothing to answer but the error.
	Local bool
}

// Run is the typed entry point of the ledger, the one every flow uses: it
// runs op at most once for c's secret across every process sharing the
// store (see Do; for a Local call, its verdict commits at most once),
// commits its verdict as JSON with the writes op returns,
// and returns the verdict with the verdict's own Err: op's own value to the
// caller whose op ran, a copy decoded from the committed bytes to a replay
// and to each caller that joined the attempt (or, for a Copier, the op's
// value's Copy to a joiner).
//
// op's error means nothing definitive happened (transient trouble): it is
// returned as is and nothing is committed. A definitive rejection is a
// verdict whose Err is not nil, not an error of op.
//
// When the verdict could not be committed (the store failed after op ran),
// Run still returns it, with Result.Lost set: answering is the only way the
// outcome is not lost, and the caller decides how loudly to say so. Result's
// Payload is set whenever a verdict is returned.
func Run[T Verdict](ctx context.Context, l *Ledger, c Call, op func(ctx context.Context) (T, Writes, error)) (T, Result, error) {
	var (
		zero T
		// mine is the verdict this caller's op returned, when it ran: the
		// payload committed (or Lost) is its encoding, so the caller that
		// ran it keeps the value instead of decoding the bytes again.
		// Written on the operation's goroutine before it hands its outcome
		// over (a channel send), read here after do has received it.
		mine T
		ran  bool
	)
	res, err := l.do(ctx, c, func(ctx context.Context) (Outcome, error) {
		v, w, err := op(ctx)
		if err != nil {
			return Outcome{}, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return Outcome{}, fmt.Errorf("ledger: encode %s outcome: %w", c.Kind, err)
		}
		mine, ran = v, true
		return Outcome{Payload: b, Writes: w, verdict: v}, nil
	})
	if err != nil {
		if !IsCommitError(err) || res.Payload == nil {
			return zero, Result{}, err
		}
		res.Lost = err
	}
	if ran && !res.Replayed && !res.Joined {
		// This caller led the attempt and its op ran: res.Payload is the
		// encoding of mine. A replay or a joiner decodes its own copy of
		// the committed bytes instead, so no two callers share a value
		// (verdicts hold pointers).
		return mine, res, mine.Err()
	}
	if res.Joined && !res.Replayed {
		// The attempt's op ran in this process: its verdict travels with
		// the payload (Outcome.verdict), and a Copier copies it.
		if v, ok := res.verdict.(T); ok {
			if c, ok := any(v).(Copier[T]); ok {
				v = c.Copy()
				return v, res, v.Err()
			}
		}
	}
	var v T
	if err := json.Unmarshal(res.Payload, &v); err != nil {
		return zero, Result{}, fmt.Errorf("ledger: decode committed %s outcome: %w", c.Kind, err)
	}
	return v, res, v.Err()
}
