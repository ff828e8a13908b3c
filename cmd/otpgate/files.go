package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Files the CLI writes (the QR code PNG of enroll --qr=png, saved recovery
// codes) hold secrets and are often written as root, into a path that may
// lie in a directory another user controls. So every such file is created
// by one function, createSecretFile: the path is walked from / one
// component at a time with openat(O_NOFOLLOW), holding each directory open,
// and the file is created in the last one with O_CREAT|O_EXCL|O_NOFOLLOW.
// A symbolic link in any component is refused by name; no second lookup of
// the path ever happens (a failed write is removed with unlinkat in the
// directory held open).

// secretFile is a new file being written, with the directory it was
// created in held open.
type secretFile struct {
	*os.File
	dir  int    // O_PATH descriptor of the directory holding the file
	name string // the file's name in dir
	path string // the absolute path, as shown to the person
}

// openNewSecretFile expands typed (a path given on the command line or at
// a prompt) with expandPath against home, the home directory of the
// account running otpgate, and creates it with createSecretFile.
func openNewSecretFile(typed, home string) (*secretFile, error) {
	path, err := expandPath(typed, home)
	if err != nil {
		return nil, err
	}
	return createSecretFile(path)
}

// writeSecretFile creates typed as openNewSecretFile does and writes
// data, removing the file again if anything fails. It returns the path
// written.
func writeSecretFile(typed, home string, data []byte) (string, error) {
	f, err := openNewSecretFile(typed, home)
	if err != nil {
		return "", err
	}
	return f.path, f.finish(data)
}

// expandPath resolves a leading "~" or "~/" against home and makes path
// absolute and clean. home is the home directory, from the password
// database (never $HOME), of the account running otpgate: for admin enroll
// that is the administrator's, never the enrolled user's, as a shell would
// expand it. "~NAME" is refused rather than guessed at.
func expandPath(path, home string) (string, error) {
	if path == "" {
		return "", errors.New("no file name given")
	}
	if strings.HasPrefix(path, "~") {
		first, _, _ := strings.Cut(path, "/")
		if first != "~" {
			return "", fmt.Errorf("cannot expand %s: only ~ (your own home directory) is expanded; give the full path", first)
		}
		if home == "" {
			return "", errors.New("cannot expand ~: the account running otpgate has no home directory; give the full path")
		}
		path = filepath.Join(home, strings.TrimPrefix(path, "~"))
	}
	return filepath.Abs(path)
}

// createSecretFile creates path (absolute and clean, as expandPath returns
// it) for writing secrets: a new file (O_EXCL), mode 0600, reached without
// following a symbolic link in any component of path.
func createSecretFile(path string) (*secretFile, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return nil, fmt.Errorf("%s: not a clean absolute path", path)
	}
	dirPath, name := filepath.Split(path)
	if name == "" {
		return nil, fmt.Errorf("%s is a directory: give the name of a new file", path)
	}
	dir, err := openDirNoSymlinks(filepath.Clean(dirPath))
	if err != nil {
		return nil, err
	}
	fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		err = lookupError(dir, name, path, err, false)
		unix.Close(dir)
		return nil, err
	}
	return &secretFile{File: os.NewFile(uintptr(fd), path), dir: dir, name: name, path: path}, nil
}

// openDirNoSymlinks opens the directory dir (absolute and clean) with
// O_PATH, walking from / one component at a time without following a
// symbolic link.
func openDirNoSymlinks(dir string) (int, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: "/", Err: err}
	}
	cur := "/"
	for _, c := range strings.Split(dir, "/") {
		if c == "" {
			continue
		}
		cur = filepath.Join(cur, c)
		next, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			err = lookupError(fd, c, cur, err, true)
			unix.Close(fd)
			return -1, err
		}
		unix.Close(fd)
		fd = next
	}
	return fd, nil
}

// lookupError explains why opening name in the directory dir failed:
// path is its full path, wantDir whether a directory was being opened
// (else a new file was being created).
func lookupError(dir int, name, path string, err error, wantDir bool) error {
	var st unix.Stat_t
	if serr := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil {
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFLNK:
			target := make([]byte, unix.PathMax)
			n, rerr := unix.Readlinkat(dir, name, target)
			to := ""
			if rerr == nil {
				to = " (to " + string(target[:n]) + ")"
			}
			if wantDir {
				return fmt.Errorf("%s is a symbolic link%s: otpgate writes files only through real directories, never through a symbolic link; give a path without one", path, to)
			}
			return fmt.Errorf("%s is a symbolic link%s: otpgate never writes through a symbolic link; choose a new file name", path, to)
		case wantDir && st.Mode&unix.S_IFMT != unix.S_IFDIR:
			return fmt.Errorf("%s is not a directory", path)
		case !wantDir && st.Mode&unix.S_IFMT == unix.S_IFDIR:
			return fmt.Errorf("%s is a directory: give the name of a new file", path)
		case !wantDir && errors.Is(err, unix.EEXIST):
			return fmt.Errorf("%s already exists: choose a new file name (otpgate never overwrites a file)", path)
		}
	}
	op := "create"
	if wantDir {
		op = "open"
	}
	return &os.PathError{Op: op, Path: path, Err: err}
}

// finish writes data, syncs and closes the file; on failure the partial
// file is removed.
func (f *secretFile) finish(data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		err = fmt.Errorf("write %s: %w", f.path, err)
		if uerr := unix.Unlinkat(f.dir, f.name, 0); uerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the partial file %s by hand: %w", f.path, uerr))
		}
		unix.Close(f.dir)
		return err
	}
	return unix.Close(f.dir)
}

// discard closes and removes a file that will not be written. Its error
// says the empty file could not be removed.
func (f *secretFile) discard() error {
	f.File.Close()
	err := unix.Unlinkat(f.dir, f.name, 0)
	unix.Close(f.dir)
	if err != nil {
		return fmt.Errorf("remove the unused file %s by hand: %w", f.path, err)
	}
	return nil
}
