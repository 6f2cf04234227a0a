package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
)

// signingKey returns key generation gen, created at created, signing for a
// day and verifiable for a day and an hour.
func signingKey(gen int64, created time.Time) flashauth.SigningKey {
	return flashauth.SigningKey{
		ID: fmt.Sprintf("kid-%d", gen), Generation: gen, Algorithm: "EdDSA",
		PublicKey:  bytes.Repeat([]byte{byte(gen)}, 32),
		PrivateKey: bytes.Repeat([]byte{byte(0x80 + gen)}, 64),
		Sealed:     gen%2 == 0,
		CreatedAt:  created, RetireAt: created.Add(24 * time.Hour), ExpiresAt: created.Add(25 * time.Hour),
	}
}

func testKeys(t *testing.T, open func(*testing.T) flashauth.Store) {
	k1, k2, k3 := signingKey(1, base), signingKey(2, at(24*time.Hour)), signingKey(3, at(48*time.Hour))
	insert := func(t *testing.T, st flashauth.Store, keys ...flashauth.SigningKey) {
		t.Helper()
		for _, k := range keys {
			must(t, "InsertSigningKey "+k.ID, st.InsertSigningKey(t.Context(), k))
		}
	}
	list := func(t *testing.T, st flashauth.Store) []flashauth.SigningKey {
		t.Helper()
		keys, err := st.ListSigningKeys(t.Context())
		must(t, "ListSigningKeys", err)
		return keys
	}

	tests := []struct {
		name string
		run  func(t *testing.T, st flashauth.Store)
	}{
		{"empty", func(t *testing.T, st flashauth.Store) {
			if keys := list(t, st); len(keys) != 0 {
				t.Errorf("new store has %d keys", len(keys))
			}
		}},
		{"list highest generation first", func(t *testing.T, st flashauth.Store) {
			insert(t, st, k2, k1, k3)
			diff(t, "keys", []flashauth.SigningKey{k3, k2, k1}, list(t, st))
		}},
		{"same generation conflicts", func(t *testing.T, st flashauth.Store) {
			insert(t, st, k1, k2)
			rival := signingKey(2, at(24*time.Hour))
			rival.ID = "kid-rival"
			wantErr(t, "InsertSigningKey", st.InsertSigningKey(t.Context(), rival), flashauth.ErrConflict)
			diff(t, "keys", []flashauth.SigningKey{k2, k1}, list(t, st))
		}},
		{"update only from the expected private key", func(t *testing.T, st flashauth.Store) {
			insert(t, st, k1, k2)
			resealed := k1
			resealed.PrivateKey = bytes.Repeat([]byte{0xee}, 80)
			resealed.Sealed = true
			resealed.RetireAt = at(time.Hour)
			resealed.ExpiresAt = at(2 * time.Hour)
			must(t, "UpdateSigningKey", st.UpdateSigningKey(t.Context(), resealed, k1.PrivateKey))
			diff(t, "keys", []flashauth.SigningKey{k2, resealed}, list(t, st))
			// A rival that read the old private key loses.
			rival := k1
			rival.PrivateKey = bytes.Repeat([]byte{0xdd}, 80)
			wantErr(t, "UpdateSigningKey from a stale key", st.UpdateSigningKey(t.Context(), rival, k1.PrivateKey), flashauth.ErrNotFound)
			missing := signingKey(9, base)
			wantErr(t, "UpdateSigningKey of a missing key", st.UpdateSigningKey(t.Context(), missing, missing.PrivateKey), flashauth.ErrNotFound)
			diff(t, "keys", []flashauth.SigningKey{k2, resealed}, list(t, st))
		}},
		{"delete expired", func(t *testing.T, st flashauth.Store) {
			forever := signingKey(4, base)
			forever.ExpiresAt = time.Time{} // never expires
			insert(t, st, k1, k2, k3, forever)
			n, err := st.DeleteSigningKeys(t.Context(), k2.ExpiresAt)
			must(t, "DeleteSigningKeys", err)
			if n != 2 {
				t.Errorf("DeleteSigningKeys deleted %d, want 2", n)
			}
			diff(t, "keys left", []flashauth.SigningKey{forever, k3}, list(t, st))
			n, err = st.DeleteSigningKeys(t.Context(), k2.ExpiresAt)
			must(t, "DeleteSigningKeys again", err)
			if n != 0 {
				t.Errorf("second DeleteSigningKeys deleted %d, want 0", n)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}
