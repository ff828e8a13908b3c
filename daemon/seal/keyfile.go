package seal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/otpgate/otpgate/daemon/store"
)

// LoadOrCreateKey reads the sealing key at path, creating it (KeySize
// random bytes, mode 0600, written atomically) if it does not exist. An
// existing file of the wrong size, or that is not a regular root-owned
// 0600 file, is an error: regenerating it would make every enrollment
// unreadable, so an existing key is never replaced.
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("seal: generate key for %s: %w", path, err)
	}
	err = writeFileExclusive(path, key)
	if errors.Is(err, os.ErrExist) {
		// Another process created the key first: use that one.
		return readKey(path)
	}
	if err != nil {
		return nil, err
	}
	return key, nil
}

// readKey reads an existing key file. The error wraps os.ErrNotExist only
// when path does not exist.
func readKey(path string) ([]byte, error) {
	// O_NOFOLLOW: a symlink fails with ELOOP. O_NONBLOCK: a FIFO planted
	// at path cannot block the open; checkFile then rejects it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("seal: key file %s is a symlink; it must be a regular root-owned 0600 file", path)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("seal: key file %s: %w", path, os.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("seal: open key file: %w", err)
	}
	defer f.Close()
	if err := store.CheckFile(f, path); err != nil {
		return nil, err
	}
	buf := make([]byte, KeySize+1)
	n, err := io.ReadFull(f, buf)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) && n == KeySize:
		return buf[:KeySize], nil
	case err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("seal: key file %s must hold exactly %d bytes but does not; refusing to use or replace it (restore it from a backup)", path, KeySize)
	default:
		return nil, fmt.Errorf("seal: read key file %s: %w", path, err)
	}
}

// writeFileExclusive creates path holding data, mode 0600, atomically: a
// temp file (O_EXCL, 0600) in the same directory is written and fsync'd,
// then renamed into place with RENAME_NOREPLACE, then the directory is
// fsync'd. An existing path is never overwritten: the error then wraps
// os.ErrExist.
func writeFileExclusive(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("seal: create temp file for %s: %w", path, err)
	}
	name := tmp.Name()
	installed := false
	defer func() {
		if !installed {
			if rerr := os.Remove(name); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("seal: remove %s by hand: %w", name, rerr))
			}
		}
	}()
	if err := writeSyncClose(tmp, data); err != nil {
		return err
	}
	err = unix.Renameat2(unix.AT_FDCWD, name, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// The file system lacks RENAME_NOREPLACE; link(2) also refuses
		// to replace an existing path.
		if err = os.Link(name, path); err == nil {
			if err := os.Remove(name); err != nil {
				return fmt.Errorf("seal: remove %s: %w", name, err)
			}
		}
	}
	if errors.Is(err, unix.EEXIST) || errors.Is(err, os.ErrExist) {
		return fmt.Errorf("seal: %s appeared while it was being created: %w", path, os.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("seal: install %s: %w", path, err)
	}
	installed = true
	return store.SyncDir(dir)
}

func writeSyncClose(f *os.File, data []byte) error {
	// CreateTemp already uses 0600; Chmod guards against a umask that
	// would clear the owner bits.
	err := f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("seal: write %s: %w", f.Name(), err)
	}
	return nil
}
