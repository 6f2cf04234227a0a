package flashauth

import (
	"context"
	"encoding/json"
	"time"
)

// Store is everything flashauth keeps. Implementations (sqlite, postgres)
// are dumb: they keep rows and make each method atomic; the rules live in the
// domain packages. Every implementation passes the storetest conformance suite.
//
// Hashes are SHA-256 digests (32 bytes) of secrets; stores never see a secret.
// Errors: ErrNotFound, ErrConflict, ErrClaimLost as documented, and an *Error
// with CodeStoreUnavailable when the database cannot be reached.
type Store interface {
	LedgerStore
	LineageStore
	UserStore
	SessionStore
	KeyStore
	StateStore
	AuditStore
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	Close() error
}

// LedgerState is the state of a ledger entry.
type LedgerState int

const (
	// LedgerPending: a caller holds the claim and is talking to GitHub.
	LedgerPending LedgerState = 1
	// LedgerDone: the sealed outcome is committed and replayable.
	LedgerDone LedgerState = 2
)

// Ledger kinds: namespaces of the ledger's keys.
const (
	LedgerGitHubRefresh  = "github_refresh"
	LedgerGitHubCode     = "github_code"
	LedgerSessionRefresh = "session_refresh"
)

// LedgerEntry is one row of the exactly-once ledger, keyed by (Kind, Key).
type LedgerEntry struct {
	Kind       string
	Key        []byte // SHA-256 of the presented secret
	ClaimID    string // random id of the claim's holder
	State      LedgerState
	LeaseUntil time.Time // pending: the claim may be taken over after this
	Sealed     []byte    // done: the sealed outcome
	ExpiresAt  time.Time // done: replayable until this
	CreatedAt  time.Time
}

// LedgerStore keeps the exactly-once ledger.
type LedgerStore interface {
	// ClaimLedger atomically makes (kind, key) a pending entry held by
	// claimID until leaseUntil, unless a live entry exists: a done entry with
	// ExpiresAt after now, or a pending entry with LeaseUntil after now. A
	// dead entry (expired done, or pending past its lease) is replaced. It
	// returns the entry now stored and whether claimID holds it; claiming
	// again with one's own live claim returns held=true without extending the
	// lease. A done entry's LeaseUntil is not meaningful.
	ClaimLedger(ctx context.Context, kind string, key []byte, claimID string, now, leaseUntil time.Time) (LedgerEntry, bool, error)
	// CompleteLedger turns claimID's pending entry into a done one with the
	// sealed outcome, replayable until expiresAt, and upserts lineage in the
	// same transaction. ErrClaimLost when claimID no longer holds the entry
	// (also when it is already done); nothing is written when any lineage
	// record is invalid (e.g. an empty TokenHash).
	CompleteLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, expiresAt time.Time, lineage []Lineage) error
	// CommitLedger is ClaimLedger and CompleteLedger at once, for an
	// operation that needs no claim before it runs (it calls nobody outside
	// the store, so it can be run again): unless a live entry exists (as
	// ClaimLedger judges it at now), it stores (kind, key) as a done entry
	// of claimID with sealed, replayable until expiresAt and created at now,
	// and applies rotation when it is not nil - in one transaction, or
	// nothing is written. It returns the entry now stored and whether this
	// call committed it; a live entry that blocked it is returned with
	// committed=false. ErrConflict when no live entry blocked it but the
	// rotation could not be applied (its OldHash is not the session's
	// current refresh hash, or the session is revoked or unknown).
	CommitLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, now, expiresAt time.Time, rotation *SessionRotation) (LedgerEntry, bool, error)
	// ReleaseLedger deletes claimID's pending entry; nil when it is gone.
	ReleaseLedger(ctx context.Context, kind string, key []byte, claimID string) error
	// GetLedger returns the entry or ErrNotFound.
	GetLedger(ctx context.Context, kind string, key []byte) (LedgerEntry, error)
	// PurgeLedger deletes done entries with ExpiresAt <= now and pending
	// entries with LeaseUntil <= now, and returns how many it deleted.
	PurgeLedger(ctx context.Context, now time.Time) (int64, error)
}

// Lineage records one GitHub refresh token flashauth has seen: who owns it
// and which token replaced it.
type Lineage struct {
	TokenHash  []byte    // SHA-256 of the refresh token
	ParentHash []byte    // the token it replaced; nil when issued at sign-in or unknown
	UserID     string    // owner; "" when unknown
	ReplacedBy []byte    // the token that replaced it; nil while current
	CreatedAt  time.Time // when flashauth first saw it
	RotatedAt  time.Time // when it was replaced; zero while current
	ExpiresAt  time.Time // the refresh token's own expiry; zero when unknown
}

// LineageStore keeps refresh-token lineage.
type LineageStore interface {
	// PutLineage inserts or replaces the record of l.TokenHash.
	PutLineage(ctx context.Context, l Lineage) error
	// GetLineage returns the record or ErrNotFound.
	GetLineage(ctx context.Context, tokenHash []byte) (Lineage, error)
}

// LineageLedger is what LineageLedgerReader reads: the lineage record of a
// token hash and the ledger entry of (kind, hash), each with whether it
// exists; a record that does not exist is its zero value.
type LineageLedger struct {
	Lineage    Lineage
	HasLineage bool
	Entry      LedgerEntry
	HasEntry   bool
}

// LineageLedgerReader is an optional capability of a Store: a refresh
// needs the presented token's lineage (ownership, reuse) and its ledger
// entry (a committed outcome to replay), and a store that has this reads
// both in one round trip, from one snapshot, instead of two. A missing row
// is a false Has flag, not an error; the error is the store's trouble only.
// What it returns must be what GetLineage and GetLedger would have returned
// at that instant.
type LineageLedgerReader interface {
	GetLineageLedger(ctx context.Context, kind string, hash []byte) (LineageLedger, error)
}

// User is a flashauth user, keyed for GitHub sign-in by GitHubID.
type User struct {
	ID        string
	GitHubID  int64
	Login     string
	Email     string
	Name      string
	ImageURL  string
	OrgID     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Organization is created for a user on first sign-in.
type Organization struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// UserStore keeps users and organizations.
type UserStore interface {
	// UpsertGitHubUser finds the user with u.GitHubID. If found it updates
	// Login, Email, Name, ImageURL and UpdatedAt and returns it with
	// created=false (ID, OrgID and CreatedAt of the stored row win). If not it
	// inserts org and then u (u.OrgID set to org.ID) in one transaction and
	// returns created=true. Concurrent first sign-ins of one GitHub user end
	// with one user and one organization.
	UpsertGitHubUser(ctx context.Context, u User, org Organization) (User, bool, error)
	// GetUser returns the user or ErrNotFound.
	GetUser(ctx context.Context, id string) (User, error)
	// GetOrganization returns the organization or ErrNotFound.
	GetOrganization(ctx context.Context, id string) (Organization, error)
}

// Session is a flashauth session: a family of rotating refresh tokens and the
// access tokens issued from them.
type Session struct {
	ID         string
	UserID     string
	Provider   string // "GITHUB"
	DeviceInfo json.RawMessage
	IPAddress  string
	UserAgent  string
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	RevokedAt  time.Time // zero while active
}

// Active reports whether s can still be used at now.
func (s Session) Active(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// SessionStore keeps sessions and the hashes of their refresh tokens. Every
// refresh token a session ever had stays recorded, so reuse of a rotated-out
// token can be recognised.
type SessionStore interface {
	// CreateSession inserts s with refreshHash as its current refresh token;
	// ErrConflict for a duplicate id or refresh hash.
	CreateSession(ctx context.Context, s Session, refreshHash []byte) error
	// GetSession returns the session, active or not, or ErrNotFound.
	GetSession(ctx context.Context, id string) (Session, error)
	// FindSessionByRefresh returns the session refreshHash was issued to and
	// whether it is still that session's current refresh token. ErrNotFound
	// when the hash was never issued.
	FindSessionByRefresh(ctx context.Context, refreshHash []byte) (Session, bool, error)
	// GetSessionLedger reads what a session refresh needs of the presented
	// refresh token's hash, in one round trip from one snapshot: what
	// FindSessionByRefresh(refreshHash), GetUser of that session's user and
	// GetLedger(kind, refreshHash) return at that instant. A missing record
	// is a false Has flag and its zero value, not an error.
	GetSessionLedger(ctx context.Context, kind string, refreshHash []byte) (SessionLedger, error)
	// TouchSession sets LastUsedAt=now; ErrNotFound for an unknown id.
	TouchSession(ctx context.Context, id string, now time.Time) error
	// RevokeSession sets RevokedAt=now if not already revoked (the first
	// RevokedAt is kept); nil either way, ErrNotFound for an unknown id.
	RevokeSession(ctx context.Context, id string, now time.Time) error
	// RevokeUserSessions revokes the user's sessions active at now and
	// returns how many.
	RevokeUserSessions(ctx context.Context, userID string, now time.Time) (int64, error)
	// ListSessions returns the user's active sessions at now, newest first.
	ListSessions(ctx context.Context, userID string, now time.Time) ([]Session, error)
}

// SessionRotation is the write of a session refresh, committed with its
// ledger entry (LedgerStore.CommitLedger): the session's current refresh
// hash OldHash is replaced with NewHash (which FindSessionByRefresh then
// finds current, and OldHash no longer), LastUsedAt set to Now and
// ExpiresAt to ExpiresAt. It applies only while OldHash is current and
// the session is not revoked: of concurrent rotations from one hash, one
// wins.
type SessionRotation struct {
	SessionID        string
	OldHash, NewHash []byte
	Now, ExpiresAt   time.Time
}

// SessionLedger is what GetSessionLedger reads: the session a refresh hash
// was issued to and whether the hash is still its current one, the
// session's user, and the ledger entry of the hash, each with whether it
// exists.
type SessionLedger struct {
	Session    Session
	Current    bool
	HasSession bool
	User       User
	HasUser    bool
	Entry      LedgerEntry
	HasEntry   bool
}

// SigningKey is one Ed25519 key that signs access tokens.
type SigningKey struct {
	ID         string // the JWT "kid"
	Generation int64  // 1, 2, 3...: unique; the highest signs
	Algorithm  string // "EdDSA"
	PublicKey  []byte // raw Ed25519 public key
	PrivateKey []byte // raw Ed25519 private key, or sealed when Sealed
	Sealed     bool
	CreatedAt  time.Time
	// RetireAt: when the key stops signing (its successor is due).
	RetireAt time.Time
	// ExpiresAt: when no token it signed can still be valid; it is dropped
	// from the JWKS and may be deleted after this.
	ExpiresAt time.Time
}

// KeyStore keeps signing keys.
type KeyStore interface {
	// InsertSigningKey inserts k; ErrConflict when a key with the same
	// Generation exists (another replica rotated first).
	InsertSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns all keys, highest Generation first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateSigningKey replaces PrivateKey, Sealed, RetireAt and ExpiresAt of
	// the key k.ID, provided its stored PrivateKey is still prev (another
	// replica may have re-sealed it first); ErrNotFound when the key is gone
	// or its PrivateKey is no longer prev.
	UpdateSigningKey(ctx context.Context, k SigningKey, prev []byte) error
	// DeleteSigningKeys deletes keys with ExpiresAt <= now (a zero ExpiresAt
	// never expires).
	DeleteSigningKeys(ctx context.Context, now time.Time) (int64, error)
}

// OAuthState is a pending GitHub login started by GET /auth/github/authorize.
type OAuthState struct {
	Hash []byte // SHA-256 of the state value
	// Verifier is the PKCE verifier, sealed under a key derived from the
	// state. A login started without PKCE (?pkce=false) seals an empty one.
	Verifier    []byte
	RedirectURI string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// StateStore keeps OAuth states. A state can be taken once.
type StateStore interface {
	// PutOAuthState inserts s; ErrConflict for a duplicate hash.
	PutOAuthState(ctx context.Context, s OAuthState) error
	// GetOAuthState returns the state without taking it. ErrNotFound when
	// unknown, already taken, or expired at now.
	GetOAuthState(ctx context.Context, hash []byte, now time.Time) (OAuthState, error)
	// TakeOAuthState deletes and returns the state. ErrNotFound when unknown,
	// already taken, or expired at now (an expired state is deleted too).
	TakeOAuthState(ctx context.Context, hash []byte, now time.Time) (OAuthState, error)
	// PurgeOAuthStates deletes states expired at now (a zero ExpiresAt counts
	// as expired, as in TakeOAuthState) and returns how many.
	PurgeOAuthStates(ctx context.Context, now time.Time) (int64, error)
}

// AuditEvent is one security-relevant event. It never holds a secret.
type AuditEvent struct {
	ID        int64 // assigned by the store
	Time      time.Time
	Type      string // one of audit.Type*: "github_refresh", "signin", "session_refresh", "reuse_detected", "revoke"
	Outcome   string // one of audit.Outcome*: "ok", "replayed", "rejected", "upstream_error", ...
	UserID    string
	SessionID string
	IPAddress string
	RequestID string
	Detail    string
}

// AuditStore keeps the audit trail.
type AuditStore interface {
	// AppendAudit records e; the store assigns its ID, which only grows.
	AppendAudit(ctx context.Context, e AuditEvent) error
	// AppendAudits records events in one transaction, in slice order: their
	// IDs grow in that order. All or none are stored.
	AppendAudits(ctx context.Context, events []AuditEvent) error
	// ListAudit returns up to limit events, newest first; none for limit <= 0.
	ListAudit(ctx context.Context, limit int) ([]AuditEvent, error)
	// QueryAudit returns the events f selects, newest first.
	QueryAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// PurgeAudit deletes up to limit events with a Time before before (and
	// events without a Time), oldest first, and returns how many; none for
	// limit <= 0. The limit keeps one call short: callers repeat it while
	// it returns limit.
	PurgeAudit(ctx context.Context, before time.Time, limit int) (int64, error)
}

// AuditFilter selects audit events. Its conditions combine with AND.
type AuditFilter struct {
	UserID string    // only this user's events; "" for every user's
	Since  time.Time // only events whose Time is at or after Since; zero for all
	Limit  int       // at most this many, the newest; none for Limit <= 0
}
