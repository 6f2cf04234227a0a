// Package audit keeps flashauth's audit trail: one structured log line and
// one store row per security event (a GitHub refresh, a sign-in, a session
// refresh, a detected reuse, a revocation), with who, from where and under
// which request id, and never a secret.
//
// Recording is best effort by design: the trail must not turn a store hiccup
// into a failed refresh (whose single-use token may already be spent), so a
// store failure is logged and the request goes on. The log line is written
// first, so an event the store could not keep still leaves a trace.
//
// Auditing has one home: the domain services (refresh, signin, session) are
// given a flashauth.Auditor (a *Recorder) and record what happened; the
// request's id, client address and session come from the context
// (flashauth.RequestInfo, filled in by the HTTP layer's middleware), and
// Outcome names an answer from the service's result, never from an HTTP
// status.
package audit

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/logging"
)

// Event types (flashauth.AuditEvent.Type).
const (
	TypeGitHubRefresh  = "github_refresh"
	TypeSignIn         = "signin"
	TypeSessionRefresh = "session_refresh"
	TypeReuseDetected  = "reuse_detected"
	TypeRevoke         = "revoke"
)

// Outcomes (flashauth.AuditEvent.Outcome).
const (
	OutcomeOK       = "ok"
	OutcomeReplayed = "replayed"
	// OutcomeJoined: the request shared an attempt another request had in
	// flight (single-flight), and got its answer without work of its own.
	OutcomeJoined = "joined"
	// OutcomeRejected: the caller's request or credential was refused.
	OutcomeRejected = "rejected"
	// OutcomeUpstreamError: GitHub failed or answered unexpectedly.
	OutcomeUpstreamError = "upstream_error"
	// OutcomeRateLimited: a rate limit refused the request.
	OutcomeRateLimited = "rate_limited"
	// OutcomeError: flashauth itself failed (the store, say).
	OutcomeError = "error"
	// OutcomeReuseDetected: a session refresh was refused because its
	// rotated-out refresh token came back (REFRESH_TOKEN_REUSED).
	OutcomeReuseDetected = "reuse_detected"
	// OutcomeSuspected: a rotated-out GitHub refresh token came back after
	// the replay window, which a thief replaying a copy would look like.
	OutcomeSuspected = "suspected"
	// OutcomeRevoked: a rotated-out session refresh token came back after
	// the reuse interval, and its session was revoked.
	OutcomeRevoked = "revoked"
	// OutcomeLogout: a session was revoked by its own holder (logout), as
	// opposed to OutcomeOK for a revocation by an administrator or a user
	// revoking another of their sessions.
	OutcomeLogout = "logout"
)

// Field bounds. Every field but Detail is an identifier; anything longer is
// not one, and an attacker-chosen value must not bloat logs or rows.
const (
	maxField  = 128
	maxDetail = 512
)

// storeTimeout bounds one append, so a hung database delays a request by at
// most this much.
const storeTimeout = 2 * time.Second

// Recorder writes audit events to a log and a store. A nil *Recorder records
// nothing, so callers need no checks.
type Recorder struct {
	store flashauth.AuditStore
	queue Queue // store, when it is one
	log   *slog.Logger
	clock flashauth.Clock
}

// Queue is an audit store that can take an event without waiting (app's
// queue in front of the store, which writes rows off the answer path).
// Record offers every event there first, and only when it is refused (the
// queue is full or closed) appends it the way it appends to any store,
// bounded by a timeout; so the common case costs neither a timer nor a
// context.
type Queue interface {
	// TryAppendAudit queues e, after every event queued before it, and
	// reports true; or, when that would wait, does nothing and reports
	// false.
	TryAppendAudit(e flashauth.AuditEvent) bool
}

// New returns a Recorder. A nil store keeps the log line only; a nil log
// discards it; a nil clock is the system clock.
func New(store flashauth.AuditStore, log *slog.Logger, clock flashauth.Clock) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if clock == nil {
		clock = flashauth.SystemClock{}
	}
	q, _ := store.(Queue)
	return &Recorder{store: store, queue: q, log: log, clock: clock}
}

// Record stamps e with the time (unless set) and, for the fields e leaves
// empty, the request id, client address and session of the request ctx
// belongs to (flashauth.RequestInfoFrom); then it logs e and appends it to
// the store. It never fails: a store error is logged. It runs on a context
// detached from ctx's cancellation, so a caller that hung up still leaves
// its event behind.
func (r *Recorder) Record(ctx context.Context, e flashauth.AuditEvent) {
	if r == nil {
		return
	}
	info := flashauth.RequestInfoFrom(ctx)
	e.RequestID = cmp.Or(e.RequestID, info.ID)
	e.IPAddress = cmp.Or(e.IPAddress, info.IP)
	e.SessionID = cmp.Or(e.SessionID, info.SessionID)
	e = clean(e)
	if e.Time.IsZero() {
		e.Time = r.clock.Now()
	}
	level := slog.LevelInfo
	if e.Type == TypeReuseDetected || e.Outcome == OutcomeSuspected {
		level = slog.LevelWarn
	}
	r.log.LogAttrs(ctx, level, "audit",
		slog.String("type", e.Type),
		slog.String("outcome", e.Outcome),
		slog.String("user_id", e.UserID),
		slog.String("session_id", e.SessionID),
		slog.String("ip", e.IPAddress),
		slog.String("request_id", e.RequestID),
		slog.String("detail", e.Detail),
	)
	if r.store == nil || r.queue != nil && r.queue.TryAppendAudit(e) {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := r.store.AppendAudit(sctx, e); err != nil {
		r.log.LogAttrs(ctx, slog.LevelError, "audit event not stored",
			slog.String("type", e.Type),
			slog.String("outcome", e.Outcome),
			slog.String("request_id", e.RequestID),
			slog.String("err", err.Error()),
		)
	}
}

// Discard records nothing: the auditor of a service given none.
var Discard flashauth.Auditor = (*Recorder)(nil)

// Outcome names how a request was answered: its error's outcome (see
// OutcomeOf), or for a success "ok" when this request did the work,
// "joined" when it shared another request's work in flight, "replayed" when
// it got a committed outcome back.
func Outcome(err error, replayed, joined bool) string {
	switch {
	case err != nil:
		return OutcomeOf(err)
	case replayed:
		return OutcomeReplayed
	case joined:
		return OutcomeJoined
	}
	return OutcomeOK
}

// OutcomeOf names an error by its code: the caller's fault is a rejection;
// GitHub's failure an upstream error; flashauth's own (the store, a bug, an
// error without a code) an error.
func OutcomeOf(err error) string {
	switch flashauth.ErrorCode(err) {
	case flashauth.CodeRefreshTokenReused:
		return OutcomeReuseDetected
	case flashauth.CodeUpstreamBadResponse, flashauth.CodeUpstreamUnavailable, flashauth.CodeUpstreamCredentials:
		return OutcomeUpstreamError
	case flashauth.CodeRateLimited:
		return OutcomeRateLimited
	case flashauth.CodeInvalidRequest, flashauth.CodeInvalidRefreshToken, flashauth.CodeAuthRequired,
		flashauth.CodeTokenOwnerMismatch, flashauth.CodeNotFound, flashauth.CodeMethodNotAllowed,
		flashauth.CodePayloadTooLarge, flashauth.CodeUnsupportedMediaType, flashauth.CodeInvalidCode,
		flashauth.CodeRedirectURIMismatch, flashauth.CodeInvalidState, flashauth.CodeStateRequired,
		flashauth.CodeEmailNotVerified:
		return OutcomeRejected
	}
	return OutcomeError
}

// clean bounds every field and passes the free-text ones through the
// logging package's redaction, so that a careless caller cannot put a token
// into the trail: the store is not behind a redacting handler the way the
// log is.
func clean(e flashauth.AuditEvent) flashauth.AuditEvent {
	e.Type = bound(e.Type, maxField)
	e.Outcome = bound(e.Outcome, maxField)
	e.UserID = bound(e.UserID, maxField)
	e.SessionID = bound(e.SessionID, maxField)
	e.IPAddress = bound(e.IPAddress, maxField)
	e.RequestID = bound(e.RequestID, maxField)
	e.Detail = bound(logging.Redact(e.Detail), maxDetail)
	return e
}

// bound cuts s to at most n bytes without splitting a UTF-8 sequence.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
