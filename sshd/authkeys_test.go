//go:build root

package sshd

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/accounts"
	"github.com/otpgate/otpgate/internal/testutil"
)

// TestReadAuthorizedKeysStrictModes is the permission table for
// authorized_keys and the directories above it.
func TestReadAuthorizedKeysStrictModes(t *testing.T) {
	requireRoot(t)
	const uid, other = testUID, testUID + 1
	tests := []struct {
		name  string
		setup func(t *testing.T, home string)
		want  error // nil: readable
	}{
		{name: "user-owned 0600 file in 0700 .ssh", setup: func(t *testing.T, home string) {}},
		{name: "root-owned file", setup: func(t *testing.T, home string) {
			testutil.Must(t, os.Chown(filepath.Join(home, ".ssh", "authorized_keys"), 0, 0))
		}},
		{name: "world-readable file is fine", setup: func(t *testing.T, home string) {
			testutil.Must(t, os.Chmod(filepath.Join(home, ".ssh", "authorized_keys"), 0o644))
		}},
		{name: "group-writable file", setup: func(t *testing.T, home string) {
			testutil.Must(t, os.Chmod(filepath.Join(home, ".ssh", "authorized_keys"), 0o620))
		}, want: errInsecure},
		{name: "world-writable file", setup: func(t *testing.T, home string) {
			testutil.Must(t, os.Chmod(filepath.Join(home, ".ssh", "authorized_keys"), 0o606))
		}, want: errInsecure},
		{name: "file owned by another user", setup: func(t *testing.T, home string) {
			testutil.Must(t, os.Chown(filepath.Join(home, ".ssh", "authorized_keys"), other, other))
		}, want: errInsecure},
		{name: ".ssh writable by group", setup: func(t *testing.T, home string) {
			testutil.Must(t, os.Chmod(filepath.Join(home, ".ssh"), 0o770))
		}, want: errInsecure},
		{name: ".ssh owned by another user", setup: func(t *testing.T, home string) {
			testutil.Must(t, os.Chown(filepath.Join(home, ".ssh"), other, other))
		}, want: errInsecure},
		{name: "home writable by others", setup: func(t *testing.T, home string) {
			testutil.Must(t, os.Chmod(home, 0o777))
		}, want: errInsecure},
		{name: "parent of home writable by others", setup: func(t *testing.T, home string) {
			testutil.Must(t, os.Chmod(filepath.Dir(home), 0o777))
		}, want: errInsecure},
		{name: "parent of home owned by another user", setup: func(t *testing.T, home string) {
			testutil.Must(t, os.Chown(filepath.Dir(home), other, other))
		}, want: errInsecure},
		{name: "root-owned sticky dir above home", setup: func(t *testing.T, home string) {
			testutil.Must(t, os.Chmod(filepath.Dir(home), os.ModeSticky|0o777))
		}},
		{name: "file is a symlink", setup: func(t *testing.T, home string) {
			p := filepath.Join(home, ".ssh", "authorized_keys")
			testutil.Must(t, os.Rename(p, p+"2"))
			testutil.Must(t, os.Symlink(p+"2", p))
		}, want: errSymlink},
		{name: "file is a directory", setup: func(t *testing.T, home string) {
			p := filepath.Join(home, ".ssh", "authorized_keys")
			testutil.Must(t, os.Remove(p))
			testutil.Must(t, os.Mkdir(p, 0o700))
			testutil.Must(t, os.Chown(p, uid, uid))
		}, want: errInsecure},
		{name: "file is a fifo", setup: func(t *testing.T, home string) {
			p := filepath.Join(home, ".ssh", "authorized_keys")
			testutil.Must(t, os.Remove(p))
			mkfifo(t, p)
			testutil.Must(t, os.Chown(p, uid, uid))
		}, want: errInsecure},
		{name: "missing file", setup: func(t *testing.T, home string) {
			testutil.Must(t, os.Remove(filepath.Join(home, ".ssh", "authorized_keys")))
		}, want: fs.ErrNotExist},
		{name: "oversized file", setup: func(t *testing.T, home string) {
			testutil.Must(t, os.WriteFile(filepath.Join(home, ".ssh", "authorized_keys"), make([]byte, maxAuthorizedKeys+1), 0o600))
		}, want: errTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir() // root-owned 0700 chain under /tmp
			testutil.Must(t, os.Chmod(base, 0o755))
			home := filepath.Join(base, "home")
			ssh := filepath.Join(home, ".ssh")
			file := filepath.Join(ssh, "authorized_keys")
			testutil.Must(t, os.MkdirAll(ssh, 0o700))
			testutil.Must(t, os.WriteFile(file, []byte("ssh-ed25519 AAAA test\n"), 0o600))
			for _, p := range []string{home, ssh, file} {
				if err := os.Chown(p, uid, uid); err != nil {
					t.Fatal(err)
				}
			}
			tt.setup(t, home)
			data, err := readAuthorizedKeys(file, uid)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want == nil && !strings.HasPrefix(string(data), "ssh-ed25519"):
				t.Fatalf("read %q", data)
			case errors.Is(tt.want, errSymlink) && err == nil:
				t.Fatal("symlink followed")
			case tt.want != nil && !errors.Is(tt.want, errSymlink) && !errors.Is(err, tt.want):
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// errSymlink marks cases that must fail with whatever error open(2) gives
// for O_NOFOLLOW (ELOOP).
var errSymlink = errors.New("symlink")

func mkfifo(t *testing.T, p string) {
	t.Helper()
	if err := mkfifoErr(p); err != nil {
		t.Fatal(err)
	}
}

func TestParseKeyOptions(t *testing.T) {
	tests := []struct {
		opts    []string
		want    keyOptions
		wantErr bool
	}{
		{opts: nil, want: keyOptions{}},
		{opts: []string{"restrict"}, want: keyOptions{noPTY: true, noPortForwarding: true}},
		{opts: []string{"restrict", "pty"}, want: keyOptions{noPortForwarding: true}},
		{opts: []string{"NO-PTY", "no-agent-forwarding", "no-X11-forwarding", "no-user-rc"}, want: keyOptions{noPTY: true}},
		{opts: []string{`command="echo \"hi\""`}, want: keyOptions{command: `echo "hi"`, hasCommand: true}},
		{opts: []string{`permitopen="localhost:22,db:*"`}, want: keyOptions{permitOpen: []string{"localhost:22", "db:*"}}},
		{opts: []string{`from="10.0.0.0/8"`}, want: keyOptions{from: "10.0.0.0/8"}},
		{opts: []string{`environment="A=B"`}, want: keyOptions{}},
		{opts: []string{"cert-authority"}, wantErr: true},
		{opts: []string{`principals="a"`}, wantErr: true},
		{opts: []string{`tunnel="0"`}, wantErr: true},
		{opts: []string{"verify-required"}, wantErr: true},
		{opts: []string{"frobnicate"}, wantErr: true},
		{opts: []string{"command=echo"}, wantErr: true},
		{opts: []string{"command"}, wantErr: true},
		{opts: []string{`from="10.0.0.0/33"`}, wantErr: true},
		{opts: []string{`permitopen="nohost"`}, wantErr: true},
		{opts: []string{`expiry-time="2001"`}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseKeyOptions(tt.opts)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseKeyOptions(%q) accepted", tt.opts)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseKeyOptions(%q): %v", tt.opts, err)
			continue
		}
		if got.noPTY != tt.want.noPTY || got.noPortForwarding != tt.want.noPortForwarding || got.command != tt.want.command ||
			got.hasCommand != tt.want.hasCommand || strings.Join(got.permitOpen, ",") != strings.Join(tt.want.permitOpen, ",") || got.from != tt.want.from {
			t.Errorf("parseKeyOptions(%q) = %+v, want %+v", tt.opts, got, tt.want)
		}
	}
}

func TestMatchFrom(t *testing.T) {
	tests := []struct {
		list string
		ip   string
		want bool
	}{
		{"192.0.2.7", "192.0.2.7", true},
		{"192.0.2.*", "192.0.2.7", true},
		{"192.0.2.?", "192.0.2.7", true},
		{"192.0.2.?", "192.0.2.77", false},
		{"10.0.0.0/8,192.0.2.0/24", "192.0.2.7", true},
		{"192.0.2.0/24,!192.0.2.7", "192.0.2.7", false},
		{"!192.0.2.8,*", "192.0.2.7", true},
		{"host.example.org", "192.0.2.7", false},
		{"2001:db8::/32", "2001:db8::1", true},
		{"*", "::1", true},
	}
	for _, tt := range tests {
		got, err := matchFrom(tt.list, net.ParseIP(tt.ip))
		if err != nil || got != tt.want {
			t.Errorf("matchFrom(%q, %s) = %v, %v; want %v", tt.list, tt.ip, got, err, tt.want)
		}
	}
}

func TestFindAuthorizedKey(t *testing.T) {
	key, other := newSigner(t), newSigner(t)
	ip := net.ParseIP("192.0.2.7")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.Local)
	tests := []struct {
		name  string
		lines []string
		found bool
		noPTY bool
	}{
		{name: "plain", lines: []string{authorizedLine(key, "")}, found: true},
		{name: "comments and blanks", lines: []string{"# x", "", "  " + authorizedLine(key, "")}, found: true},
		{name: "other key only", lines: []string{authorizedLine(other, "")}},
		{name: "garbage line then key", lines: []string{"ssh-ed25519 !!!", authorizedLine(key, "no-pty")}, found: true, noPTY: true},
		{name: "refused source, then allowed line", lines: []string{authorizedLine(key, `from="10.*"`), authorizedLine(key, "no-pty")}, found: true, noPTY: true},
		{name: "unsupported option only", lines: []string{authorizedLine(key, "cert-authority")}},
		{name: "expired", lines: []string{authorizedLine(key, `expiry-time="20291231"`)}},
		{name: "not yet expired", lines: []string{authorizedLine(key, `expiry-time="203001020304"`)}, found: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skipped := 0
			o, ok := findAuthorizedKey([]byte(strings.Join(tt.lines, "\n")), key.PublicKey(), ip, now, func(int, error) { skipped++ })
			if ok != tt.found || o.noPTY != tt.noPTY {
				t.Errorf("found %v noPTY %v, want %v %v (skipped %d)", ok, o.noPTY, tt.found, tt.noPTY, skipped)
			}
		})
	}
}

func TestAccountUsable(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	testutil.Must(t, os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644))
	now := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	day := func(tm time.Time) int64 { return tm.Unix() / 86400 }
	entry := func(expire int64, locked bool) *accounts.Shadow {
		return &accounts.Shadow{Name: "u", Locked: locked, LastChange: 19000, Max: 99999, Warn: 7, Inactive: -1, Expire: expire}
	}
	tests := []struct {
		name   string
		shadow *accounts.Shadow // nil: no entry
		err    error            // of the shadow look-up
		shell  string
		ok     bool
	}{
		{name: "no expiry", shadow: entry(-1, false), ok: true},
		{name: "expires later", shadow: entry(day(now.AddDate(0, 0, 2)), false), ok: true},
		{name: "expired", shadow: entry(day(now.AddDate(0, 0, -1)), false)},
		{name: "expired on day 0 (chage -E 0)", shadow: entry(0, false)},
		{name: "locked password does not block keys", shadow: entry(-1, true), ok: true},
		{name: "no shadow entry", ok: true},
		{name: "shadow database unreadable: refused", err: errors.New("accounts: read the shadow entry of u: permission denied")},
		{name: "shell not executable", shadow: entry(-1, false), shell: noexec},
		{name: "shell missing", shadow: entry(-1, false), shell: "/nonexistent/sh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := lookupShadow
			t.Cleanup(func() { lookupShadow = old })
			lookupShadow = func(name string) (*accounts.Shadow, error) {
				switch {
				case tt.err != nil:
					return nil, tt.err
				case tt.shadow == nil || name != tt.shadow.Name:
					return nil, fmt.Errorf("no entry for %s: %w", name, accounts.ErrNotFound)
				}
				return tt.shadow, nil
			}
			shell := tt.shell
			if shell == "" {
				shell = "/bin/sh"
			}
			err := (&account{name: "u", shell: shell}).usable(now)
			if (err == nil) != tt.ok {
				t.Errorf("usable = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
