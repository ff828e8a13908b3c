package seal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func newTestSealer(t *testing.T) (*Sealer, []byte) {
	t.Helper()
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s, err := New(key)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, key
}

func TestSealerRoundTrip(t *testing.T) {
	s, _ := newTestSealer(t)
	for _, n := range []int{0, 1, 20, 32, 64} {
		secret := bytes.Repeat([]byte{byte(n + 1)}, n)
		sealed, err := s.Seal("alice", secret)
		if err != nil {
			t.Fatalf("Seal(%d bytes): %v", n, err)
		}
		if want := 1 + 24 + n + 16; len(sealed) != want {
			t.Errorf("sealed %d bytes is %d bytes long, want %d (version, nonce, ciphertext, tag)", n, len(sealed), want)
		}
		if sealed[0] != sealVersion {
			t.Errorf("version byte %d, want %d", sealed[0], sealVersion)
		}
		if n >= 8 && bytes.Contains(sealed, secret) {
			t.Errorf("sealed output contains the plaintext")
		}
		got, err := s.Open("alice", sealed)
		if err != nil {
			t.Fatalf("Open(%d bytes): %v", n, err)
		}
		if !bytes.Equal(got, secret) {
			t.Errorf("Open = %x, want %x", got, secret)
		}
	}
}

func TestSealUsesAFreshNonceEachTime(t *testing.T) {
	s, _ := newTestSealer(t)
	a, err := s.Seal("alice", []byte("same secret"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Seal("alice", []byte("same secret"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a[1:25], b[1:25]) || bytes.Equal(a, b) {
		t.Errorf("two seals of the same secret share a nonce or ciphertext")
	}
}

func TestOpenRefuses(t *testing.T) {
	s, _ := newTestSealer(t)
	other, _ := newTestSealer(t)
	secret := []byte("12345678901234567890")
	sealed, err := s.Seal("alice", secret)
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(sealed)) }
	tests := []struct {
		name   string
		sealer *Sealer
		user   string
		sealed []byte
	}{
		{"a secret moved to another user's record", s, "bob", sealed},
		{"a user name differing only in case", s, "Alice", sealed},
		{"a secret sealed under another key", other, "alice", sealed},
		{"an unknown version byte", s, "alice", with(func(b []byte) []byte { b[0] = 2; return b })},
		{"a flipped nonce bit", s, "alice", with(func(b []byte) []byte { b[5] ^= 1; return b })},
		{"a flipped ciphertext bit", s, "alice", with(func(b []byte) []byte { b[30] ^= 0x80; return b })},
		{"a flipped tag bit", s, "alice", with(func(b []byte) []byte { b[len(b)-1] ^= 1; return b })},
		{"a truncated tag", s, "alice", sealed[:len(sealed)-1]},
		{"an extra trailing byte", s, "alice", append(bytes.Clone(sealed), 0)},
		{"an input shorter than nonce and tag", s, "alice", sealed[:1+24+15]},
		{"an empty input", s, "alice", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.sealer.Open(tt.user, tt.sealed)
			if !errors.Is(err, ErrUnseal) {
				t.Fatalf("Open = %x, %v; want ErrUnseal", got, err)
			}
			if got != nil {
				t.Errorf("Open returned plaintext %x with an error", got)
			}
		})
	}
}

func TestOpenRefusesEveryTamperedByte(t *testing.T) {
	s, _ := newTestSealer(t)
	sealed, err := s.Seal("alice", []byte("12345678901234567890"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		if _, err := s.Open("alice", b); !errors.Is(err, ErrUnseal) {
			t.Errorf("byte %d flipped: Open error %v, want ErrUnseal", i, err)
		}
	}
}

func TestNewRefusesAKeyOfTheWrongSize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("New accepted a %d-byte key", n)
		}
	}
}
