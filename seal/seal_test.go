package seal

import (
	"bytes"
	"errors"
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

// Keys seals and opens what Seal and Open do (either opens what the other
// sealed), derives a secret's cipher once however often it is used, tells
// secrets and contexts apart, and keeps at most 2*size ciphers.
func TestKeys(t *testing.T) {
	k := NewKeys(4)
	secret, aad := []byte("ghr_example"), Hash("ghr_example")
	blob, err := k.Seal(secret, "ctx", []byte("hello"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(secret, "ctx", blob, aad); err != nil || string(got) != "hello" {
		t.Fatalf("Open of Keys.Seal = %q, %v", got, err)
	}
	plain, _ := Seal(secret, "ctx", []byte("again"), aad)
	for range 3 {
		if got, err := k.Open(secret, "ctx", plain, aad); err != nil || string(got) != "again" {
			t.Fatalf("Keys.Open of Seal = %q, %v", got, err)
		}
	}
	if n := len(k.cur) + len(k.prev); n != 1 {
		t.Fatalf("%d ciphers kept after one secret's seal and opens, want 1", n)
	}
	// A kept cipher opens nothing for another secret or context.
	for name, tc := range map[string]struct {
		secret []byte
		info   string
	}{
		"wrong secret": {[]byte("ghr_other"), "ctx"},
		"wrong info":   {secret, "other"},
	} {
		if _, err := k.Open(tc.secret, tc.info, blob, aad); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: err = %v, want ErrOpen", name, err)
		}
	}
	for i := range 20 {
		if _, err := k.Seal([]byte{byte(i)}, "ctx", []byte("p"), nil); err != nil {
			t.Fatal(err)
		}
		if n := len(k.cur) + len(k.prev); n > 8 {
			t.Fatalf("%d ciphers kept, want at most 8", n)
		}
	}
}

// keyID tells apart pairs whose concatenations are equal.
func TestKeyIDUnambiguous(t *testing.T) {
	if keyID([]byte("bc"), "a") == keyID([]byte("c"), "ab") {
		t.Fatal("(a, bc) and (ab, c) share a key id")
	}
}
