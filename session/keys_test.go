package session_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/session"
)

type jwk struct {
	Kty, Crv, X, Kid, Alg, Use string
}

func jwks(t *testing.T, svc *session.Service) []jwk {
	t.Helper()
	b, err := svc.JWKS(context.Background())
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	var set struct{ Keys []jwk }
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("JWKS json: %v", err)
	}
	return set.Keys
}

func kids(keys []jwk) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.Kid)
	}
	return out
}

// kidOf reads the kid header of an access token.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	tok, err := jwt.ParseSigned(token, allAlgs)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return tok.Headers[0].KeyID
}

func TestEnsureKeysGeneratesFirstKey(t *testing.T) {
	e := newEnv(t, session.Config{})
	ctx := context.Background()
	for range 2 { // the second start finds the key
		if err := e.svc.EnsureKeys(ctx); err != nil {
			t.Fatalf("EnsureKeys: %v", err)
		}
	}
	keys, err := e.store.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("%d keys, want 1", len(keys))
	}
	k := keys[0]
	if k.Generation != 1 || k.Algorithm != "EdDSA" || k.Sealed || len(k.PublicKey) != ed25519.PublicKeySize {
		t.Errorf("key = gen %d alg %s sealed %v publen %d", k.Generation, k.Algorithm, k.Sealed, len(k.PublicKey))
	}
	if !bytes.Equal(ed25519.PrivateKey(k.PrivateKey).Public().(ed25519.PublicKey), k.PublicKey) {
		t.Error("stored private key does not match public key")
	}
	now := e.clock.Now()
	if !k.RetireAt.Equal(now.Add(session.DefaultKeyRotation)) || !k.ExpiresAt.After(k.RetireAt.Add(session.DefaultAccessTTL-time.Second)) {
		t.Errorf("RetireAt %v ExpiresAt %v", k.RetireAt, k.ExpiresAt)
	}
	got := jwks(t, e.svc)
	want := []jwk{{Kty: "OKP", Crv: "Ed25519", X: b64(k.PublicKey), Kid: k.ID, Alg: "EdDSA", Use: "sig"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("JWKS (-want +got):\n%s", d)
	}
	u := e.newUser(t, "a@example.com")
	if kid := kidOf(t, e.open(t, e.svc, u).AccessToken); kid != k.ID {
		t.Errorf("token kid %q, want %q", kid, k.ID)
	}
}

func TestSealedPrivateKey(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	e := newEnv(t, session.Config{SecretKey: secret})
	ctx := context.Background()
	if err := e.svc.EnsureKeys(ctx); err != nil {
		t.Fatalf("EnsureKeys: %v", err)
	}
	keys, err := e.store.ListSigningKeys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %d, err %v", len(keys), err)
	}
	k := keys[0]
	if !k.Sealed {
		t.Fatal("key not marked sealed")
	}
	raw, err := seal.Open(secret, "flashauth signing key v1", k.PrivateKey, []byte(k.ID))
	if err != nil {
		t.Fatalf("opening the stored key: %v", err)
	}
	if len(raw) != ed25519.PrivateKeySize || !bytes.Equal(ed25519.PrivateKey(raw).Public().(ed25519.PublicKey), k.PublicKey) {
		t.Fatal("sealed key does not hold the private key")
	}
	if bytes.Contains(k.PrivateKey, raw[:ed25519.SeedSize]) {
		t.Fatal("store row holds the raw private key")
	}

	// The key works for signing...
	u := e.newUser(t, "a@example.com")
	iss := e.open(t, e.svc, u)
	if _, err := e.svc.Authenticate(ctx, iss.AccessToken); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	// ...but not for a replica with another secret or none.
	for name, cfg := range map[string]session.Config{
		"wrong secret": {SecretKey: bytes.Repeat([]byte{8}, 32)},
		"no secret":    {},
	} {
		if err := e.replica(t, cfg).EnsureKeys(ctx); err == nil {
			t.Errorf("%s: EnsureKeys succeeded", name)
		}
	}
	// Verifying needs only the public key.
	if _, err := e.replica(t, session.Config{}).Authenticate(ctx, iss.AccessToken); err != nil {
		t.Errorf("replica without secret cannot verify: %v", err)
	}
}

func TestNewRejectsShortSecret(t *testing.T) {
	e := newEnv(t, session.Config{})
	if _, err := session.New(e.store, nil, session.Config{}); err == nil {
		t.Error("New without ledger succeeded")
	}
	l := newLedger(e)
	if _, err := session.New(e.store, l, session.Config{SecretKey: make([]byte, 31)}); err == nil {
		t.Error("New with a 31-byte secret succeeded")
	}
}

func TestKeyRotation(t *testing.T) {
	const rotation = 24 * time.Hour
	e := newEnv(t, session.Config{KeyRotation: rotation, AccessTTL: time.Hour})
	ctx := context.Background()
	if err := e.svc.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	u := e.newUser(t, "a@example.com")

	e.clock.Advance(rotation - 30*time.Minute)
	old := e.open(t, e.svc, u) // signed by the first key shortly before retirement
	oldKid := kidOf(t, old.AccessToken)

	e.clock.Advance(31 * time.Minute) // the first key is retired
	fresh := e.open(t, e.svc, u)
	newKid := kidOf(t, fresh.AccessToken)
	if newKid == oldKid {
		t.Fatal("token after retirement signed with the retired key")
	}
	for name, tok := range map[string]string{"old": old.AccessToken, "new": fresh.AccessToken} {
		if _, err := e.svc.Authenticate(ctx, tok); err != nil {
			t.Errorf("%s token: %v", name, err)
		}
	}
	if d := cmp.Diff([]string{newKid, oldKid}, kids(jwks(t, e.svc))); d != "" {
		t.Errorf("JWKS kids (-want +got):\n%s", d)
	}

	// Past the old key's expiry no token of it can be valid: it leaves the
	// JWKS and the store.
	e.clock.Advance(time.Hour + 2*time.Minute)
	if err := e.svc.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{newKid}, kids(jwks(t, e.svc))); d != "" {
		t.Errorf("JWKS kids (-want +got):\n%s", d)
	}
	keys, err := e.store.ListSigningKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].ID != newKid {
		t.Errorf("stored keys %v, err %v; want only %s", keys, err, newKid)
	}
	wantCode(t, authErr(e.svc, old.AccessToken), "AUTH_REQUIRED")
}

func TestConcurrentRotationMakesOneGeneration(t *testing.T) {
	const rotation = 24 * time.Hour
	e := newEnv(t, session.Config{KeyRotation: rotation})
	ctx := context.Background()
	replicas := []*session.Service{e.svc}
	for range 3 {
		replicas = append(replicas, e.replica(t, session.Config{KeyRotation: rotation}))
	}
	ensureAll := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, len(replicas))
		for i, r := range replicas {
			wg.Go(func() { errs[i] = r.EnsureKeys(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("replica %d EnsureKeys: %v", i, err)
			}
		}
	}
	ensureAll() // first start, all at once
	e.clock.Advance(rotation + time.Second)
	ensureAll() // rotation, all at once

	keys, err := e.store.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var gens []int64
	for _, k := range keys {
		gens = append(gens, k.Generation)
	}
	if d := cmp.Diff([]int64{2, 1}, gens); d != "" {
		t.Fatalf("generations (-want +got):\n%s", d)
	}
	u := e.newUser(t, "a@example.com")
	for i, r := range replicas {
		tok := e.open(t, r, u).AccessToken
		if kid := kidOf(t, tok); kid != keys[0].ID {
			t.Errorf("replica %d signs with %s, want %s", i, kid, keys[0].ID)
		}
		for j, v := range replicas {
			if _, err := v.Authenticate(ctx, tok); err != nil {
				t.Errorf("replica %d cannot verify replica %d's token: %v", j, i, err)
			}
		}
	}
}

func TestReplicaVerifiesKeyRotatedElsewhere(t *testing.T) {
	const rotation = 24 * time.Hour
	e := newEnv(t, session.Config{KeyRotation: rotation})
	b := e.replica(t, session.Config{KeyRotation: rotation})
	ctx := context.Background()
	for _, r := range []*session.Service{e.svc, b} {
		if err := r.EnsureKeys(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(rotation + time.Second)
	u := e.newUser(t, "a@example.com")
	tok := e.open(t, e.svc, u).AccessToken // e.svc rotates; b has not looked
	if _, err := b.Authenticate(ctx, tok); err != nil {
		t.Fatalf("replica b: %v", err)
	}
}
