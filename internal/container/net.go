package container

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// pollInterval is the pause between two attempts of WaitForSocket and
// WaitForPort.
const pollInterval = 5 * time.Millisecond

// DialContext connects from the calling process to an address inside the
// container's network namespace, e.g. ("tcp", "127.0.0.1:2222") to talk to
// an sshd inside with an in-process SSH client. For "unix" the address is an
// in-container path. The connection may be used from any goroutine.
//
// For TCP and UDP the socket is created on an OS thread that has entered the
// container's network namespace; that thread is discarded afterwards.
func (c *Container) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.DialFromContext(ctx, network, nil, addr)
}

// DialFromContext is DialContext from the local address laddr inside the
// container (nil: any), e.g. &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}
// to come from another loopback address. laddr is ignored for "unix".
func (c *Container) DialFromContext(ctx context.Context, network string, laddr net.Addr, addr string) (net.Conn, error) {
	if !c.Alive() {
		return nil, ErrClosed
	}
	if network == "unix" || network == "unixpacket" {
		// Resolve the directory inside the container (symlinks included)
		// and connect through its descriptor, which also keeps the address
		// short enough for sun_path.
		dir, base := path.Split(path.Clean("/" + addr))
		fd, err := c.openIn(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return nil, fmt.Errorf("container: dial %s: %w", addr, err)
		}
		defer unix.Close(fd)
		var d net.Dialer
		return d.DialContext(ctx, network, fmt.Sprintf("/proc/self/fd/%d/%s", fd, base))
	}
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the runtime terminates the thread, with its
		// foreign network namespace, when this goroutine returns.
		runtime.LockOSThread()
		ns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", c.pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: fmt.Errorf("container: open network namespace: %w", err)}
			return
		}
		err = unix.Setns(ns, unix.CLONE_NEWNET)
		unix.Close(ns)
		if err != nil {
			ch <- result{err: fmt.Errorf("container: enter network namespace: %w", err)}
			return
		}
		d := net.Dialer{LocalAddr: laddr}
		conn, err := d.DialContext(ctx, network, addr)
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}

// WaitForSocket polls until a Unix stream (or seqpacket) socket is listening at the
// in-container path p (a listening socket in the container's network
// namespace is bound to the same file), and returns an error after timeout,
// or as soon as the container is gone. It does not connect, so the daemon
// sees no stray connection (use DialContext for that).
func (c *Container) WaitForSocket(p string, timeout time.Duration) error {
	return c.waitFor(timeout, "unix socket "+p, func() error { return c.unixListening(p) })
}

// WaitForPort polls until a TCP socket inside the container listens on port
// at 127.0.0.1 or a wildcard address (0.0.0.0, ::, ::ffff:127.0.0.1), and
// returns an error after timeout, or as soon as the container is gone. It
// does not connect, so no probe reaches rate limits or logs (use DialContext
// to connect).
func (c *Container) WaitForPort(port int, timeout time.Duration) error {
	return c.waitFor(timeout, "tcp port 127.0.0.1:"+strconv.Itoa(port), func() error { return c.tcpListening(port) })
}

// waitFor retries ready until it returns nil or timeout passes.
func (c *Container) waitFor(timeout time.Duration, what string, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if !c.Alive() {
			return fmt.Errorf("container: waiting for %s: container is gone", what)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container: %s not listening after %v: %w", what, timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// tcpListening reports (as a nil error) whether the container's
// /proc/net/tcp{,6} has a LISTEN socket on port at a loopback-reachable
// address.
func (c *Container) tcpListening(port int) error {
	wantPort := fmt.Sprintf("%04X", port)
	reachable := map[string]bool{
		"0100007F": true, "00000000": true, // 127.0.0.1, 0.0.0.0
		"00000000000000000000000000000000": true, // ::
		"0000000000000000FFFF00000100007F": true, // ::ffff:127.0.0.1
	}
	for _, file := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", c.pid, file))
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // 0A: TCP_LISTEN
				continue
			}
			addr, port, ok := strings.Cut(f[1], ":")
			if ok && port == wantPort && reachable[addr] {
				return nil
			}
		}
	}
	return errors.New("no listening socket")
}

// unixListening reports (as a nil error) whether a listening Unix stream
// socket of the container's network namespace is bound to the file at the
// in-container path p.
func (c *Container) unixListening(p string) error {
	want, err := c.statIn(p)
	if err != nil {
		return err
	}
	if want.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s is not a socket", p)
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/unix", c.pid))
	if err != nil {
		return err
	}
	// Num RefCount Protocol Flags Type St Inode Path
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 || f[3] != "00010000" || (f[4] != "0001" && f[4] != "0005") { // __SO_ACCEPTCON; SOCK_STREAM or SOCK_SEQPACKET
			continue
		}
		bound := f[7]
		if bound == p {
			return nil
		}
		if !path.IsAbs(bound) {
			continue // relative to a cwd we do not know, or abstract (@...)
		}
		if st, err := c.statIn(bound); err == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			return nil
		}
	}
	return errors.New("no process listens on it")
}
