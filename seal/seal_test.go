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
