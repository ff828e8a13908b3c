package setup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aymanbagabas/go-udiff"
)

// Change is a planned change to one file.
type Change struct {
	Path string
	// Old is the current content; nil when the file does not exist.
	Old []byte
	New []byte
	// Mode is the mode of a new file; an existing file keeps its own.
	Mode fs.FileMode
}

// Diff is the change as a unified diff (from /dev/null for a new file).
func (c *Change) Diff() string {
	from := c.Path
	if c.Old == nil {
		from = "/dev/null"
	}
	return udiff.Unified(from, c.Path, string(c.Old), string(c.New))
}

// BackupSuffix starts the name of a backup: FILE.otpgate-backup-
// followed by the time, YYYYMMDDThhmmss.
const BackupSuffix = ".otpgate-backup-"

// Written is one file that [Apply] wrote.
type Written struct {
	Path string
	// Backup is the copy of the file as it was; "" for a file that did not
	// exist (a rollback removes it).
	Backup string
	old    []byte
	mode   fs.FileMode
	uid    int
	gid    int
}

// Applied is the result of [Apply], to roll back.
type Applied struct {
	Files []Written
}

// Apply writes the changes in order: for each existing file, first a
// backup (FILE.otpgate-backup-YYYYMMDDThhmmss, mode 0600, owned by the
// caller), then the new content through a temporary file in the same
// directory that is synced and renamed over the file, with the file's
// mode and owner. A file that changed since it was planned is refused.
// If a write fails, the files already written are restored and the
// error says so.
func Apply(changes []*Change, now time.Time) (*Applied, error) {
	a := &Applied{}
	for _, c := range changes {
		w, err := apply(c, now)
		if err != nil {
			if rerr := a.Rollback(); rerr != nil {
				return nil, fmt.Errorf("%w; restoring the files already written failed too: %w", err, rerr)
			}
			return nil, err
		}
		a.Files = append(a.Files, w)
	}
	return a, nil
}

func apply(c *Change, now time.Time) (Written, error) {
	w := Written{Path: c.Path, mode: c.Mode, uid: os.Getuid(), gid: os.Getgid()}
	cur, err := os.ReadFile(c.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if c.Old != nil {
			return w, fmt.Errorf("%s was removed since it was read: nothing written to it; run the command again", c.Path)
		}
		if err := os.MkdirAll(filepath.Dir(c.Path), 0o755); err != nil { //nolint:gosec // a configuration directory under /etc (sshd_config.d) is 0755 like its parent
			return w, fmt.Errorf("create the directory of %s: %w", c.Path, err)
		}
	case err != nil:
		return w, fmt.Errorf("read %s: %w", c.Path, err)
	default:
		if c.Old == nil || !bytes.Equal(cur, c.Old) {
			return w, fmt.Errorf("%s changed since it was read: nothing written to it; run the command again", c.Path)
		}
		fi, err := os.Stat(c.Path)
		if err != nil {
			return w, fmt.Errorf("stat %s: %w", c.Path, err)
		}
		w.mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			w.uid, w.gid = int(st.Uid), int(st.Gid)
		}
		w.old = cur
		if w.Backup, err = writeBackup(c.Path, cur, now); err != nil {
			return w, err
		}
	}
	if err := WriteAtomic(c.Path, c.New, w.mode, w.uid, w.gid); err != nil {
		return w, err
	}
	return w, nil
}

// writeBackup copies data to a new file next to path and returns its
// name.
func writeBackup(path string, data []byte, now time.Time) (string, error) {
	base := path + BackupSuffix + now.Format("20060102T150405")
	for i := 1; i < 100; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("back up %s: %w", path, err)
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = syncDir(filepath.Dir(name))
		}
		if err != nil {
			return "", removeLeftover(fmt.Errorf("back up %s to %s: %w", path, name, err), name)
		}
		return name, nil
	}
	return "", fmt.Errorf("back up %s: too many backups named %s*; remove old ones", path, base)
}

// removeLeftover removes name, a file a failed write left behind, and
// returns err; if name stays, the error says to remove it by hand.
func removeLeftover(err error, name string) error {
	if rerr := os.Remove(name); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return errors.Join(err, fmt.Errorf("remove %s by hand: %w", name, rerr))
	}
	return err
}

// WriteAtomic replaces path with data: a temporary file in the same
// directory gets the mode and owner, is written and synced, then renamed
// over path, and the directory is synced. On error path is unchanged.
func WriteAtomic(path string, data []byte, mode fs.FileMode, uid, gid int) (err error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".otpgate-tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			err = removeLeftover(fmt.Errorf("write %s: %w", path, err), tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if err := f.Chown(uid, gid); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Rollback restores every written file, in reverse order: its old
// content with its old mode and owner, or removes it if it was new. It
// tries all of them and returns every failure.
func (a *Applied) Rollback() error {
	var errs []string
	for i := len(a.Files) - 1; i >= 0; i-- {
		w := a.Files[i]
		var err error
		if w.Backup == "" {
			err = os.Remove(w.Path)
			if err == nil {
				err = syncDir(filepath.Dir(w.Path))
			}
		} else {
			err = WriteAtomic(w.Path, w.old, w.mode, w.uid, w.gid)
		}
		if err != nil {
			fix := "restore it from " + w.Backup
			if w.Backup == "" {
				fix = "it was new: remove it"
			}
			errs = append(errs, fmt.Sprintf("%s: %v (%s)", w.Path, err, fix))
		}
	}
	if len(errs) > 0 {
		return errors.New("restore " + strings.Join(errs, "; "))
	}
	return nil
}
