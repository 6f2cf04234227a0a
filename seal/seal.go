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
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
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
	return sealWith(gcm, plaintext, aad)
}

// Open reverses Seal. Any failure is ErrOpen.
func Open(secret []byte, info string, blob, aad []byte) ([]byte, error) {
	gcm, err := newGCM(secret, info)
	if err != nil {
		return nil, err
	}
	return openWith(gcm, blob, aad)
}

func sealWith(gcm cipher.AEAD, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+gcm.NonceSize(), 1+gcm.NonceSize()+len(plaintext)+gcm.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return gcm.Seal(out, out[1:1+gcm.NonceSize()], plaintext, aad), nil
}

func openWith(gcm cipher.AEAD, blob, aad []byte) ([]byte, error) {
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

// Keys seals and opens as Seal and Open do, and keeps the ciphers it
// derived for the secrets it saw last, so that a secret presented again
// soon - a replay of the committed outcome of a refresh, by another tab or
// a retry - is opened without deriving its key again: HKDF-SHA256 and the
// AES-GCM key schedule are most of Open's CPU. The ciphers stay in this
// process's memory, never written anywhere; they are found by a SHA-256 of
// the context and the secret (keyID), so only a caller presenting the
// secret reaches one, and the secret itself is not kept. At most 2*size
// are held: when size are, the older generation is dropped. Safe for
// concurrent use; the zero value is not (NewKeys).
type Keys struct {
	size      int
	mu        sync.Mutex
	cur, prev map[[sha256.Size]byte]cipher.AEAD
}

// NewKeys returns a Keys holding the ciphers of the last size to 2*size
// secrets it saw (size at least 1).
func NewKeys(size int) *Keys {
	size = max(size, 1)
	return &Keys{size: size, cur: make(map[[sha256.Size]byte]cipher.AEAD, size)}
}

// Seal is Seal with the cipher of (secret, info) kept for Open.
func (k *Keys) Seal(secret []byte, info string, plaintext, aad []byte) ([]byte, error) {
	gcm, err := k.cipher(secret, info)
	if err != nil {
		return nil, err
	}
	return sealWith(gcm, plaintext, aad)
}

// Open is Open with the cipher of (secret, info) derived once.
func (k *Keys) Open(secret []byte, info string, blob, aad []byte) ([]byte, error) {
	gcm, err := k.cipher(secret, info)
	if err != nil {
		return nil, err
	}
	return openWith(gcm, blob, aad)
}

// cipher returns the kept cipher of (secret, info), or derives and keeps it.
func (k *Keys) cipher(secret []byte, info string) (cipher.AEAD, error) {
	id := keyID(secret, info)
	k.mu.Lock()
	gcm, ok := k.cur[id]
	if !ok {
		if gcm, ok = k.prev[id]; ok {
			k.keep(id, gcm) // still in use: into the current generation
		}
	}
	k.mu.Unlock()
	if ok {
		return gcm, nil
	}
	gcm, err := newGCM(secret, info)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.keep(id, gcm)
	k.mu.Unlock()
	return gcm, nil
}

// keep adds gcm to the current generation, which becomes the previous one
// when full. k.mu is held.
func (k *Keys) keep(id [sha256.Size]byte, gcm cipher.AEAD) {
	if len(k.cur) >= k.size {
		k.prev, k.cur = k.cur, make(map[[sha256.Size]byte]cipher.AEAD, k.size)
	}
	k.cur[id] = gcm
}

// keyID names the cipher of (secret, info): SHA-256 of info's length,
// info and the secret, so that no two pairs share a name.
func keyID(secret []byte, info string) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(info)))
	h.Write(n[:])
	h.Write([]byte(info))
	h.Write(secret)
	var id [sha256.Size]byte
	h.Sum(id[:0])
	return id
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
