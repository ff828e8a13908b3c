package importer

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const gaContent = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n"

// newHome makes a home directory owned by the test's uid, mode 0700,
// holding a valid .google_authenticator (mode 0400).
func newHome(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, GoogleAuthenticatorFile)
	if err := os.WriteFile(path, []byte(gaContent), 0o400); err != nil {
		t.Fatal(err)
	}
	return home
}

// replace removes the test .google_authenticator in home and lets make
// create something else in its place.
func replace(t *testing.T, home string, create func(path string) error) {
	t.Helper()
	p := filepath.Join(home, GoogleAuthenticatorFile)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := create(p); err != nil {
		t.Fatal(err)
	}
}

func TestOpenAdminFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "users.oath")
	// Larger than the 64 KiB a whole file once could be.
	big := strings.Repeat("# comment\n", 10000)
	if err := os.WriteFile(good, []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenAdminFile(good)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil || string(data) != big {
		t.Errorf("read %d bytes, %v", len(data), err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenAdminFile(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("fifo: %v", err)
	}
	if _, err := OpenAdminFile(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}
