package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// The file helpers work from the host through /proc/<pid1>/root with
// openat2(RESOLVE_IN_ROOT), so that symlinks (absolute ones included) and
// ".." resolve inside the container and never reach the host's files.

// openIn opens the in-container path p with openat2 relative to the
// container's root.
func (c *Container) openIn(p string, flags int, mode uint32) (int, error) {
	root, err := unix.Open(c.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if !c.Alive() {
			return -1, ErrClosed
		}
		return -1, fmt.Errorf("container: open root: %w", err)
	}
	defer unix.Close(root)
	for {
		fd, err := unix.Openat2(root, strings.TrimPrefix(path.Clean("/"+p), "/"), &unix.OpenHow{
			Flags:   uint64(flags | unix.O_CLOEXEC), //nolint:gosec // open(2) flags are non-negative
			Mode:    uint64(mode),
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue // a concurrent rename; retry as openat2(2) suggests
		}
		return fd, err
	}
}

// readFile returns the contents of the in-container file p.
func (c *Container) readFile(p string) ([]byte, error) {
	fd, err := c.openIn(p, unix.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("container: read %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("container: read %s: %w", p, err)
	}
	return data, nil
}

// isDir reports whether the in-container path p is a directory.
func (c *Container) isDir(p string) bool {
	fd, err := c.openIn(p, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// ReadFile returns the contents of the in-container file p.
func (c *Container) ReadFile(p string) ([]byte, error) {
	return c.readFile(p)
}

// WriteFile writes data to the in-container file p, creating missing parent
// directories (mode 0755, owner root), and leaves the file with exactly mode
// (umask does not apply) and owner root:root.
func (c *Container) WriteFile(p string, data []byte, mode os.FileMode) error {
	return c.writeFile(p, data, mode)
}

func (c *Container) writeFile(p string, data []byte, mode os.FileMode) error {
	if err := c.mkdirAll(path.Dir(path.Clean("/"+p)), 0o755); err != nil {
		return err
	}
	fd, err := c.openIn(p, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("container: write %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	if err := unix.Fchown(fd, 0, 0); err != nil {
		return fmt.Errorf("container: chown %s: %w", p, err)
	}
	if err := unix.Fchmod(fd, unixMode(mode)); err != nil {
		return fmt.Errorf("container: chmod %s: %w", p, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("container: write %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("container: write %s: %w", p, err)
	}
	return nil
}

// MkdirAll creates the in-container directory p and its missing parents,
// owned by root; the directories it creates get mode (umask applies to
// none of them).
func (c *Container) MkdirAll(p string, mode os.FileMode) error {
	return c.mkdirAll(p, mode)
}

func (c *Container) mkdirAll(p string, mode os.FileMode) error {
	cur := "/"
	for _, name := range strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/") {
		if name == "" {
			continue
		}
		next := path.Join(cur, name)
		if fd, err := c.openIn(next, unix.O_PATH|unix.O_DIRECTORY, 0); err == nil {
			unix.Close(fd)
			cur = next
			continue
		} else if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("container: mkdir %s: %w", next, err)
		}
		parent, err := c.openIn(cur, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return fmt.Errorf("container: mkdir %s: %w", next, err)
		}
		err = unix.Mkdirat(parent, name, 0o700)
		if err == nil {
			var dir int
			if dir, err = unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
				err = unix.Fchmod(dir, unixMode(mode))
				unix.Close(dir)
			}
		} else if errors.Is(err, unix.EEXIST) {
			err = nil // created concurrently
		}
		unix.Close(parent)
		if err != nil {
			return fmt.Errorf("container: mkdir %s: %w", next, err)
		}
		cur = next
	}
	return nil
}

// Chown gives the in-container file or directory p to user and the user's
// primary group (as in the container's /etc/passwd). Symlinks are not
// followed at the last component.
func (c *Container) Chown(p, user string) error {
	u, err := c.LookupUser(user)
	if err != nil {
		return err
	}
	fd, err := c.openIn(p, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("container: chown %s: %w", p, err)
	}
	defer unix.Close(fd)
	if err := unix.Fchownat(fd, "", u.UID, u.GID, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("container: chown %s %s: %w", user, p, err)
	}
	return nil
}

// unixMode converts permission and special bits of an os.FileMode.
func unixMode(m os.FileMode) uint32 {
	mode := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		mode |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		mode |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		mode |= unix.S_ISVTX
	}
	return mode
}

// statIn stats the in-container path p (following symlinks inside).
func (c *Container) statIn(p string) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := c.openIn(p, unix.O_PATH, 0)
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	err = unix.Fstat(fd, &st)
	return st, err
}
