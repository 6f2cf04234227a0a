package session

import (
	"context"
	"errors"
	"fmt"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
)

// List returns the caller's active sessions, newest first. The caller's own
// session is the one whose ID is p.SessionID.
func (s *Service) List(ctx context.Context, p Principal) ([]flashauth.Session, error) {
	sessions, err := s.store.ListSessions(ctx, p.UserID, s.cfg.Clock.Now())
	if err != nil {
		return nil, fmt.Errorf("session: list: %w", err)
	}
	return sessions, nil
}

// Revoke revokes one of the caller's own sessions; revoking one that is
// already revoked succeeds. Another user's session and an unknown id are
// both CodeNotFound, so ids of others cannot be probed. A revocation is
// audited (revoke/ok).
func (s *Service) Revoke(ctx context.Context, p Principal, sessionID string) error {
	err := s.revoke(ctx, p, sessionID)
	if err == nil {
		s.audit.Record(ctx, flashauth.AuditEvent{Type: audit.TypeRevoke, Outcome: audit.OutcomeOK, UserID: p.UserID, SessionID: sessionID})
	}
	return err
}

func (s *Service) revoke(ctx context.Context, p Principal, sessionID string) error {
	notFound := flashauth.Errorf(flashauth.CodeNotFound, "No such session.")
	if sessionID == "" || len(sessionID) > 128 {
		return notFound
	}
	sess, err := s.store.GetSession(ctx, sessionID)
	if errors.Is(err, flashauth.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("session: get session: %w", err)
	}
	if sess.UserID != p.UserID {
		return notFound
	}
	err = s.store.RevokeSession(ctx, sessionID, s.cfg.Clock.Now())
	if errors.Is(err, flashauth.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("session: revoke: %w", err)
	}
	return nil
}
