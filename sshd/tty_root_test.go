//go:build root

package sshd

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/otpgate/otpgate/internal/accounts"
)

// TestChownTTY: the terminal goes to the user and the tty group, mode
// 0620, as OpenSSH leaves it (a temporary file stands in for the pty).
func TestChownTTY(t *testing.T) {
	tty, err := accounts.LookupGroup("tty")
	if err != nil {
		t.Fatalf("the tty group, which every Debian system has: %v", err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "pts"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := chownTTY(f, &account{name: "nobody", uid: 65534, gid: 65534}); err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 65534 || st.Gid != tty.GID || fi.Mode().Perm() != 0o620 {
		t.Errorf("owner %d:%d mode %o; want 65534:%d mode 620", st.Uid, st.Gid, fi.Mode().Perm(), tty.GID)
	}
}
