package store

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

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

// NewSealer returns a Sealer for a KeySize-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("store: sealing key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts secret for user: version byte, 24-byte random nonce,
// ciphertext and tag.
func (s *Sealer) Seal(user string, secret []byte) ([]byte, error) {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(secret)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("store: nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:], secret, []byte(user)), nil
}

// ErrUnseal is returned when a sealed secret does not decrypt: wrong key,
// wrong user, or tampering.
var ErrUnseal = errors.New("store: sealed secret does not decrypt with this key and user (wrong secret.key, or the record was tampered with)")

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

// LoadOrCreateKey reads the sealing key at path, creating it (random,
// 0600, written atomically) if it does not exist. An existing file of the
// wrong size, or that is not a regular root-owned 0600 file, is an error:
// regenerating it would make every enrollment unreadable.
func LoadOrCreateKey(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err == nil {
		defer f.Close()
		if err := checkFile(f, path); err != nil {
			return nil, err
		}
		key := make([]byte, KeySize+1)
		n, err := io.ReadFull(f, key)
		if err != io.ErrUnexpectedEOF || n != KeySize {
			return nil, fmt.Errorf("store: key file %s must hold exactly %d bytes; refusing to use or replace it (restore it from backup)", path, KeySize)
		}
		return key[:KeySize], nil
	}
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("store: key file %s is a symlink; refusing to follow it", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("store: key file: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("store: generate key: %w", err)
	}
	if err := writeFileAtomic(path, key); err != nil {
		return nil, err
	}
	return key, nil
}

// writeFileAtomic creates path with data, mode 0600: temp file in the same
// directory, fsync, link into place (failing if path appeared meanwhile),
// fsync the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-key-")
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("store: chmod %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("store: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("store: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", tmp.Name(), err)
	}
	// link(2) fails if path exists: an existing key is never replaced.
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("store: install %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: fsync %s: %w", dir, err)
	}
	return nil
}
