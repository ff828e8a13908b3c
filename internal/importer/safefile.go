package importer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ReadHomeFile reads the file name (a single path component) in the home
// directory home of the user with uid uid. It is written to run as root on
// files an unprivileged user controls, without the CVE-2024-47191 and
// CVE-2019-12209 mistakes:
//
//   - the home directory is opened once, without following a symlink
//     unless root owns that symlink, and must belong to the user or root
//     and not be writable by group or others (checked once the file is
//     known to exist, so that an account without the file, such as mail
//     with its group-writable /var/mail, is simply not imported);
//   - the file is opened relative to that directory with O_NOFOLLOW and
//     O_NONBLOCK (a FIFO cannot block the import);
//   - the open file must be a regular file owned by uid, with one link, of
//     at most MaxFileSize bytes.
//
// Nothing is ever written. A missing file returns an error matching
// fs.ErrNotExist. The returned mode holds the file's permission bits.
func ReadHomeFile(home string, uid int, name string) ([]byte, fs.FileMode, error) {
	if !filepath.IsAbs(home) {
		return nil, 0, fmt.Errorf("home directory %q is not an absolute path", home)
	}
	if name == "" || strings.Contains(name, "/") || name == "." || name == ".." {
		return nil, 0, fmt.Errorf("invalid file name %q", name)
	}
	path := filepath.Join(home, name)
	dir, unsafeHome, err := openHome(filepath.Clean(home), uid)
	if err != nil {
		return nil, 0, err
	}
	defer unix.Close(dir)
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err == nil && unsafeHome != nil {
		unix.Close(fd)
		return nil, 0, unsafeHome
	}
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, 0, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
	case unsafeHome != nil:
		return nil, 0, unsafeHome
	case errors.Is(err, unix.ELOOP):
		return nil, 0, fmt.Errorf("%s is a symbolic link: refusing to follow it (it could point at any file root can read)", path)
	case err != nil:
		return nil, 0, fmt.Errorf("open %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, 0, fmt.Errorf("%s is not a regular file", path)
	case int(st.Uid) != uid:
		return nil, 0, fmt.Errorf("%s is owned by uid %d, not by its user (uid %d)", path, st.Uid, uid)
	case st.Nlink != 1:
		return nil, 0, fmt.Errorf("%s has %d hard links; expected 1", path, st.Nlink)
	case st.Size > MaxFileSize:
		return nil, 0, fmt.Errorf("%s is %d bytes, more than %d", path, st.Size, MaxFileSize)
	}
	data, err := readLimited(f, path)
	if err != nil {
		return nil, 0, err
	}
	return data, fs.FileMode(st.Mode & 0o7777), nil
}

// openHome opens the home directory home of uid, following a symlink only
// if root owns it (an administrator's choice, not the user's). A directory
// that is open but unsafe to read from (wrong owner, writable by group or
// others) is returned with unsafe set: the caller must not read from it, but
// may still learn that the file it wanted is absent.
func openHome(home string, uid int) (dir int, unsafe, err error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	dir, err = unix.Open(home, flags, 0)
	var lst unix.Stat_t
	// O_NOFOLLOW|O_DIRECTORY on a symlink fails with ENOTDIR (or ELOOP).
	if (errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)) &&
		unix.Lstat(home, &lst) == nil && lst.Mode&unix.S_IFMT == unix.S_IFLNK {
		if lst.Uid != 0 {
			return -1, nil, fmt.Errorf("home directory %s is a symbolic link owned by uid %d, not root: refusing to follow it", home, lst.Uid)
		}
		target, err := filepath.EvalSymlinks(home)
		if err != nil {
			return -1, nil, fmt.Errorf("home directory %s: %w", home, err)
		}
		dir, err = unix.Open(target, flags, 0)
		if err != nil {
			return -1, nil, fmt.Errorf("home directory %s (-> %s): %w", home, target, err)
		}
	} else if errors.Is(err, unix.ENOENT) {
		return -1, nil, fmt.Errorf("home directory %s: %w", home, fs.ErrNotExist)
	} else if errors.Is(err, unix.ENOTDIR) {
		return -1, nil, fmt.Errorf("home directory %s is not a directory", home)
	} else if err != nil {
		return -1, nil, fmt.Errorf("home directory %s: %w", home, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(dir, &st); err != nil {
		unix.Close(dir)
		return -1, nil, fmt.Errorf("stat home directory %s: %w", home, err)
	}
	if int(st.Uid) != uid && st.Uid != 0 {
		return dir, fmt.Errorf("home directory %s is owned by uid %d, neither its user (uid %d) nor root", home, st.Uid, uid), nil
	}
	if st.Mode&0o022 != 0 {
		return dir, fmt.Errorf("home directory %s is writable by group or others (mode %04o): another user could have planted the file", home, st.Mode&0o7777), nil
	}
	return dir, nil, nil
}

// readLimited reads f (named path) to the end, refusing more than
// MaxFileSize bytes even if the file grew after it was checked.
func readLimited(f *os.File, path string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		clear(data)
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		clear(data)
		return nil, fmt.Errorf("%s grew past %d bytes while being read", path, MaxFileSize)
	}
	return data, nil
}

// Account is an account whose home directory an import reads.
type Account struct {
	Name string
	UID  int
	Home string
}
