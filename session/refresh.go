package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/seal"
)

// Open starts a session for u and issues its first access and refresh
// tokens.
func (s *Service) Open(ctx context.Context, u flashauth.User, meta Meta) (Issued, error) {
	if u.ID == "" {
		return Issued{}, errors.New("session: open: user without id")
	}
	id, err := flashauth.NewID()
	if err != nil {
		return Issued{}, err
	}
	refresh, err := newRefreshToken()
	if err != nil {
		return Issued{}, err
	}
	now := s.cfg.Clock.Now()
	sess := flashauth.Session{
		ID:         id,
		UserID:     u.ID,
		Provider:   meta.Provider,
		DeviceInfo: meta.DeviceInfo,
		IPAddress:  meta.IPAddress,
		UserAgent:  meta.UserAgent,
		CreatedAt:  now,
		LastUsedAt: now,
		ExpiresAt:  now.Add(s.cfg.RefreshTTL),
	}
	// Sign before storing, so a signing failure leaves no orphan session.
	access, accessExp, err := s.issueAccess(ctx, u, id, sess.ExpiresAt)
	if err != nil {
		return Issued{}, err
	}
	if err := s.store.CreateSession(ctx, sess, seal.Hash(refresh)); err != nil {
		return Issued{}, fmt.Errorf("session: create: %w", err)
	}
	return Issued{
		AccessToken:      access,
		AccessExpiresAt:  accessExp,
		RefreshToken:     refresh,
		SessionID:        id,
		UserID:           u.ID,
		SessionExpiresAt: sess.ExpiresAt,
	}, nil
}

// verdict is the ledger payload of a refresh: the tokens issued, or
// the code of a definitive rejection. Both replay within the reuse interval.
type verdict struct {
	Issued *Issued `json:"issued,omitempty"`
	Code   string  `json:"code,omitempty"`
}

// Err implements ledger.Verdict.
func (o verdict) Err() error {
	if o.Code != "" {
		return rejection(o.Code)
	}
	if o.Issued == nil {
		return errors.New("session: refresh payload without tokens")
	}
	return nil
}

// Refresh rotates the session of refreshToken: it answers new tokens and the
// presented one stops being current. The same token presented again within
// ReuseInterval gets the identical answer (a client whose response was lost
// may retry; concurrent tabs agree). Presented later, it is reuse: the whole
// session is revoked and the answer is CodeRefreshTokenReused. Unknown,
// expired or revoked: CodeInvalidRefreshToken. Every call is audited
// (session_refresh).
func (s *Service) Refresh(ctx context.Context, refreshToken string) (Issued, error) {
	iss, err := s.refresh(ctx, refreshToken)
	s.audit.Record(ctx, flashauth.AuditEvent{
		Type: audit.TypeSessionRefresh, Outcome: audit.Outcome(err, iss.Replayed, iss.Joined),
		UserID: iss.UserID, SessionID: iss.SessionID,
	})
	return iss, err
}

func (s *Service) refresh(ctx context.Context, refreshToken string) (Issued, error) {
	if refreshToken == "" {
		return Issued{}, flashauth.Errorf(flashauth.CodeInvalidRequest, "A refresh token is required.")
	}
	if !wellFormedRefreshToken(refreshToken) {
		return Issued{}, rejection(flashauth.CodeInvalidRefreshToken)
	}
	const kind = flashauth.LedgerSessionRefresh
	hash := seal.Hash(refreshToken)
	// One read for everything: the session, its user and the token's
	// ledger entry, which the ledger takes as its replay lookup.
	mark := s.ledger.Mark(hash) // before the read (see ledger.Mark)
	read, err := s.store.GetSessionLedger(ctx, kind, hash)
	if err != nil {
		return Issued{}, fmt.Errorf("session: find by refresh: %w", err)
	}
	now := s.cfg.Clock.Now()
	// The read saw a committed rotation, and the session as it is since.
	sawCommitted := read.HasEntry && read.Entry.State == flashauth.LedgerDone && read.Entry.ExpiresAt.After(now)
	aliveSince := read.HasSession && read.Session.Active(now)
	runs := 0
	out, res, err := ledger.Run(ctx, s.ledger, ledger.Call{
		Kind: kind, Secret: refreshToken, Hash: hash, Window: s.cfg.ReuseInterval,
		Entry: &read.Entry, Mark: mark, Local: true,
	}, func(ctx context.Context) (verdict, ledger.Writes, error) {
		if runs++; runs > 1 {
			// The rotation no longer applied (another process rotated
			// the token or revoked the session first): decide again on
			// what is stored now.
			var rerr error
			if read, rerr = s.store.GetSessionLedger(ctx, kind, hash); rerr != nil {
				return verdict{}, ledger.Writes{}, fmt.Errorf("session: find by refresh: %w", rerr)
			}
		}
		return s.rotate(ctx, read, hash)
	})
	if err != nil {
		return Issued{}, err
	}
	if res.Replayed {
		// The session may have died since (logout, reuse detected): a replay
		// must not hand out its dead tokens as a success. When the read
		// already saw the rotation committed, it saw the session after it.
		if !sawCommitted {
			sess, err := s.store.GetSession(ctx, out.Issued.SessionID)
			if err != nil && !errors.Is(err, flashauth.ErrNotFound) {
				return Issued{}, fmt.Errorf("session: get session: %w", err)
			}
			aliveSince = err == nil && sess.Active(s.cfg.Clock.Now())
		}
		if !aliveSince {
			return Issued{}, rejection(flashauth.CodeInvalidRefreshToken)
		}
	}
	iss := *out.Issued
	iss.Replayed, iss.Joined = res.Replayed, res.Joined
	return iss, nil
}

// rotate is the ledger operation of Refresh, on what the store held of the
// presented token (r): the verdict, and the rotation that commits with it
// (ledger.Call.Local) if the token is still current then. Its error means
// nothing definitive happened; rejections are outcomes.
func (s *Service) rotate(ctx context.Context, r flashauth.SessionLedger, oldHash []byte) (verdict, ledger.Writes, error) {
	now := s.cfg.Clock.Now()
	if !r.HasSession || !r.Session.Active(now) {
		return verdict{Code: flashauth.CodeInvalidRefreshToken}, ledger.Writes{}, nil
	}
	sess := r.Session
	if !r.Current {
		v, err := s.reused(ctx, sess, now)
		return v, ledger.Writes{}, err
	}
	if !r.HasUser {
		return verdict{Code: flashauth.CodeInvalidRefreshToken}, ledger.Writes{}, nil
	}
	next, err := newRefreshToken()
	if err != nil {
		return verdict{}, ledger.Writes{}, err
	}
	expires := now.Add(s.cfg.RefreshTTL)
	access, accessExp, err := s.issueAccess(ctx, r.User, sess.ID, expires)
	if err != nil {
		return verdict{}, ledger.Writes{}, err
	}
	return verdict{Issued: &Issued{
			AccessToken: access,
			// In UTC, without a monotonic reading: as a replay decodes them,
			// so the caller that rotated (which keeps this value, see
			// ledger.Run) and its replays hold equal values.
			AccessExpiresAt:  accessExp.UTC(),
			RefreshToken:     next,
			SessionID:        sess.ID,
			UserID:           sess.UserID,
			SessionExpiresAt: expires.UTC(),
		}}, ledger.Writes{Rotation: &flashauth.SessionRotation{
			SessionID: sess.ID, OldHash: oldHash, NewHash: seal.Hash(next), Now: now, ExpiresAt: expires,
		}}, nil
}

// reused handles a rotated-out refresh token presented after the reuse
// interval: someone holds a copy, so the whole session dies.
func (s *Service) reused(ctx context.Context, sess flashauth.Session, now time.Time) (verdict, error) {
	if err := s.store.RevokeSession(ctx, sess.ID, now); err != nil && !errors.Is(err, flashauth.ErrNotFound) {
		return verdict{}, fmt.Errorf("session: revoke on reuse: %w", err)
	}
	s.audit.Record(ctx, flashauth.AuditEvent{Time: now, Type: audit.TypeReuseDetected, Outcome: audit.OutcomeRevoked,
		UserID: sess.UserID, SessionID: sess.ID})
	return verdict{Code: flashauth.CodeRefreshTokenReused}, nil
}

// Logout revokes the session refreshToken belongs to, whether the token is
// current or rotated out, and returns it; revoking an already revoked or
// expired session succeeds, and is audited (revoke/logout). A token that
// was never issued is CodeInvalidRefreshToken: there is no session it could
// name.
func (s *Service) Logout(ctx context.Context, refreshToken string) (flashauth.Session, error) {
	sess, err := s.logout(ctx, refreshToken)
	if err == nil {
		s.audit.Record(ctx, flashauth.AuditEvent{Type: audit.TypeRevoke, Outcome: audit.OutcomeLogout, UserID: sess.UserID, SessionID: sess.ID})
	}
	return sess, err
}

func (s *Service) logout(ctx context.Context, refreshToken string) (flashauth.Session, error) {
	if refreshToken == "" {
		return flashauth.Session{}, flashauth.Errorf(flashauth.CodeInvalidRequest, "A refresh token is required.")
	}
	if !wellFormedRefreshToken(refreshToken) {
		return flashauth.Session{}, rejection(flashauth.CodeInvalidRefreshToken)
	}
	sess, _, err := s.store.FindSessionByRefresh(ctx, seal.Hash(refreshToken))
	if errors.Is(err, flashauth.ErrNotFound) {
		return flashauth.Session{}, rejection(flashauth.CodeInvalidRefreshToken)
	}
	if err != nil {
		return flashauth.Session{}, fmt.Errorf("session: find by refresh: %w", err)
	}
	if err := s.store.RevokeSession(ctx, sess.ID, s.cfg.Clock.Now()); err != nil && !errors.Is(err, flashauth.ErrNotFound) {
		return flashauth.Session{}, fmt.Errorf("session: revoke: %w", err)
	}
	return sess, nil
}

// rejection is the caller-facing error of a refresh-token rejection code.
func rejection(code string) error {
	switch code {
	case flashauth.CodeRefreshTokenReused:
		return flashauth.Errorf(code, "The refresh token was already used; the session has been revoked.")
	case flashauth.CodeInvalidRefreshToken:
		return flashauth.Errorf(code, "The refresh token is invalid, expired or revoked.")
	}
	return fmt.Errorf("session: unknown rejection code %q", code)
}
