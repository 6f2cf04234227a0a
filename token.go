package flashauth

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// MaxTokenLength bounds a presented refresh token, GitHub's or a session's.
const MaxTokenLength = 4096

// ValidToken reports whether s is acceptable as a presented token, code or
// state: non-empty, at most max printable ASCII characters without spaces.
// It is the one shape check of the service; what else a value must be is
// its owner's business.
func ValidToken(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// NewID returns a random UUIDv4 string: the id of a user, an organization or
// a session.
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new id: random: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
