package session

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

const (
	// keySealInfo is the seal context of private keys at rest.
	keySealInfo = "flashauth signing key v1"
	// keySkew pads a key's expiry for clock differences between replicas:
	// one whose clock runs late may sign a little after the others retired
	// the key.
	keySkew = time.Minute
	// keyReloadEvery bounds how stale a replica's view of the keys gets, so
	// a key rotated elsewhere is signed with and published here too.
	keyReloadEvery = time.Minute
	// minReloadGap rate-limits the reloads an unknown kid triggers, so a
	// flood of forged kids cannot hammer the store.
	minReloadGap = time.Second
)

// keyring is an immutable snapshot of the signing keys.
type keyring struct {
	// signer is the newest key, nil when it cannot be used (signErr says why).
	signer   *signingKey
	signErr  error
	byID     map[string]*publicKey
	ordered  []*publicKey // highest generation first
	loadedAt time.Time
}

type signingKey struct {
	signer   jose.Signer
	retireAt time.Time
	// expiresAt is when the key stops verifying; no token it signs may
	// outlive it (it was computed with the AccessTTL of its day).
	expiresAt time.Time
}

type publicKey struct {
	id        string
	key       ed25519.PublicKey
	expiresAt time.Time
}

// EnsureKeys loads the signing keys, generates the first one on first start
// and rotates when the newest is due, then deletes keys no token can need.
// Call it at startup (a failure there is a misconfiguration, e.g. a wrong
// secret key) and periodically; signing and verifying also load lazily.
//
// The first call also seals every key at rest under SecretKey (see
// sealAtRestLocked). Later calls do not: during a rolling change of the
// secret key, a replica still running with the previous configuration must
// not re-seal keys back under the key being replaced.
func (s *Service) EnsureKeys(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if !s.sealed {
		if err := s.sealAtRestLocked(ctx); err != nil {
			return err
		}
		s.sealed = true
	}
	if err := s.reloadLocked(ctx); err != nil {
		return err
	}
	if _, err := s.store.DeleteSigningKeys(ctx, s.cfg.Clock.Now()); err != nil {
		return fmt.Errorf("session: delete expired keys: %w", err)
	}
	return s.ring.Load().signErr
}

// sealAtRestLocked makes every stored key sealed under SecretKey, when one is
// configured:
//   - A key kept in clear (the deployment ran without a secret key) is sealed
//     in place and retired at once: anyone who copied the database before
//     holds it, so it stops signing now and stops verifying once the tokens
//     it may have signed (on any replica, until it reloads) have expired.
//   - A key sealed under one of OldSecretKeys is re-sealed under SecretKey
//     with its dates unchanged.
//
// A key no configured secret opens is left alone: if it is the newest, the
// keyring reports that it cannot sign. The caller holds reloadMu.
func (s *Service) sealAtRestLocked(ctx context.Context) error {
	if len(s.cfg.SecretKey) == 0 {
		return nil
	}
	keys, err := s.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("session: list signing keys: %w", err)
	}
	now := s.cfg.Clock.Now()
	for _, k := range keys {
		if !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
			continue // about to be deleted
		}
		next := k
		priv := k.PrivateKey
		if k.Sealed {
			if _, err := seal.Open(s.cfg.SecretKey, keySealInfo, k.PrivateKey, []byte(k.ID)); err == nil {
				continue
			}
			if priv = s.openOld(k); priv == nil {
				continue
			}
		} else {
			if now.Before(next.RetireAt) {
				next.RetireAt = now
			}
			if cut := now.Add(s.cfg.AccessTTL + keyReloadEvery + keySkew); next.ExpiresAt.IsZero() || cut.Before(next.ExpiresAt) {
				next.ExpiresAt = cut
			}
		}
		if next.PrivateKey, err = seal.Seal(s.cfg.SecretKey, keySealInfo, priv, []byte(k.ID)); err != nil {
			return fmt.Errorf("session: seal key: %w", err)
		}
		next.Sealed = true
		switch err := s.store.UpdateSigningKey(ctx, next, k.PrivateKey); {
		case errors.Is(err, flashauth.ErrNotFound):
			// Another replica sealed or deleted it first.
		case err != nil:
			return fmt.Errorf("session: seal signing key %s: %w", k.ID, err)
		case k.Sealed:
			s.log.Info("signing key re-sealed under the new secret key", "kid", k.ID)
		default:
			s.log.Info("signing key kept in clear sealed and retired", "kid", k.ID)
		}
	}
	return nil
}

// openOld opens k's private key with one of OldSecretKeys, or returns nil.
func (s *Service) openOld(k flashauth.SigningKey) []byte {
	for _, old := range s.cfg.OldSecretKeys {
		if priv, err := seal.Open(old, keySealInfo, k.PrivateKey, []byte(k.ID)); err == nil {
			return priv
		}
	}
	return nil
}

// JWKS returns the JSON Web Key Set of every key whose tokens may still be
// valid, newest first.
func (s *Service) JWKS(ctx context.Context) ([]byte, error) {
	r, err := s.currentRing(ctx)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range r.ordered {
		if !now.Before(k.expiresAt) {
			continue
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key:       k.key,
			KeyID:     k.id,
			Algorithm: string(jose.EdDSA),
			Use:       "sig",
		})
	}
	return json.Marshal(set)
}

// currentRing returns a keyring fit for signing: loaded, not stale, and with
// a newest key that is not retired.
func (s *Service) currentRing(ctx context.Context) (*keyring, error) {
	now := s.cfg.Clock.Now()
	if r := s.ring.Load(); fresh(r, now) {
		return r, nil
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.ring.Load()
	if fresh(old, now) {
		return old, nil // reloaded by someone else while we waited
	}
	if err := s.reloadLocked(ctx); err != nil {
		if old != nil && old.signer != nil && now.Before(old.signer.retireAt) {
			// Stale but still valid: keep serving while the store is away.
			s.log.Warn("signing keys reload failed", "err", err)
			return old, nil
		}
		return nil, err
	}
	return s.ring.Load(), nil
}

// fresh reports whether r may be used without reloading. A keyring whose
// newest key cannot sign (a misconfigured secret) counts as fresh too, so
// that its error is answered without reading the store on every call.
func fresh(r *keyring, now time.Time) bool {
	return r != nil && now.Sub(r.loadedAt) < keyReloadEvery && (r.signer == nil || now.Before(r.signer.retireAt))
}

// publicKeyFor returns the verification key kid names, reloading the keys
// (rate-limited) when kid is unknown: it may have been generated by another
// replica.
func (s *Service) publicKeyFor(ctx context.Context, kid string) (*publicKey, error) {
	now := s.cfg.Clock.Now()
	r := s.ring.Load()
	if k := r.lookup(kid, now); k != nil {
		return k, nil
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if r2 := s.ring.Load(); r2 != r {
		if k := r2.lookup(kid, now); k != nil {
			return k, nil
		}
	}
	if s.ring.Load() != nil && now.Sub(s.lastReload) < minReloadGap {
		return nil, nil
	}
	if err := s.reloadLocked(ctx); err != nil {
		return nil, err
	}
	return s.ring.Load().lookup(kid, now), nil
}

func (r *keyring) lookup(kid string, now time.Time) *publicKey {
	if r == nil {
		return nil
	}
	if k := r.byID[kid]; k != nil && now.Before(k.expiresAt) {
		return k
	}
	return nil
}

// reloadLocked reads the keys, rotates when the newest is due and installs a
// new keyring. The caller holds reloadMu.
func (s *Service) reloadLocked(ctx context.Context) error {
	now := s.cfg.Clock.Now()
	s.lastReload = now
	keys, err := s.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("session: list signing keys: %w", err)
	}
	if len(keys) == 0 || !now.Before(keys[0].RetireAt) {
		gen := int64(1)
		if len(keys) > 0 {
			gen = keys[0].Generation + 1
		}
		k, err := s.generateKey(gen, now)
		if err != nil {
			return err
		}
		switch err := s.store.InsertSigningKey(ctx, k); {
		case errors.Is(err, flashauth.ErrConflict):
			// Another replica rotated first; its key is the one to use.
			s.log.Info("signing key rotated by another replica", "generation", gen)
		case err != nil:
			return fmt.Errorf("session: insert signing key: %w", err)
		default:
			s.log.Info("signing key generated", "kid", k.ID, "generation", gen)
		}
		if keys, err = s.store.ListSigningKeys(ctx); err != nil {
			return fmt.Errorf("session: list signing keys: %w", err)
		}
	}
	s.ring.Store(s.buildRing(keys, now))
	return nil
}

// buildRing turns stored keys (highest generation first) into a keyring.
func (s *Service) buildRing(keys []flashauth.SigningKey, now time.Time) *keyring {
	r := &keyring{byID: make(map[string]*publicKey, len(keys)), loadedAt: now}
	for _, k := range keys {
		if k.Algorithm != string(jose.EdDSA) || len(k.PublicKey) != ed25519.PublicKeySize || !now.Before(k.ExpiresAt) {
			continue
		}
		pk := &publicKey{id: k.ID, key: ed25519.PublicKey(k.PublicKey), expiresAt: k.ExpiresAt}
		r.byID[k.ID] = pk
		r.ordered = append(r.ordered, pk)
	}
	if len(keys) == 0 {
		r.signErr = errors.New("session: no signing key")
		return r
	}
	r.signer, r.signErr = s.openSigner(keys[0])
	return r
}

// openSigner unseals k's private key and makes a signer of it.
func (s *Service) openSigner(k flashauth.SigningKey) (*signingKey, error) {
	priv := k.PrivateKey
	if k.Sealed {
		if len(s.cfg.SecretKey) == 0 {
			return nil, fmt.Errorf("session: signing key %s is sealed and no secret key is configured", k.ID)
		}
		var err error
		if priv, err = seal.Open(s.cfg.SecretKey, keySealInfo, k.PrivateKey, []byte(k.ID)); err != nil {
			if priv = s.openOld(k); priv == nil {
				return nil, fmt.Errorf("session: signing key %s cannot be opened with the configured secret key: %w", k.ID, err)
			}
		}
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("session: signing key %s: malformed private key", k.ID)
	}
	edPriv := ed25519.PrivateKey(priv)
	if !bytes.Equal(edPriv.Public().(ed25519.PublicKey), k.PublicKey) {
		return nil, fmt.Errorf("session: signing key %s: private key does not match public key", k.ID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.EdDSA,
		Key:       jose.JSONWebKey{Key: edPriv, KeyID: k.ID, Algorithm: string(jose.EdDSA)},
	}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("session: signer: %w", err)
	}
	return &signingKey{signer: signer, retireAt: k.RetireAt, expiresAt: k.ExpiresAt}, nil
}

// generateKey makes a new key of the given generation, sealing its private
// part when a secret key is configured.
func (s *Service) generateKey(gen int64, now time.Time) (flashauth.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return flashauth.SigningKey{}, fmt.Errorf("session: generate key: %w", err)
	}
	// The kid is the key's RFC 7638 thumbprint: stable, and unique per key.
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return flashauth.SigningKey{}, fmt.Errorf("session: thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	stored, sealed := []byte(priv), false
	if len(s.cfg.SecretKey) > 0 {
		if stored, err = seal.Seal(s.cfg.SecretKey, keySealInfo, priv, []byte(kid)); err != nil {
			return flashauth.SigningKey{}, fmt.Errorf("session: seal key: %w", err)
		}
		sealed = true
	}
	retire := now.Add(s.cfg.KeyRotation)
	return flashauth.SigningKey{
		ID:         kid,
		Generation: gen,
		Algorithm:  string(jose.EdDSA),
		PublicKey:  pub,
		PrivateKey: stored,
		Sealed:     sealed,
		CreatedAt:  now,
		RetireAt:   retire,
		// No token signed before retirement outlives this.
		ExpiresAt: retire.Add(s.cfg.AccessTTL + keySkew),
	}, nil
}

// RotateKey generates the next generation of signing key now, whatever the
// schedule, sealed like every key this Service generates, and returns it
// without its private part. Every replica signs with it once it reloads its
// keys (within a minute); the previous keys keep verifying the tokens they
// signed until their own expiry. It refuses to rotate when the newest stored
// key cannot be opened with the configured secret key: a key sealed under
// another secret would lock the serving replicas out of signing.
func (s *Service) RotateKey(ctx context.Context) (flashauth.SigningKey, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	now := s.cfg.Clock.Now()
	keys, err := s.store.ListSigningKeys(ctx)
	if err != nil {
		return flashauth.SigningKey{}, fmt.Errorf("session: list signing keys: %w", err)
	}
	gen := int64(1)
	if len(keys) > 0 {
		if _, err := s.openSigner(keys[0]); err != nil {
			return flashauth.SigningKey{}, err
		}
		gen = keys[0].Generation + 1
	}
	k, err := s.generateKey(gen, now)
	if err != nil {
		return flashauth.SigningKey{}, err
	}
	if err := s.store.InsertSigningKey(ctx, k); err != nil {
		// ErrConflict: another replica rotated at the same moment.
		return flashauth.SigningKey{}, fmt.Errorf("session: insert signing key: %w", err)
	}
	s.log.Info("signing key rotated", "kid", k.ID, "generation", gen)
	if err := s.reloadLocked(ctx); err != nil {
		return flashauth.SigningKey{}, err
	}
	k.PrivateKey = nil
	return k, nil
}
