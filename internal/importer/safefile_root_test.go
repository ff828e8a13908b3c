//go:build root

package importer

// These tests create files owned by other users; `make test` runs them as
// root (-tags root).

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadHomeFile(t *testing.T) {
	uid := os.Getuid()
	shadowLike := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(shadowLike, []byte("root:$y$secret:19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		setup    func(t *testing.T, home string) (homeArg string)
		uid      int
		wantErr  string
		notExist bool
	}{
		{name: "regular file of the user", setup: func(t *testing.T, h string) string { return h }},
		{name: "symlink to another file", setup: func(t *testing.T, h string) string {
			replace(t, h, func(p string) error { return os.Symlink(shadowLike, p) })
			return h
		}, wantErr: "is a symbolic link: refusing to follow it"},
		{name: "symlink to /etc/shadow", setup: func(t *testing.T, h string) string {
			replace(t, h, func(p string) error { return os.Symlink("/etc/shadow", p) })
			return h
		}, wantErr: "is a symbolic link"},
		{name: "hard link", setup: func(t *testing.T, h string) string {
			if err := os.Link(filepath.Join(h, GoogleAuthenticatorFile), filepath.Join(h, "other")); err != nil {
				t.Fatal(err)
			}
			return h
		}, wantErr: "has 2 hard links"},
		{name: "fifo does not block", setup: func(t *testing.T, h string) string {
			replace(t, h, func(p string) error { return syscall.Mkfifo(p, 0o600) })
			return h
		}, wantErr: "is not a regular file"},
		{name: "directory", setup: func(t *testing.T, h string) string {
			replace(t, h, func(p string) error { return os.Mkdir(p, 0o700) })
			return h
		}, wantErr: "is not a regular file"},
		{name: "owned by someone else", setup: func(t *testing.T, h string) string { return h }, uid: uid + 1,
			wantErr: "not by its user"},
		{name: "too large", setup: func(t *testing.T, h string) string {
			replace(t, h, func(p string) error { return os.WriteFile(p, make([]byte, MaxFileSize+1), 0o400) })
			return h
		}, wantErr: "65537 bytes, more than 65536"},
		{name: "missing", setup: func(t *testing.T, h string) string {
			replace(t, h, func(string) error { return nil })
			return h
		}, notExist: true},
		{name: "home writable by others", setup: func(t *testing.T, h string) string {
			if err := os.Chmod(h, 0o777); err != nil {
				t.Fatal(err)
			}
			return h
		}, wantErr: "writable by group or others (mode 0777)"},
		{name: "missing in a group-writable home (like /var/mail)", setup: func(t *testing.T, h string) string {
			replace(t, h, func(string) error { return nil })
			if err := os.Chmod(h, 0o2775); err != nil {
				t.Fatal(err)
			}
			return h
		}, notExist: true},
		{name: "symlink in a group-writable home", setup: func(t *testing.T, h string) string {
			replace(t, h, func(p string) error { return os.Symlink("/etc/shadow", p) })
			if err := os.Chmod(h, 0o770); err != nil {
				t.Fatal(err)
			}
			return h
		}, wantErr: "writable by group or others (mode 0770)"},
		{name: "home is a symlink owned by a user", setup: func(t *testing.T, h string) string {
			link := filepath.Join(filepath.Dir(h), "link")
			if err := os.Symlink(h, link); err != nil {
				t.Fatal(err)
			}
			if uid == 0 {
				if err := os.Lchown(link, 4242, 4242); err != nil {
					t.Fatal(err)
				}
			}
			return link
		}, wantErr: "is a symbolic link owned by uid"},
		{name: "relative home", setup: func(t *testing.T, h string) string { return "home" }, wantErr: "not an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := newHome(t)
			arg := tt.setup(t, home)
			u := uid
			if tt.uid != 0 {
				u = tt.uid
			}
			done := make(chan struct{})
			var data []byte
			var mode fs.FileMode
			var err error
			go func() {
				defer close(done)
				data, mode, err = ReadHomeFile(arg, u, GoogleAuthenticatorFile)
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("ReadHomeFile blocked")
			}
			switch {
			case tt.notExist:
				if !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("got %v, want fs.ErrNotExist", err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				if data != nil {
					t.Errorf("data returned with an error")
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if string(data) != gaContent || mode != 0o400 {
					t.Errorf("read %q mode %v, want the file and 0400", data, mode)
				}
			}
		})
	}
}

func TestReadHomeFileRootOwnedHomeSymlinkIsFollowed(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test checks root's behaviour and must run as root (make test does)")
	}
	home := newHome(t)
	link := filepath.Join(filepath.Dir(home), "admin-link")
	if err := os.Symlink(home, link); err != nil {
		t.Fatal(err)
	}
	data, _, err := ReadHomeFile(link, 0, GoogleAuthenticatorFile)
	if err != nil || string(data) != gaContent {
		t.Fatalf("got %q, %v", data, err)
	}
}
