package session_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/session"
)

// TestSecretKeyRetiresClearKey: a deployment that ran without
// FLASHAUTH_SECRET_KEY has its private signing key in the database in
// clear. Once a secret key is configured, that key must stop signing at
// once and stop verifying as soon as the tokens it signed have expired, so
// a copy of the database cannot mint tokens with it for the rest of its
// rotation period.
func TestSecretKeyRetiresClearKey(t *testing.T) {
	const ttl = time.Hour
	e := newEnv(t, session.Config{AccessTTL: ttl})
	ctx := context.Background()
	clearKid, clearPriv := signingKey(t, e)
	u := e.newUser(t, "a@example.com")
	before := e.open(t, e.svc, u)

	sealed := e.replica(t, session.Config{AccessTTL: ttl, SecretKey: bytes.Repeat([]byte{9}, 32)})
	if err := sealed.EnsureKeys(ctx); err != nil {
		t.Fatalf("EnsureKeys with a secret key: %v", err)
	}
	keys, err := e.store.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || !keys[0].Sealed || keys[0].ID == clearKid {
		t.Fatalf("newest key %s sealed=%v of %d; want a sealed successor of %s", keys[0].ID, keys[0].Sealed, len(keys), clearKid)
	}
	// A copy of the database taken now holds no private key in clear.
	for _, k := range keys {
		if !k.Sealed || bytes.Contains(k.PrivateKey, clearPriv.Seed()) {
			t.Errorf("key %s is stored in clear (sealed=%v)", k.ID, k.Sealed)
		}
	}
	after := e.open(t, sealed, u)
	if kid := kidOf(t, after.AccessToken); kid != keys[0].ID {
		t.Errorf("signed with %s, want the sealed key %s", kid, keys[0].ID)
	}
	// Tokens the clear key signed before stay valid until they expire.
	if _, err := sealed.Authenticate(ctx, before.AccessToken); err != nil {
		t.Errorf("token signed before the secret key was set: %v", err)
	}
	if d := cmp.Diff([]string{keys[0].ID, clearKid}, kids(jwks(t, sealed))); d != "" {
		t.Errorf("JWKS kids (-want +got):\n%s", d)
	}

	// Once they have, the clear key is refused and unpublished.
	e.clock.Advance(ttl + 3*time.Minute)
	forged := sign(t, jose.EdDSA, ed25519.PrivateKey(clearPriv), clearKid, claimsFor(e.clock.Now(), u, after.SessionID))
	wantCode(t, authErr(sealed, forged), "AUTH_REQUIRED")
	if d := cmp.Diff([]string{keys[0].ID}, kids(jwks(t, sealed))); d != "" {
		t.Errorf("JWKS kids (-want +got):\n%s", d)
	}
	// A replica without the secret key cannot sign any more: every replica
	// needs the same FLASHAUTH_SECRET_KEY.
	if err := e.svc.EnsureKeys(ctx); err == nil {
		t.Error("replica without the secret key signs with a sealed key")
	}
}

// TestAccessTokenNeverOutlivesItsKey: a key's expiry is computed from the
// AccessTTL in force when it was made. After the TTL is raised, a token
// must not claim to live longer than its key is published and accepted.
func TestAccessTokenNeverOutlivesItsKey(t *testing.T) {
	const rotation = 24 * time.Hour
	e := newEnv(t, session.Config{KeyRotation: rotation, AccessTTL: time.Hour})
	ctx := context.Background()
	if err := e.svc.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	longer := e.replica(t, session.Config{KeyRotation: rotation, AccessTTL: 12 * time.Hour})
	u := e.newUser(t, "a@example.com")
	e.clock.Advance(rotation - time.Hour)
	iss := e.open(t, longer, u)
	if !iss.AccessExpiresAt.After(e.clock.Now()) {
		t.Fatalf("access token expires at %v, now %v", iss.AccessExpiresAt, e.clock.Now())
	}
	e.clock.Set(iss.AccessExpiresAt.Add(-time.Second))
	if _, err := longer.Authenticate(ctx, iss.AccessToken); err != nil {
		t.Errorf("token refused before its announced expiry: %v", err)
	}
}

// TestSecretKeyRotation: with FLASHAUTH_SECRET_KEY set to a new key and the
// previous one in FLASHAUTH_SECRET_KEY_OLD, keys sealed under the old key
// still open, are re-sealed under the new one at start, keep signing (same
// kid, so issued tokens stay valid), and afterwards the old key is not
// needed and no longer opens anything.
func TestSecretKeyRotation(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 40)
	e := newEnv(t, session.Config{SecretKey: oldKey})
	ctx := context.Background()
	if err := e.svc.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	u := e.newUser(t, "a@example.com")
	before := e.open(t, e.svc, u)
	kid := kidOf(t, before.AccessToken)

	// A new key alone cannot open what the old one sealed.
	if err := e.replica(t, session.Config{SecretKey: newKey}).EnsureKeys(ctx); err == nil {
		t.Fatal("a replica with only the new secret key signs with a key sealed under the old one")
	}

	rotated := e.replica(t, session.Config{SecretKey: newKey, OldSecretKeys: [][]byte{oldKey}})
	if err := rotated.EnsureKeys(ctx); err != nil {
		t.Fatalf("EnsureKeys with the old key accepted: %v", err)
	}
	keys, err := e.store.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].ID != kid || !keys[0].Sealed {
		t.Fatalf("keys after rotation: %d, newest %s sealed=%v; want %s re-sealed in place", len(keys), keys[0].ID, keys[0].Sealed, kid)
	}
	if _, err := seal.Open(newKey, "flashauth signing key v1", keys[0].PrivateKey, []byte(kid)); err != nil {
		t.Errorf("the key is not sealed under the new secret key: %v", err)
	}
	if _, err := seal.Open(oldKey, "flashauth signing key v1", keys[0].PrivateKey, []byte(kid)); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("the old secret key still opens the stored key: %v", err)
	}
	if _, err := rotated.Authenticate(ctx, before.AccessToken); err != nil {
		t.Errorf("token issued before the rotation: %v", err)
	}
	if got := kidOf(t, e.open(t, rotated, u).AccessToken); got != kid {
		t.Errorf("signed with %s after the rotation, want %s", got, kid)
	}

	// Once every replica has restarted, the old key can go.
	if err := e.replica(t, session.Config{SecretKey: newKey}).EnsureKeys(ctx); err != nil {
		t.Errorf("a replica with only the new secret key: %v", err)
	}
	// A replica still on the old key alone cannot sign any more.
	if err := e.replica(t, session.Config{SecretKey: oldKey}).EnsureKeys(ctx); err == nil {
		t.Error("a replica with only the old secret key still signs")
	}
}

func TestOldSecretKeysNeedANewOne(t *testing.T) {
	e := newEnv(t, session.Config{})
	for _, cfg := range []session.Config{
		{OldSecretKeys: [][]byte{bytes.Repeat([]byte{1}, 32)}},
		{SecretKey: bytes.Repeat([]byte{2}, 32), OldSecretKeys: [][]byte{[]byte("short")}},
	} {
		if _, err := session.New(e.store, newLedger(e), cfg); err == nil {
			t.Errorf("session.New accepted %d old keys with a %d-byte secret key", len(cfg.OldSecretKeys), len(cfg.SecretKey))
		}
	}
}
