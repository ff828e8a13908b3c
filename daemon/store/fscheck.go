package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Names of the files the store keeps in the state directory.
const (
	KeyFile = "secret.key"
	DBFile  = "otpgate.db"
)

// PrepareStateDir creates dir (0700, root) if it does not exist, then
// checks it with CheckStateDir.
func PrepareStateDir(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil { //nolint:gosec // the parent (/var/lib) is public; the state directory itself is 0700
			return fmt.Errorf("store: create %s: %w", filepath.Dir(dir), err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("store: create state directory %s: %w", dir, err)
		}
	}
	return CheckStateDir(dir)
}

// CheckStateDir refuses a state directory that others could read or
// tamper with: it must be a real directory (not a symlink), owned by root,
// mode 0700; the key and database files in it, where they exist, must be
// regular root-owned 0600 files.
func CheckStateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("store: state directory: %w", err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("store: state directory %s is a symlink; it must be a real directory owned by root with mode 0700", dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("store: state directory %s is not a directory (mode %s); it must be a directory owned by root with mode 0700", dir, fi.Mode())
	}
	if err := checkOwnerMode(fi, dir, 0o700); err != nil {
		return err
	}
	for _, name := range []string{KeyFile, DBFile} {
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("store: %s is not a regular file (mode %s); it must be a regular file owned by root with mode 0600", p, fi.Mode())
		}
		if err := checkOwnerMode(fi, p, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func checkOwnerMode(fi os.FileInfo, path string, want os.FileMode) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("store: cannot read the owner of %s", path)
	}
	if st.Uid != 0 {
		return fmt.Errorf("store: %s is owned by uid %d (mode %04o); it must be owned by root (uid 0) with mode %04o", path, st.Uid, fi.Mode().Perm(), want)
	}
	// Exact mode: no group/other bits, and no setuid, setgid or sticky.
	if fi.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != want {
		return fmt.Errorf("store: %s has mode %04o (owner uid 0); it must be exactly %04o (chmod %o %s)", path, unixMode(fi.Mode()), want, want, path)
	}
	return nil
}

// CheckFile applies CheckStateDir's file rules to an open file: it must
// be a regular file owned by root with mode 0600. Checking the open file
// (fstat) rather than the path leaves no window for a swap.
func CheckFile(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("store: %s is not a regular file (mode %s); it must be a regular file owned by root with mode 0600", path, fi.Mode())
	}
	return checkOwnerMode(fi, path, 0o600)
}

// unixMode returns the permission and special bits of m as chmod(1) shows
// them.
func unixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// SyncDir fsyncs a directory so that a create or rename in it survives a
// power loss.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: open directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: fsync directory %s: %w", dir, err)
	}
	return nil
}
