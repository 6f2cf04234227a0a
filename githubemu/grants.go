package githubemu

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// Token shapes of github.com: a prefix and random [A-Za-z0-9].
const (
	accessPrefix  = "ghu_"
	refreshPrefix = "ghr_"
	classicPrefix = "gho_"
	accessLen     = 36
	refreshLen    = 76
	// sweepEvery bounds memory: after this many codes and grants issued,
	// expired ones are dropped even if nobody presents them again.
	sweepEvery = 1024
)

// ErrUnknownUser is returned for a user id the emulator does not know.
var ErrUnknownUser = errors.New("githubemu: unknown user")

// Grant is a token pair as GitHub hands it out after a sign-in or a refresh.
// RefreshToken and the durations are empty for classic (non-expiring) tokens.
type Grant struct {
	AccessToken           string
	RefreshToken          string
	ExpiresIn             time.Duration
	RefreshTokenExpiresIn time.Duration
}

// grant is one live token pair. Refreshing or revoking it removes both
// tokens from the emulator's maps: that is what kills them.
type grant struct {
	userID         int64
	accessToken    string
	refreshToken   string
	accessExpires  time.Time // zero: never
	refreshExpires time.Time // zero: never
}

type authCode struct {
	userID      int64
	redirectURI string // as resolved at authorize; "" when none was given
	challenge   string // PKCE S256 challenge; "" without PKCE
	expires     time.Time
}

const alphanum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomToken returns prefix followed by n characters of [A-Za-z0-9] from
// crypto/rand, without modulo bias.
func randomToken(prefix string, n int) string {
	out := make([]byte, len(prefix), len(prefix)+n)
	copy(out, prefix)
	buf := make([]byte, n+n/2)
	for len(out) < len(prefix)+n {
		rand.Read(buf) // never fails (crypto/rand panics on failure since Go 1.24)
		for _, b := range buf {
			// 248 = 4*62: bytes at or above it would favour the first letters.
			if b < 248 && len(out) < len(prefix)+n {
				out = append(out, alphanum[b%62])
			}
		}
	}
	return string(out)
}

// randomCode returns a 20-hex-digit code, the shape of GitHub's codes.
func randomCode() string {
	b := make([]byte, 10)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// issueLocked creates a live token pair for userID.
func (e *Emulator) issueLocked(userID int64, now time.Time) *grant {
	e.sweepLocked(now)
	g := &grant{userID: userID}
	if e.expiring {
		g.accessToken = randomToken(accessPrefix, accessLen)
		g.refreshToken = randomToken(refreshPrefix, refreshLen)
		g.accessExpires = now.Add(e.cfg.AccessTokenTTL)
		g.refreshExpires = now.Add(e.cfg.RefreshTokenTTL)
		e.refresh[g.refreshToken] = g
	} else {
		g.accessToken = randomToken(classicPrefix, accessLen)
	}
	e.access[g.accessToken] = g
	return g
}

// killLocked invalidates both tokens of g.
func (e *Emulator) killLocked(g *grant) {
	delete(e.access, g.accessToken)
	if g.refreshToken != "" {
		delete(e.refresh, g.refreshToken)
	}
}

// sweepLocked drops expired codes and dead grants every sweepEvery issues.
func (e *Emulator) sweepLocked(now time.Time) {
	if e.issued++; e.issued < sweepEvery {
		return
	}
	e.issued = 0
	for k, c := range e.codes {
		if !now.Before(c.expires) {
			delete(e.codes, k)
		}
	}
	for _, g := range e.refresh {
		if !now.Before(g.refreshExpires) {
			e.killLocked(g)
		}
	}
}

// grantOf converts g to the exported form.
func (e *Emulator) grantOf(g *grant) Grant {
	out := Grant{AccessToken: g.accessToken, RefreshToken: g.refreshToken}
	if e.expiring {
		out.ExpiresIn = e.cfg.AccessTokenTTL
		out.RefreshTokenExpiresIn = e.cfg.RefreshTokenTTL
	}
	return out
}

// MintGrant issues a fresh token pair for the user, as a sign-in would.
// Earlier grants of the user stay valid, as on GitHub.
func (e *Emulator) MintGrant(userID int64) (Grant, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.users[userID]; !ok {
		return Grant{}, ErrUnknownUser
	}
	return e.grantOf(e.issueLocked(userID, e.clock.Now())), nil
}

// RevokeGrant invalidates the token pair that token (an access or a refresh
// token) belongs to. Unknown tokens are ignored.
func (e *Emulator) RevokeGrant(token string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.revokeLocked(token)
}

func (e *Emulator) revokeLocked(token string) bool {
	g, ok := e.access[token]
	if !ok {
		g, ok = e.refresh[token]
	}
	if ok {
		e.killLocked(g)
	}
	return ok
}

// revokeUserLocked invalidates every token pair of the user.
func (e *Emulator) revokeUserLocked(userID int64) {
	for _, g := range e.access {
		if g.userID == userID {
			e.killLocked(g)
		}
	}
	for _, g := range e.refresh {
		if g.userID == userID {
			e.killLocked(g)
		}
	}
}

// userForAccessLocked returns the owner of a live, unexpired access token.
func (e *Emulator) userForAccessLocked(token string, now time.Time) (*userRecord, bool) {
	g, ok := e.access[token]
	if !ok || !g.accessExpires.IsZero() && !now.Before(g.accessExpires) {
		return nil, false
	}
	u, ok := e.users[g.userID]
	return u, ok
}
