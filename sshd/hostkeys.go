package sshd

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// hostKeyGenerators creates a new private key of each supported type.
var hostKeyGenerators = map[string]func() (crypto.Signer, error){
	"ed25519": func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	},
	"ecdsa": func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
	"rsa":   func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 3072) },
}

// maxHostKeyFile bounds the size of a host key file read at start.
const maxHostKeyFile = 64 * 1024

// HostKeyPath is where the host key of type typ lives in dir (OpenSSH's
// naming: ssh_host_ed25519_key).
func HostKeyPath(dir, typ string) string {
	return filepath.Join(dir, "ssh_host_"+typ+"_key")
}

// LoadHostKeys returns a signer for each type, loading the key from dir or
// creating it (mode 0600, written atomically) on first use. dir is created
// 0700 if missing and must be owned by the current user (root) and not
// writable by group or others; each key file must be a regular file owned
// by the current user with no group or other permissions. RSA signers sign
// with SHA-2 only.
func LoadHostKeys(dir string, types []string) ([]ssh.Signer, error) {
	if err := ensureKeyDir(dir); err != nil {
		return nil, err
	}
	var signers []ssh.Signer
	for _, typ := range types {
		s, err := loadOrCreateHostKey(dir, typ)
		if err != nil {
			return nil, err
		}
		signers = append(signers, s)
	}
	return signers, nil
}

func ensureKeyDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("sshd: host key dir: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("sshd: host key dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("sshd: host key dir %s is not a directory", dir)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("sshd: host key dir %s must be owned by uid %d and not writable by group or others (is uid %d, mode %04o)",
			dir, os.Geteuid(), st.Uid, fi.Mode().Perm())
	}
	return nil
}

func loadOrCreateHostKey(dir, typ string) (ssh.Signer, error) {
	gen, ok := hostKeyGenerators[typ]
	if !ok {
		return nil, fmt.Errorf("sshd: unknown host key type %q", typ)
	}
	file := HostKeyPath(dir, typ)
	data, err := readPrivateFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createHostKey(file, typ, gen); err != nil {
			return nil, err
		}
		data, err = readPrivateFile(file)
	}
	if err != nil {
		return nil, err
	}
	raw, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("sshd: host key %s: %w", file, err)
	}
	signer, err := ssh.NewSignerFromKey(raw)
	if err != nil {
		return nil, fmt.Errorf("sshd: host key %s: %w", file, err)
	}
	if want := keyTypeFor(typ); signer.PublicKey().Type() != want {
		return nil, fmt.Errorf("sshd: host key %s holds a %s key, not %s", file, signer.PublicKey().Type(), want)
	}
	if typ == "rsa" {
		as, ok := signer.(ssh.AlgorithmSigner)
		if !ok {
			return nil, fmt.Errorf("sshd: host key %s: rsa signer cannot choose algorithms", file)
		}
		signer, err = ssh.NewSignerWithAlgorithms(as, []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256})
		if err != nil {
			return nil, fmt.Errorf("sshd: host key %s: %w", file, err)
		}
	}
	return signer, nil
}

func keyTypeFor(typ string) string {
	switch typ {
	case "ed25519":
		return ssh.KeyAlgoED25519
	case "ecdsa":
		return ssh.KeyAlgoECDSA256
	default:
		return ssh.KeyAlgoRSA
	}
}

// readPrivateFile reads a key file that must be a regular file (not a
// symlink) owned by the current user, without group or other permissions.
func readPrivateFile(file string) ([]byte, error) {
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("sshd: host key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("sshd: host key: %w", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("sshd: host key %s must be a regular file owned by uid %d with mode 0600 (is uid %d, mode %s)",
			file, os.Geteuid(), st.Uid, fi.Mode())
	}
	if fi.Size() > maxHostKeyFile {
		return nil, fmt.Errorf("sshd: host key %s is too large", file)
	}
	buf := make([]byte, fi.Size()+1)
	n, err := f.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("sshd: host key %s: %w", file, err)
	}
	return buf[:n], nil
}

// createHostKey writes a new key atomically: a 0600 temporary file in the
// same directory, synced, then hard-linked to its name (so two servers
// starting at once never overwrite each other's key), and the directory
// synced.
func createHostKey(file, typ string, gen func() (crypto.Signer, error)) error {
	key, err := gen()
	if err != nil {
		return fmt.Errorf("sshd: generate %s host key: %w", typ, err)
	}
	host, _ := os.Hostname()
	block, err := ssh.MarshalPrivateKey(key, "otpgate-sshd@"+host)
	if err != nil {
		return fmt.Errorf("sshd: encode %s host key: %w", typ, err)
	}
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, ".tmp-hostkey-*")
	if err != nil {
		return fmt.Errorf("sshd: write host key: %w", err)
	}
	// The temporary name goes once linked (or on failure); a leftover is
	// a harmless dot file that the next write does not reuse.
	defer func() { _ = os.Remove(tmp.Name()) }()
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("sshd: write host key: %w", err)
	}
	if _, err := tmp.Write(pem.EncodeToMemory(block)); err != nil {
		return fmt.Errorf("sshd: write host key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sshd: write host key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sshd: write host key: %w", err)
	}
	if err := os.Link(tmp.Name(), file); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("sshd: write host key: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sshd: sync host key dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sshd: sync host key dir: %w", err)
	}
	return nil
}
