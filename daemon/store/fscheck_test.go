//go:build root

package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// keySize is the size of a key file (package seal's KeySize).
const keySize = 32

func TestCheckStateDir(t *testing.T) {
	chown := func(t *testing.T, path string) {
		t.Helper()
		if err := os.Lchown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	chmod := func(t *testing.T, path string, mode os.FileMode) {
		t.Helper()
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	symlinkTo := func(t *testing.T, path string, mode os.FileMode) {
		t.Helper()
		target := filepath.Join(t.TempDir(), "target")
		writeFile(t, target, 10, mode)
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// setup prepares dir (an existing 0700 root directory) and returns
		// the directory to check and the path the error must name.
		setup func(t *testing.T, dir string) (check, named string)
		want  string // "" means the directory is accepted
	}{
		{"a 0700 root directory is accepted", func(t *testing.T, dir string) (string, string) {
			return dir, ""
		}, ""},
		{"a 0700 root directory with 0600 root key and database is accepted", func(t *testing.T, dir string) (string, string) {
			writeFile(t, filepath.Join(dir, KeyFile), keySize, 0o600)
			writeFile(t, filepath.Join(dir, DBFile), 100, 0o600)
			return dir, ""
		}, ""},
		{"unrelated files in the directory are not checked", func(t *testing.T, dir string) (string, string) {
			writeFile(t, filepath.Join(dir, "README"), 1, 0o644)
			return dir, ""
		}, ""},
		{"a 0755 directory is refused", func(t *testing.T, dir string) (string, string) {
			chmod(t, dir, 0o755)
			return dir, dir
		}, "mode 0755"},
		{"a 0770 directory is refused", func(t *testing.T, dir string) (string, string) {
			chmod(t, dir, 0o770)
			return dir, dir
		}, "mode 0770"},
		{"a 0500 directory is refused", func(t *testing.T, dir string) (string, string) {
			chmod(t, dir, 0o500)
			return dir, dir
		}, "mode 0500"},
		{"a sticky 0700 directory is refused", func(t *testing.T, dir string) (string, string) {
			chmod(t, dir, 0o700|os.ModeSticky)
			return dir, dir
		}, "mode 1700"},
		{"a symlink to a good directory is refused", func(t *testing.T, dir string) (string, string) {
			link := filepath.Join(filepath.Dir(dir), "link")
			if err := os.Symlink(dir, link); err != nil {
				t.Fatal(err)
			}
			return link, link
		}, "symlink"},
		{"a directory owned by another uid is refused", func(t *testing.T, dir string) (string, string) {
			chown(t, dir)
			return dir, dir
		}, "uid 65534"},
		{"a regular file in place of the directory is refused", func(t *testing.T, dir string) (string, string) {
			f := filepath.Join(dir, "file")
			writeFile(t, f, 1, 0o700)
			return f, f
		}, "not a directory"},
		{"a missing directory is refused", func(t *testing.T, dir string) (string, string) {
			missing := filepath.Join(dir, "missing")
			return missing, missing
		}, "no such file"},
		{"a 0644 database file is refused", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, DBFile)
			writeFile(t, p, 100, 0o644)
			return dir, p
		}, "mode 0644"},
		{"a symlinked database file is refused", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, DBFile)
			symlinkTo(t, p, 0o600)
			return dir, p
		}, "not a regular file"},
		{"a database file owned by another uid is refused", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, DBFile)
			writeFile(t, p, 100, 0o600)
			chown(t, p)
			return dir, p
		}, "uid 65534"},
		{"a directory in place of the database is refused", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, DBFile)
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			return dir, p
		}, "not a regular file"},
		{"a 0400 key file is refused", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, KeyFile)
			writeFile(t, p, keySize, 0o400)
			return dir, p
		}, "mode 0400"},
		{"a symlinked key file is refused", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, KeyFile)
			symlinkTo(t, p, 0o600)
			return dir, p
		}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check, named := tt.setup(t, newStateDir(t))
			err := CheckStateDir(check)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckStateDir(%s): %v", check, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckStateDir(%s) accepted it", check)
			}
			msg := err.Error()
			if !strings.Contains(msg, named+" ") && !strings.Contains(msg, named+":") {
				t.Errorf("error %q does not name %s", msg, named)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg, tt.want)
			}
			if !strings.HasPrefix(msg, "store: ") {
				t.Errorf("error %q lacks the store: prefix", msg)
			}
		})
	}
}

func TestCheckStateDirSaysWhatIsRequired(t *testing.T) {
	dir := newStateDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	err := CheckStateDir(dir)
	if err == nil || !strings.Contains(err.Error(), "must be exactly 0700") {
		t.Errorf("error %v does not state the required mode 0700", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 0); err != nil {
		t.Fatal(err)
	}
	err = CheckStateDir(dir)
	if err == nil || !strings.Contains(err.Error(), "must be owned by root (uid 0)") {
		t.Errorf("error %v does not state the required owner", err)
	}
}

func TestPrepareStateDirCreatesMissingDirectories(t *testing.T) {
	base := newStateDir(t)
	dir := filepath.Join(base, "var", "lib", "otpgate")
	if err := PrepareStateDir(dir); err != nil {
		t.Fatalf("PrepareStateDir: %v", err)
	}
	for path, want := range map[string]os.FileMode{
		dir:                               0o700,
		filepath.Join(base, "var", "lib"): 0o755,
		filepath.Join(base, "var"):        0o755,
	} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %s, want a directory with %04o", path, fi.Mode(), want)
		}
	}
	// Idempotent on a good directory.
	if err := PrepareStateDir(dir); err != nil {
		t.Errorf("second PrepareStateDir: %v", err)
	}
}

func TestPrepareStateDirDoesNotRepairABadDirectory(t *testing.T) {
	dir := newStateDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := PrepareStateDir(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("PrepareStateDir on a 0755 directory: %v; want an error naming %s", err, dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("PrepareStateDir changed the mode to %s; an admin must look at it", fi.Mode())
	}
}

// newStateDir returns a fresh root-owned 0700 directory.
func newStateDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root: the store requires root-owned files (make test runs as root)")
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t *testing.T, path string, size int, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{0x5a}, size), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
