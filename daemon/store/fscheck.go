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
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
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
		return fmt.Errorf("store: state directory %s is a symlink; it must be a real directory", dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("store: state directory %s is not a directory", dir)
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
			return fmt.Errorf("store: %s is not a regular file (%s); refusing to use it", p, fi.Mode().Type())
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
		return fmt.Errorf("store: %s is owned by uid %d; it must be owned by root (chown root %s)", path, st.Uid, path)
	}
	if fi.Mode().Perm() != want {
		return fmt.Errorf("store: %s has mode %04o; it must be %04o (chmod %o %s)", path, fi.Mode().Perm(), want, want, path)
	}
	return nil
}

// checkFile applies the same rules to an open file.
func checkFile(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("store: %s is not a regular file", path)
	}
	return checkOwnerMode(fi, path, 0o600)
}
