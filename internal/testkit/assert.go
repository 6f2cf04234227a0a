package testkit

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/flashbacktech/flashauth"
)

// WantCode fails the test unless err is (or wraps) a *flashauth.Error with
// code.
func WantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	var fe *flashauth.Error
	if !errors.As(err, &fe) || fe.Code != code {
		tb.Fatalf("err = %v, want code %s", err, code)
	}
}

// RandomHex returns n random bytes, hex-encoded: names no other test run
// uses.
func RandomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}
