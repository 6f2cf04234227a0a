// Package refresh is the heart of flashauth: it refreshes a GitHub user token
// exactly once, however many tabs, retries or replicas present it, and
// replays the outcome within a window so a caller whose answer was lost can
// ask again.
package refresh

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/seal"
)

var _ ledger.Copier[verdict] = verdict{}

// Policy is the ownership policy of the refresh endpoint
// (FLASHAUTH_GITHUB_REFRESH_AUTH).
type Policy string

const (
	// PolicyCompat: a Bearer is optional; a valid one must own the lineage.
	PolicyCompat Policy = "compat"
	// PolicySession: a valid flashauth access token is required and must own
	// the lineage.
	PolicySession Policy = "session"
)

// ParsePolicy parses a policy name.
func ParsePolicy(s string) (Policy, error) {
	switch Policy(s) {
	case PolicyCompat, PolicySession:
		return Policy(s), nil
	}
	return "", fmt.Errorf("unknown policy %q (want compat or session)", s)
}

// Config configures a Service.
type Config struct {
	ReplayWindow time.Duration // default 60s
	Policy       Policy        // default compat
	Clock        flashauth.Clock
	Logger       *slog.Logger
	// Auditor records every refresh and every suspected reuse; nil records
	// nothing.
	Auditor flashauth.Auditor
	// RevokeOnReuse, when set (FLASHAUTH_REUSE_REVOKES_SESSIONS), also
	// ends the owner's flashauth sessions when a suspected reuse is
	// detected (see suspectedReuse); nil: the reuse is only audited.
	RevokeOnReuse SessionRevoker
}

// SessionRevoker ends a user's flashauth sessions (flashauth.SessionStore
// implements it).
type SessionRevoker interface {
	// RevokeUserSessions revokes userID's sessions active at now and
	// returns how many it revoked.
	RevokeUserSessions(ctx context.Context, userID string, now time.Time) (int64, error)
}

// Service refreshes GitHub tokens.
type Service struct {
	gh     flashauth.GitHub
	store  flashauth.LineageStore
	ledger *ledger.Ledger
	cfg    Config
}

// New returns a Service.
func New(gh flashauth.GitHub, store flashauth.LineageStore, l *ledger.Ledger, cfg Config) *Service {
	if cfg.ReplayWindow <= 0 {
		cfg.ReplayWindow = 60 * time.Second
	}
	if cfg.Policy == "" {
		cfg.Policy = PolicyCompat
	}
	if cfg.Clock == nil {
		cfg.Clock = flashauth.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Auditor == nil {
		cfg.Auditor = audit.Discard
	}
	return &Service{gh: gh, store: store, ledger: l, cfg: cfg}
}

// Caller is who asks. UserID is empty unless the request carried a valid
// flashauth access token.
type Caller struct {
	UserID string
}

// Token is a refreshed GitHub token. Times are at millisecond precision, the
// wire's unit; zero means "does not expire".
type Token struct {
	AccessToken           string    `json:"access_token"`
	RefreshToken          string    `json:"refresh_token"`
	TokenType             string    `json:"token_type"`
	Scope                 string    `json:"scope"`
	ExpiresIn             int64     `json:"expires_in"` // seconds
	ExpiresAt             time.Time `json:"expires_at"`
	RefreshTokenExpiresAt time.Time `json:"refresh_token_expires_at"`
}

// Result is the outcome of Refresh.
type Result struct {
	Token    Token
	Replayed bool   // served from the ledger, no upstream call
	Joined   bool   // shared another caller's upstream call in flight
	Owner    string // the user the token's lineage belongs to, "" when unknown
}

// verdict is what the ledger commits and replays.
type verdict struct {
	Token *Token `json:"token,omitempty"`
	Code  string `json:"code,omitempty"` // a definitive error code
}

// Copy implements ledger.Copier: callers that joined a refresh in flight
// get their own copy of its token without decoding the committed JSON.
func (o verdict) Copy() verdict {
	if o.Token != nil {
		t := *o.Token // strings and times: a value copy shares nothing
		o.Token = &t
	}
	return o
}

// Err implements ledger.Verdict.
func (o verdict) Err() error {
	if o.Code != "" {
		return rejection(o.Code)
	}
	if o.Token == nil {
		return errors.New("refresh: committed outcome has neither token nor code")
	}
	return nil
}

// Refresh exchanges refreshToken at GitHub at most once and returns the new
// token, or replays the committed outcome of an earlier exchange. Every
// call is audited (github_refresh), under the lineage's owner or else the
// caller.
func (s *Service) Refresh(ctx context.Context, refreshToken string, caller Caller) (Result, error) {
	res, err := s.refresh(ctx, refreshToken, caller)
	s.cfg.Auditor.Record(ctx, flashauth.AuditEvent{
		Type: audit.TypeGitHubRefresh, Outcome: audit.Outcome(err, res.Replayed, res.Joined),
		UserID: cmp.Or(res.Owner, caller.UserID),
	})
	return res, err
}

func (s *Service) refresh(ctx context.Context, refreshToken string, caller Caller) (Result, error) {
	if !flashauth.ValidToken(refreshToken, flashauth.MaxTokenLength) {
		return Result{}, flashauth.Errorf(flashauth.CodeInvalidRequest,
			"refresh_token must be a non-empty string of at most %d printable characters without spaces.", flashauth.MaxTokenLength)
	}
	hash := seal.Hash(refreshToken)
	mark := s.ledger.Mark(hash) // before the read (see ledger.Mark)
	lin, known, entry, err := s.lineage(ctx, hash)
	if err != nil {
		return Result{}, err
	}
	if err := s.authorize(caller, lin, known); err != nil {
		return Result{}, err
	}

	out, res, err := ledger.Run(ctx, s.ledger, ledger.Call{
		Kind: flashauth.LedgerGitHubRefresh, Secret: refreshToken, Hash: hash, Window: s.cfg.ReplayWindow,
		Entry: entry, Mark: mark,
	}, func(ctx context.Context) (verdict, ledger.Writes, error) {
		v, lineage, err := s.exchange(ctx, refreshToken, hash, lin, known)
		return v, ledger.Writes{Lineage: lineage}, err
	})
	if res.Lost != nil {
		// The exchange happened but could not be committed (the store
		// failed, or the claim's lease ran out and another process took it
		// over: ErrClaimLost in the chain). Answer it anyway: a rotated token
		// is the only copy there is.
		if err == nil {
			s.cfg.Logger.ErrorContext(ctx, "github refresh succeeded but its result could not be committed; a retry will not replay it", "err", res.Lost)
		} else {
			s.cfg.Logger.WarnContext(ctx, "github refresh rejection could not be committed; a retry will ask GitHub again", "err", res.Lost)
		}
	}
	if err != nil {
		if res.Payload == nil {
			return Result{}, err // nothing definitive happened
		}
		return Result{Replayed: res.Replayed, Joined: res.Joined, Owner: lin.UserID}, err
	}
	return Result{Token: *out.Token, Replayed: res.Replayed, Joined: res.Joined, Owner: lin.UserID}, nil
}

// lineage reads the presented token's lineage: who owns it, whether it was
// rotated out. It must come before the ledger: a caller the lineage refuses
// gets no replay and spends nothing of the owner's rate limit. A store that
// reads the token's ledger entry in the same round trip
// (flashauth.LineageLedgerReader) returns it too, for the ledger's replay
// lookup (ledger.Call.Entry); otherwise entry is nil and the ledger reads it
// itself.
func (s *Service) lineage(ctx context.Context, hash []byte) (lin flashauth.Lineage, known bool, entry *flashauth.LedgerEntry, err error) {
	if r, ok := s.store.(flashauth.LineageLedgerReader); ok {
		ll, err := r.GetLineageLedger(ctx, flashauth.LedgerGitHubRefresh, hash)
		if err != nil {
			return flashauth.Lineage{}, false, nil, fmt.Errorf("refresh: lineage: %w", err)
		}
		return ll.Lineage, ll.HasLineage, &ll.Entry, nil
	}
	lin, err = s.store.GetLineage(ctx, hash)
	switch {
	case err == nil:
		return lin, true, nil, nil
	case errors.Is(err, flashauth.ErrNotFound):
		return flashauth.Lineage{}, false, nil, nil
	default:
		return flashauth.Lineage{}, false, nil, fmt.Errorf("refresh: lineage: %w", err)
	}
}

// authorize applies the ownership policy before anything is sent upstream.
func (s *Service) authorize(caller Caller, lin flashauth.Lineage, known bool) error {
	var owned bool
	switch s.cfg.Policy {
	case PolicySession:
		if caller.UserID == "" {
			return flashauth.Errorf(flashauth.CodeAuthRequired, "A valid access token is required.")
		}
		owned = known && lin.UserID == caller.UserID
	default:
		owned = caller.UserID == "" || !known || lin.UserID == "" || lin.UserID == caller.UserID
	}
	if !owned {
		return flashauth.Errorf(flashauth.CodeTokenOwnerMismatch, "This refresh token belongs to another user.")
	}
	return nil
}

// exchange is the ledger operation: one call to GitHub. Definitive answers
// become committed outcomes; anything transient is an error, never cached.
func (s *Service) exchange(ctx context.Context, refreshToken string, hash []byte, lin flashauth.Lineage, known bool) (verdict, []flashauth.Lineage, error) {
	gt, err := s.gh.RefreshToken(ctx, refreshToken)
	now := s.cfg.Clock.Now()
	if err != nil {
		var ue *flashauth.UpstreamError
		if errors.As(err, &ue) && ue.Kind == flashauth.UpstreamRejected {
			if known && lin.ReplacedBy != nil {
				s.suspectedReuse(ctx, lin, now)
			}
			return verdict{Code: flashauth.CodeInvalidRefreshToken}, nil, nil
		}
		return verdict{}, nil, flashauth.ErrorFromUpstream(err)
	}
	tok := Token{
		AccessToken:  gt.AccessToken,
		RefreshToken: gt.RefreshToken,
		TokenType:    gt.TokenType,
		Scope:        gt.Scope,
		ExpiresIn:    int64(gt.ExpiresIn / time.Second),
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken // GitHub did not rotate
	}
	if tok.TokenType == "" {
		tok.TokenType = "bearer"
	}
	// In UTC, without a monotonic reading: the token reads back from the
	// ledger as this very value, so the caller that ran the exchange (which
	// keeps it, see ledger.Run) and its replays hold equal tokens.
	ms := now.UTC().Truncate(time.Millisecond)
	if gt.ExpiresIn > 0 {
		tok.ExpiresAt = ms.Add(gt.ExpiresIn)
	}
	if gt.RefreshTokenExpiresIn > 0 {
		tok.RefreshTokenExpiresAt = ms.Add(gt.RefreshTokenExpiresIn)
	}

	var lineage []flashauth.Lineage
	if tok.RefreshToken != refreshToken {
		newHash := seal.Hash(tok.RefreshToken)
		old := lin
		if !known {
			old = flashauth.Lineage{TokenHash: hash, CreatedAt: now}
		}
		old.ReplacedBy, old.RotatedAt = newHash, now
		lineage = []flashauth.Lineage{old, {
			TokenHash:  newHash,
			ParentHash: hash,
			UserID:     lin.UserID, // a rotated token inherits its owner
			CreatedAt:  now,
			ExpiresAt:  tok.RefreshTokenExpiresAt,
		}}
	}
	return verdict{Token: &tok}, lineage, nil
}

// suspectedReuse handles a token flashauth had already rotated that GitHub
// rejected, so presented after the replay window: whoever holds it has a
// stale copy, possibly stolen. It is audited (reuse_detected/suspected) and,
// with RevokeOnReuse, the owner's sessions end. ctx is the presenting
// request's (the ledger keeps its values): the row says who presented the
// token, from where.
func (s *Service) suspectedReuse(ctx context.Context, lin flashauth.Lineage, now time.Time) {
	detail := "rotated-out GitHub refresh token presented after the replay window"
	if s.cfg.RevokeOnReuse != nil && lin.UserID != "" {
		if n, err := s.cfg.RevokeOnReuse.RevokeUserSessions(ctx, lin.UserID, now); err != nil {
			s.cfg.Logger.ErrorContext(ctx, "revoking sessions after suspected reuse failed", "user_id", lin.UserID, "err", err)
			detail += "; revoking the owner's sessions failed"
		} else {
			detail += fmt.Sprintf("; %d sessions revoked", n)
		}
	}
	s.cfg.Auditor.Record(ctx, flashauth.AuditEvent{
		Type: audit.TypeReuseDetected, Outcome: audit.OutcomeSuspected, UserID: lin.UserID, Detail: detail,
	})
}

// rejection is the caller-facing error of a committed rejection code. This
// version commits only INVALID_REFRESH_TOKEN; another code can come from a
// replica of another version sharing the store.
func rejection(code string) error {
	if code == flashauth.CodeInvalidRefreshToken {
		return flashauth.Errorf(code, "The refresh token is invalid, expired, revoked or already used. Sign in again.")
	}
	return flashauth.Errorf(code, "The request was rejected.")
}
