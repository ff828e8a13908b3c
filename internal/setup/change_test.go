package setup

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestApplyAndRollback(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "sshd")
	if err := os.WriteFile(existing, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(existing, 0o640); err != nil {
		t.Fatal(err)
	}
	created := filepath.Join(dir, "sub", "00-otpgate.conf")
	now := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	a, err := Apply([]*Change{
		{Path: existing, Old: []byte("old\n"), New: []byte("new\n")},
		{Path: created, New: []byte("created\n"), Mode: 0o644},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	backup := existing + ".otpgate-backup-20260504T030201"
	if a.Files[0].Backup != backup || a.Files[1].Backup != "" {
		t.Errorf("backups %q %q", a.Files[0].Backup, a.Files[1].Backup)
	}
	wantFile(t, existing, "new\n", 0o640)
	wantFile(t, backup, "old\n", 0o600)
	wantFile(t, created, "created\n", 0o644)
	if m, _ := filepath.Glob(filepath.Join(dir, ".*otpgate-tmp*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}

	if err := a.Rollback(); err != nil {
		t.Fatal(err)
	}
	wantFile(t, existing, "old\n", 0o640)
	if _, err := os.Stat(created); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the new file was not removed: %v", err)
	}
	wantFile(t, backup, "old\n", 0o600) // kept

	// A second backup in the same second gets its own name.
	b, err := Apply([]*Change{{Path: existing, Old: []byte("old\n"), New: []byte("x\n")}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if b.Files[0].Backup != backup+"-2" {
		t.Errorf("second backup %q", b.Files[0].Backup)
	}
}

func TestApplyRefusesAChangedFile(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first")
	second := filepath.Join(dir, "second")
	for _, p := range []string{first, second} {
		if err := os.WriteFile(p, []byte("now\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Apply([]*Change{
		{Path: first, Old: []byte("now\n"), New: []byte("new\n")},
		{Path: second, Old: []byte("planned\n"), New: []byte("new\n")},
	}, time.Now())
	if err == nil || !strings.Contains(err.Error(), second+" changed since it was read") {
		t.Fatalf("error %v", err)
	}
	// The first file was restored.
	wantFile(t, first, "now\n", 0o644)
	wantFile(t, second, "now\n", 0o644)
}

func TestDiff(t *testing.T) {
	c := &Change{Path: "/etc/pam.d/sudo", Old: []byte("a\nb\n"), New: []byte("a\nx\nb\n")}
	d := c.Diff()
	for _, want := range []string{"--- /etc/pam.d/sudo\n", "+++ /etc/pam.d/sudo\n", "+x\n"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	n := &Change{Path: "/etc/ssh/sshd_config.d/00-otpgate.conf", New: []byte("UsePAM yes\n")}
	if d := n.Diff(); !strings.Contains(d, "--- /dev/null\n") || !strings.Contains(d, "+UsePAM yes\n") {
		t.Errorf("diff of a new file:\n%s", d)
	}
}

func wantFile(t *testing.T, p, content string, mode fs.FileMode) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != content {
		t.Errorf("%s: %q, want %q", p, data, content)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), mode)
	}
}
