package protocol

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// blockingConn is a connected Unix stream socket used with blocking system
// calls on the calling thread, each bounded by the time left until
// deadline (see Client.Do).
type blockingConn struct {
	fd       int
	deadline time.Time
}

// dialBlocking connects to the Unix socket at path before deadline.
func dialBlocking(path string, deadline time.Time) (*blockingConn, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	c := &blockingConn{fd: fd, deadline: deadline}
	sa := &unix.SockaddrUnix{Name: path}
	for {
		// On a Unix socket, connect waits (for room in the listener's
		// backlog) at most SO_SNDTIMEO.
		if err = c.arm(unix.SO_SNDTIMEO); err != nil {
			break
		}
		err = unix.Connect(fd, sa)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case err == nil, errors.Is(err, unix.EISCONN):
		return c, nil
	case errors.Is(err, unix.EAGAIN):
		err = os.ErrDeadlineExceeded
	case !errors.Is(err, os.ErrDeadlineExceeded):
		err = os.NewSyscallError("connect", err)
	}
	c.Close()
	return nil, err
}

// arm sets the socket option opt (SO_SNDTIMEO or SO_RCVTIMEO) to the time
// left, or returns os.ErrDeadlineExceeded when none is.
func (c *blockingConn) arm(opt int) error {
	left := time.Until(c.deadline)
	if left <= 0 {
		return os.ErrDeadlineExceeded
	}
	// Rounded up: a zero timeval would mean "wait forever".
	tv := unix.NsecToTimeval(int64(left + time.Microsecond - 1))
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, opt, &tv); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	return nil
}

// Read reads once, restarting after a signal (a socket with a timeout is
// never restarted by SA_RESTART); it returns os.ErrDeadlineExceeded when
// the deadline passes first and io.EOF when the peer closed. It reads with
// syscall.Read, which the race detector knows as the reading end of
// package syscall's writes (those of otpgated's net.Conn).
func (c *blockingConn) Read(p []byte) (int, error) {
	for {
		if err := c.arm(unix.SO_RCVTIMEO); err != nil {
			return 0, err
		}
		n, err := syscall.Read(c.fd, p)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return 0, os.ErrDeadlineExceeded
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes all of p. MSG_NOSIGNAL: a daemon that closed the connection
// is an EPIPE error, never a SIGPIPE in the host program.
func (c *blockingConn) Write(p []byte) (int, error) {
	raceReleaseIO(c.fd)
	done := 0
	for done < len(p) {
		if err := c.arm(unix.SO_SNDTIMEO); err != nil {
			return done, err
		}
		n, err := unix.SendmsgN(c.fd, p[done:], nil, nil, unix.MSG_NOSIGNAL)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return done, os.ErrDeadlineExceeded
		case err != nil:
			return done, os.NewSyscallError("sendmsg", err)
		}
		done += n
	}
	return done, nil
}

// peerUID reads the server's uid with SO_PEERCRED.
func (c *blockingConn) peerUID() (uint32, error) {
	cred, err := unix.GetsockoptUcred(c.fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	return cred.Uid, nil
}

// Close closes the socket.
func (c *blockingConn) Close() error {
	return unix.Close(c.fd)
}
