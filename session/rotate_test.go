package session_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/session"
)

// TestRotateKeyNow: an operator's rotation (another process on the same
// store) adds a sealed generation at once; the serving replica signs with it
// after its reload and still verifies tokens of the previous key.
func TestRotateKeyNow(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	e := newEnv(t, session.Config{SecretKey: secret})
	ctx := context.Background()
	if err := e.svc.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	u := e.newUser(t, "a@example.com")
	before := e.open(t, e.svc, u).AccessToken

	admin := e.replica(t, session.Config{SecretKey: secret})
	k, err := admin.RotateKey(ctx)
	if err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	if k.Generation != 2 || !k.Sealed || k.PrivateKey != nil || !k.CreatedAt.Equal(e.clock.Now()) {
		t.Errorf("rotated key: generation %d sealed %v private part returned %v created %v", k.Generation, k.Sealed, k.PrivateKey != nil, k.CreatedAt)
	}
	keys, err := e.store.ListSigningKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].ID != k.ID || !keys[0].Sealed {
		t.Fatalf("stored keys: %d, err %v", len(keys), err)
	}

	// The serving replica picks the new key up when it reloads.
	e.clock.Advance(2 * time.Minute)
	after := e.open(t, e.svc, u).AccessToken
	if kidOf(t, after) != k.ID {
		t.Errorf("after reload the replica signs with %s, want the rotated %s", kidOf(t, after), k.ID)
	}
	for _, tok := range []string{before, after} {
		if _, err := e.svc.Authenticate(ctx, tok); err != nil {
			t.Errorf("Authenticate: %v", err)
		}
	}
	if got := kids(jwks(t, e.svc)); len(got) != 2 || got[0] != k.ID {
		t.Errorf("JWKS kids %v, want the rotated key first and the old one kept", got)
	}
}

// TestRotateKeyRefusesWrongSecret: a rotation under another secret would
// leave the replicas with a newest key they cannot open; it is refused and
// nothing is written.
func TestRotateKeyRefusesWrongSecret(t *testing.T) {
	e := newEnv(t, session.Config{SecretKey: bytes.Repeat([]byte{7}, 32)})
	ctx := context.Background()
	if err := e.svc.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]session.Config{
		"wrong secret": {SecretKey: bytes.Repeat([]byte{8}, 32)},
		"no secret":    {},
	} {
		if _, err := e.replica(t, cfg).RotateKey(ctx); err == nil {
			t.Errorf("%s: RotateKey succeeded", name)
		}
	}
	if keys, err := e.store.ListSigningKeys(ctx); err != nil || len(keys) != 1 {
		t.Fatalf("keys after refused rotations: %d, %v", len(keys), err)
	}
}

// TestRotateKeyOnEmptyStore makes the first generation.
func TestRotateKeyOnEmptyStore(t *testing.T) {
	e := newEnv(t, session.Config{SecretKey: bytes.Repeat([]byte{7}, 32)})
	k, err := e.svc.RotateKey(context.Background())
	if err != nil || k.Generation != 1 || !k.Sealed {
		t.Fatalf("RotateKey: %+v %v", k, err)
	}
}
