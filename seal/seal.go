// Package seal derives lookup hashes from secrets and seals data under keys
// derived from them, so that a copy of the database alone never yields a
// usable secret: a row is found by SHA-256 of the secret and can only be
// opened by someone who presents the secret itself.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// version prefixes every sealed blob so the format can change later.
const version byte = 1

// ErrOpen is returned when a blob cannot be opened: wrong secret, wrong
// context or tampered data. It tells nothing more, on purpose.
var ErrOpen = errors.New("seal: cannot open")

// Hash returns the SHA-256 of secret: the lookup key under which a store
// keeps anything about it.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// key derives the AES-256 key for secret in the given context (info), with
// HKDF-SHA256.
func key(secret []byte, info string) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, info, 32)
}

// Seal encrypts plaintext with AES-256-GCM under a key derived from secret
// and info. aad (usually the lookup hash) is bound to the blob: it opens
// only with the same aad.
func Seal(secret []byte, info string, plaintext, aad []byte) ([]byte, error) {
	gcm, err := newGCM(secret, info)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+gcm.NonceSize(), 1+gcm.NonceSize()+len(plaintext)+gcm.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return gcm.Seal(out, out[1:1+gcm.NonceSize()], plaintext, aad), nil
}

// Open reverses Seal. Any failure is ErrOpen.
func Open(secret []byte, info string, blob, aad []byte) ([]byte, error) {
	gcm, err := newGCM(secret, info)
	if err != nil {
		return nil, err
	}
	if len(blob) < 1+gcm.NonceSize()+gcm.Overhead() || blob[0] != version {
		return nil, ErrOpen
	}
	nonce := blob[1 : 1+gcm.NonceSize()]
	pt, err := gcm.Open(nil, nonce, blob[1+gcm.NonceSize():], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

func newGCM(secret []byte, info string) (cipher.AEAD, error) {
	k, err := key(secret, info)
	if err != nil {
		return nil, fmt.Errorf("seal: derive key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCM(block)
}
