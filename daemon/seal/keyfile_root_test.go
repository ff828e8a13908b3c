//go:build root

package seal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/otpgate/otpgate/daemon/store"
)

// newStateDir returns a fresh state directory, prepared as otpgated
// prepares its own (root-owned, 0700).
func newStateDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	if err := store.PrepareStateDir(dir); err != nil {
		t.Fatalf("%v (the key file must be root's: make test runs as root)", err)
	}
	return dir
}

func TestLoadOrCreateKeyCreatesA0600KeyOnce(t *testing.T) {
	dir := newStateDir(t)
	path := filepath.Join(dir, store.KeyFile)
	key, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKey: %v", err)
	}
	if len(key) != KeySize || bytes.Equal(key, make([]byte, KeySize)) {
		t.Fatalf("key %x is not %d random bytes", key, KeySize)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 || st.Uid != 0 || st.Nlink != 1 {
		t.Errorf("key file mode %s uid %d links %d, want a regular 0600 root file with one link", fi.Mode(), st.Uid, st.Nlink)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, key) {
		t.Errorf("file holds %x, LoadOrCreateKey returned %x", onDisk, key)
	}
	// Atomic creation leaves no temp file behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != store.KeyFile {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("state dir holds %v, want only %s", names, store.KeyFile)
	}
	again, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("second LoadOrCreateKey: %v", err)
	}
	if !bytes.Equal(again, key) {
		t.Errorf("second call returned another key: the key was replaced")
	}
}

func TestLoadOrCreateKeyConcurrentCallersAgreeOnOneKey(t *testing.T) {
	path := filepath.Join(newStateDir(t), store.KeyFile)
	const n = 16
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateKey(path) })
	}
	wg.Wait()
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("caller %d: %v", i, errs[i])
		} else if !bytes.Equal(keys[i], onDisk) {
			t.Errorf("caller %d got a key that is not the one on disk", i)
		}
	}
}

func TestWriteFileExclusiveNeverReplacesAFile(t *testing.T) {
	dir := newStateDir(t)
	path := filepath.Join(dir, store.KeyFile)
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := writeFileExclusive(path, []byte("new"))
	if !errors.Is(err, os.ErrExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("writeFileExclusive over an existing file: %v; want an error wrapping ErrExist naming %s", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("existing file now holds %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a temp file was left behind: %d entries", len(entries))
	}
}

func TestLoadOrCreateKeyRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		want  string
	}{
		{"a short key file", func(t *testing.T, path string) { writeKeyFile(t, path, 31, 0o600) }, "exactly 32 bytes"},
		{"an empty key file", func(t *testing.T, path string) { writeKeyFile(t, path, 0, 0o600) }, "exactly 32 bytes"},
		{"a long key file", func(t *testing.T, path string) { writeKeyFile(t, path, 33, 0o600) }, "exactly 32 bytes"},
		{"a symlinked key file", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			writeKeyFile(t, target, KeySize, 0o600)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "symlink"},
		{"a group-readable key file", func(t *testing.T, path string) { writeKeyFile(t, path, KeySize, 0o640) }, "mode 0640"},
		{"a key file owned by another user", func(t *testing.T, path string) {
			writeKeyFile(t, path, KeySize, 0o600)
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "uid 65534"},
		{"a FIFO in place of the key", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"a directory in place of the key", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(newStateDir(t), store.KeyFile)
			tt.setup(t, path)
			before, _ := os.Lstat(path)
			key, err := LoadOrCreateKey(path)
			if err == nil {
				t.Fatalf("LoadOrCreateKey accepted it and returned %d bytes", len(key))
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s and say %q", err, path, tt.want)
			}
			after, _ := os.Lstat(path)
			if !os.SameFile(before, after) || before.Size() != after.Size() {
				t.Errorf("the refused key file was replaced or modified")
			}
		})
	}
}

// writeKeyFile writes size bytes to path with mode.
func writeKeyFile(t *testing.T, path string, size int, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{0x5a}, size), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
