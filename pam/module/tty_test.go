//go:build root

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a new pseudo-terminal of the given size and returns the
// path of its terminal side.
func openPTY(t *testing.T, cols, rows uint16) string {
	t.Helper()
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { unix.Close(master) })
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows}); err != nil {
		t.Fatalf("set the size: %v", err)
	}
	return fmt.Sprintf("/dev/pts/%d", n)
}

func TestTerminalSize(t *testing.T) {
	pts := openPTY(t, 132, 43)
	unsized := openPTY(t, 0, 0)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A link under /dev (in /dev/shm) to the terminal.
	shm, err := os.MkdirTemp("/dev/shm", "otpgate-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	link := filepath.Join(shm, "link")
	if err := os.Symlink(pts, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, tty  string
		cols, rows int
	}{
		{"a terminal as sudo names it", pts, 132, 43},
		{"a terminal as login names it", pts[len("/dev/"):], 132, 43},
		{"a terminal without a size", unsized, 0, 0},
		{"sshd's PAM_TTY", "ssh", 0, 0},
		{"an X display", ":0", 0, 0},
		{"unset", "", 0, 0},
		{"not a terminal", "/dev/null", 0, 0},
		{"a fifo outside /dev is not opened", fifo, 0, 0},
		{"a path that leaves /dev", "../" + fifo, 0, 0},
		{"a symbolic link is not followed", link, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, r := terminalSize(tt.tty); c != tt.cols || r != tt.rows {
				t.Errorf("terminalSize(%q) = %d×%d, want %d×%d", tt.tty, c, r, tt.cols, tt.rows)
			}
		})
	}
}
