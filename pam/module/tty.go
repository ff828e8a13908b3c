package main

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxTerminal bounds a terminal size passed on (the protocol's range).
const maxTerminal = 10000

// terminalSize returns the size in characters of the terminal PAM_TTY
// names (e.g. "/dev/pts/3" or "pts/3" under sudo and login), or 0, 0 when
// it is not a terminal device that can be opened: sshd's "ssh", an X
// display, a path outside /dev. The device is opened read-only, without
// becoming the controlling terminal and without waiting, and closed again.
func terminalSize(tty string) (width, height int) {
	if tty == "" {
		return 0, 0
	}
	path := tty
	if !strings.HasPrefix(path, "/") {
		path = "/dev/" + path
	}
	if path = filepath.Clean(path); !strings.HasPrefix(path, "/dev/") {
		return 0, 0
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return 0, 0
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return 0, 0
	}
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return 0, 0 // not a terminal
	}
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 || ws.Row == 0 || ws.Col > maxTerminal || ws.Row > maxTerminal {
		return 0, 0
	}
	return int(ws.Col), int(ws.Row)
}
