// Package seal encrypts otpgated's secrets at rest with
// XChaCha20-Poly1305, bound to the user they belong to, and keeps the key
// file they are sealed with.
package seal

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the size of the key file's content.
const KeySize = chacha20poly1305.KeySize

// sealVersion is the first byte of every sealed secret.
const sealVersion = 1

// Sealer encrypts secrets with XChaCha20-Poly1305. The user name is the
// associated data, so a sealed secret copied into another user's record
// does not open.
type Sealer struct {
	aead cipher.AEAD
}

// New returns a Sealer for a KeySize-byte key.
func New(key []byte) (*Sealer, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("seal: sealing key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts secret for user: version byte, 24-byte random nonce,
// ciphertext and tag.
func (s *Sealer) Seal(user string, secret []byte) ([]byte, error) {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(secret)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:], secret, []byte(user)), nil //nolint:gosec // the nonce out[1:] is filled by rand.Read just above
}

// ErrUnseal is returned when a sealed secret does not decrypt: wrong key,
// wrong user, or tampering.
var ErrUnseal = errors.New("seal: sealed secret does not decrypt with this key and user (wrong secret.key, or the record was tampered with)")

// Open decrypts a secret sealed for user.
func (s *Sealer) Open(user string, sealed []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrUnseal
	}
	pt, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(user))
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}
