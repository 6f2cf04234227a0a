// Package session runs flashauth's own sessions: the Ed25519 keys that sign
// access tokens (generated, rotated and published as a JWKS), the access
// tokens themselves, and the rotating opaque refresh tokens of a session,
// whose reuse after the reuse interval revokes the whole session.
//
// Every error a caller may show is a *flashauth.Error; only the HTTP layer
// turns its code into a status.
package session

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
	"github.com/flashbacktech/flashauth/ledger"
)

// Defaults of Config.
const (
	DefaultIssuer        = "flashauth"
	DefaultAudience      = "flashauth"
	DefaultAccessTTL     = time.Hour
	DefaultRefreshTTL    = 30 * 24 * time.Hour
	DefaultReuseInterval = 10 * time.Second
	DefaultKeyRotation   = 30 * 24 * time.Hour
)

// MinSecretKeyLen is the shortest accepted Config.SecretKey.
const MinSecretKeyLen = 32

// Config configures a Service. Zero values take the defaults.
type Config struct {
	Issuer, Audience string
	// AccessTTL is the lifetime of an access token.
	AccessTTL time.Duration
	// RefreshTTL is how long a session lives after its last refresh.
	RefreshTTL time.Duration
	// ReuseInterval is how long a rotated-out refresh token still gets the
	// answer it got the first time (a lost response can be retried).
	ReuseInterval time.Duration
	// KeyRotation is how long a signing key signs before its successor is
	// generated.
	KeyRotation time.Duration
	// SecretKey (FLASHAUTH_SECRET_KEY), when set, seals private signing keys
	// at rest. At least MinSecretKeyLen bytes.
	SecretKey []byte
	// OldSecretKeys (FLASHAUTH_SECRET_KEY_OLD) are previous secret keys:
	// keys sealed under them still open, and the first EnsureKeys re-seals
	// them under SecretKey. Each at least MinSecretKeyLen bytes.
	OldSecretKeys [][]byte
	Clock         flashauth.Clock
	Logger        *slog.Logger
	// Auditor records session refreshes, detected reuse, logouts and
	// revocations; nil records nothing.
	Auditor flashauth.Auditor
}

// Service issues, verifies, rotates and revokes sessions. It is safe for
// concurrent use; several Services (replicas) may share one store.
type Service struct {
	store  flashauth.Store
	ledger *ledger.Ledger
	cfg    Config
	log    *slog.Logger
	audit  flashauth.Auditor

	// ring is the current immutable snapshot of the signing keys; reloadMu
	// serialises loading and rotating them.
	ring       atomic.Pointer[keyring]
	reloadMu   sync.Mutex
	lastReload time.Time // guarded by reloadMu
	// sealed is set once the first EnsureKeys has sealed every key at
	// rest under SecretKey; guarded by reloadMu.
	sealed bool
}

// Issuer returns the iss of the access tokens the Service signs.
func (s *Service) Issuer() string { return s.cfg.Issuer }

// New returns a Service over store. l must be the process's one ledger.
func New(store flashauth.Store, l *ledger.Ledger, cfg Config) (*Service, error) {
	if store == nil || l == nil {
		return nil, errors.New("session: store and ledger are required")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	if cfg.ReuseInterval <= 0 {
		cfg.ReuseInterval = DefaultReuseInterval
	}
	if cfg.KeyRotation <= 0 {
		cfg.KeyRotation = DefaultKeyRotation
	}
	if len(cfg.SecretKey) > 0 && len(cfg.SecretKey) < MinSecretKeyLen {
		return nil, fmt.Errorf("session: secret key must be at least %d bytes", MinSecretKeyLen)
	}
	if len(cfg.OldSecretKeys) > 0 && len(cfg.SecretKey) == 0 {
		return nil, errors.New("session: old secret keys need a secret key to re-seal under")
	}
	old := make([][]byte, 0, len(cfg.OldSecretKeys))
	for _, k := range cfg.OldSecretKeys {
		if len(k) < MinSecretKeyLen {
			return nil, fmt.Errorf("session: old secret key must be at least %d bytes", MinSecretKeyLen)
		}
		old = append(old, append([]byte(nil), k...))
	}
	cfg.OldSecretKeys = old
	if cfg.Clock == nil {
		cfg.Clock = flashauth.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Auditor == nil {
		cfg.Auditor = audit.Discard
	}
	cfg.SecretKey = append([]byte(nil), cfg.SecretKey...)
	return &Service{store: store, ledger: l, cfg: cfg, log: cfg.Logger, audit: cfg.Auditor}, nil
}

// Meta describes the client a session is opened for.
type Meta struct {
	DeviceInfo json.RawMessage
	IPAddress  string
	UserAgent  string
	Provider   string // e.g. "GITHUB"
}

// Issued is what opening or refreshing a session hands the client. The JSON
// form is the ledger's replay payload, not a wire format.
type Issued struct {
	AccessToken      string    `json:"accessToken"`
	AccessExpiresAt  time.Time `json:"accessExpiresAt"`
	RefreshToken     string    `json:"refreshToken"`
	SessionID        string    `json:"sessionId"`
	UserID           string    `json:"userId,omitempty"` // for the audit trail
	SessionExpiresAt time.Time `json:"sessionExpiresAt"`
	// Replayed and Joined say how a Refresh got its answer: from the
	// committed outcome, or by sharing another caller's rotation in flight.
	// Neither is part of the answer or of what is committed.
	Replayed bool `json:"-"`
	Joined   bool `json:"-"`
}

// Principal is who a valid access token speaks for.
type Principal struct {
	UserID    string
	Email     string
	OrgID     string
	SessionID string
}

// refreshTokenBytes is the entropy of a session refresh token (256 bits).
const refreshTokenBytes = 32

// newRefreshToken returns a fresh opaque refresh token.
func newRefreshToken() (string, error) {
	var b [refreshTokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// wellFormedRefreshToken reports whether tok could be one of ours, so that
// garbage is turned away without touching the store.
func wellFormedRefreshToken(tok string) bool {
	if len(tok) != base64.RawURLEncoding.EncodedLen(refreshTokenBytes) {
		return false
	}
	var b [refreshTokenBytes]byte
	_, err := base64.RawURLEncoding.Decode(b[:], []byte(tok))
	return err == nil
}
