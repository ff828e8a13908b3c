//go:build root

package sshd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/otpgate/otpgate/internal/testutil"
)

func TestHostKeysCreatedAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	types := []string{"ed25519", "ecdsa", "rsa"}
	first, err := LoadHostKeys(dir, types)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, %v; want 0700", fi.Mode(), err)
	}
	for i, typ := range types {
		fi, err := os.Lstat(HostKeyPath(dir, typ))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s key: %v, %v; want a 0600 regular file", typ, fi.Mode(), err)
		}
		if want := keyTypeFor(typ); first[i].PublicKey().Type() != want {
			t.Errorf("%s key type %s", typ, first[i].PublicKey().Type())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(types) {
		t.Errorf("dir holds %d entries (temporary files left?)", len(entries))
	}
	second, err := LoadHostKeys(dir, types)
	if err != nil {
		t.Fatal(err)
	}
	for i := range types {
		if !slices.Equal(first[i].PublicKey().Marshal(), second[i].PublicKey().Marshal()) {
			t.Errorf("%s key changed on the second start", types[i])
		}
	}
	// RSA signs with SHA-2 only.
	as, ok := first[2].(ssh.MultiAlgorithmSigner)
	if !ok || slices.Contains(as.Algorithms(), ssh.KeyAlgoRSA) {
		t.Errorf("rsa signer algorithms: %v", as)
	}
}

func TestHostKeysRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{name: "key readable by others", setup: func(t *testing.T, dir string) {
			testutil.Must(t, os.Chmod(HostKeyPath(dir, "ed25519"), 0o644))
		}, want: "mode 0600"},
		{name: "dir writable by group", setup: func(t *testing.T, dir string) {
			testutil.Must(t, os.Chmod(dir, 0o770))
		}, want: "not writable"},
		{name: "key is a symlink", setup: func(t *testing.T, dir string) {
			p := HostKeyPath(dir, "ed25519")
			testutil.Must(t, os.Rename(p, p+".real"))
			testutil.Must(t, os.Symlink(p+".real", p))
		}, want: "symbolic link"},
		{name: "key of another type", setup: func(t *testing.T, dir string) {
			testutil.Must(t, os.Rename(HostKeyPath(dir, "ed25519"), HostKeyPath(dir, "ecdsa")))
		}, want: "holds a ssh-ed25519 key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			if _, err := LoadHostKeys(dir, []string{"ed25519"}); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			_, err := LoadHostKeys(dir, []string{"ed25519", "ecdsa"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
