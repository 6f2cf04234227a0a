package seal

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	secret := []byte("ghr_example")
	aad := Hash("ghr_example")
	blob, err := Seal(secret, "ctx", []byte("hello"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, []byte("hello")) || bytes.Contains(blob, secret) {
		t.Fatal("blob holds plaintext or secret")
	}
	got, err := Open(secret, "ctx", blob, aad)
	if err != nil || string(got) != "hello" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	for name, tc := range map[string]struct {
		secret []byte
		info   string
		blob   []byte
		aad    []byte
	}{
		"wrong secret": {[]byte("ghr_other"), "ctx", blob, aad},
		"wrong info":   {secret, "other", blob, aad},
		"wrong aad":    {secret, "ctx", blob, Hash("x")},
		"tampered":     {secret, "ctx", append(append([]byte{}, blob[:len(blob)-1]...), blob[len(blob)-1]^1), aad},
		"short":        {secret, "ctx", blob[:5], aad},
		"bad version":  {secret, "ctx", append([]byte{9}, blob[1:]...), aad},
	} {
		if _, err := Open(tc.secret, tc.info, tc.blob, tc.aad); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: err = %v, want ErrOpen", name, err)
		}
	}
}

func TestSealNonceUnique(t *testing.T) {
	a, _ := Seal([]byte("s"), "i", []byte("p"), nil)
	b, _ := Seal([]byte("s"), "i", []byte("p"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are equal")
	}
}

func TestHash(t *testing.T) {
	if len(Hash("a")) != 32 || bytes.Equal(Hash("a"), Hash("b")) {
		t.Fatal("bad hash")
	}
}

// key is HKDF-SHA256 without a salt, as crypto/hkdf computes it, for
// secrets shorter and longer than a block and than its stack buffer, and
// infos of every length it may meet.
func TestKeyIsHKDF(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 55, 56, 63, 64, 65, 100, 191, 192, 193, 255, 256, 257, 1000, 4096} {
		secret := make([]byte, n)
		if _, err := rand.Read(secret); err != nil {
			t.Fatal(err)
		}
		for _, info := range []string{"", "flashauth ledger github_refresh", strings.Repeat("i", 127), strings.Repeat("i", 128), strings.Repeat("i", 300)} {
			want, err := hkdf.Key(sha256.New, secret, nil, info, 32)
			if err != nil {
				t.Fatal(err)
			}
			if got := key(secret, info); !bytes.Equal(got[:], want) {
				t.Fatalf("secret of %d bytes, info of %d: key %x, hkdf.Key %x", n, len(info), got, want)
			}
		}
	}
}

// BenchmarkSeal seals a ledger outcome's size of plaintext under a GitHub
// refresh token: key derivation, AES-GCM, nonce.
func BenchmarkSeal(b *testing.B) {
	secret := []byte("ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d16D5B1A9Dc86A1498")
	plaintext := make([]byte, 300)
	aad := Hash(string(secret))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(secret, "flashauth ledger github_refresh", plaintext, aad); err != nil {
			b.Fatal(err)
		}
	}
}
