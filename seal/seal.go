// Package seal derives lookup hashes from secrets and seals data under keys
// derived from them, so that a copy of the database alone never yields a
// usable secret: a row is found by SHA-256 of the secret and can only be
// opened by someone who presents the secret itself.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
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
// HKDF-SHA256 (RFC 5869) without a salt: hkdf.Key(sha256.New, secret, nil,
// info, 32), computed as its two HMACs over stack buffers rather than
// allocated hash states (a test holds it to hkdf.Key).
func key(secret []byte, info string) [32]byte {
	// Extract: PRK = HMAC(salt, secret), the missing salt being HashLen zeros.
	var salt [sha256.Size]byte
	prk := hmacSHA256(salt[:], secret)
	// Expand: the key is T(1) = HMAC(PRK, info || 0x01), all of it.
	var msg [128]byte
	return hmacSHA256(prk[:], append(append(msg[:0], info...), 1))
}

// hmacSHA256 is HMAC-SHA256 (RFC 2104) for a key of at most one block.
func hmacSHA256(key, msg []byte) [sha256.Size]byte {
	const block = 64
	var pad [block]byte
	copy(pad[:], key)
	for i := range pad {
		pad[i] ^= 0x36
	}
	var stack [block + 256]byte
	in := stack[:0]
	if n := block + len(msg); n > len(stack) {
		in = make([]byte, 0, n)
	}
	inner := sha256.Sum256(append(append(in, pad[:]...), msg...))
	var outer [block + sha256.Size]byte
	for i := range pad {
		outer[i] = pad[i] ^ 0x36 ^ 0x5c
	}
	copy(outer[block:], inner[:])
	return sha256.Sum256(outer[:])
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
	k := key(secret, info)
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCM(block)
}
