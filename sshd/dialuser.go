package sshd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dialHelperArg is argv[1] of the dial helper: otpgate-sshd re-executed
// with the user's credentials to connect a forwarded channel, so that the
// socket belongs to the user (as with OpenSSH, whose post-authentication
// child dials as the user) and uid-based egress rules (iptables -m owner)
// apply to forwarded connections as to the user's own.
const dialHelperArg = "__otpgate-sshd-dial-as-user"

// selfExe is the running binary; exec follows the link without path
// permission checks, and it survives the binary being replaced.
const selfExe = "/proc/self/exe"

// Dial helper reply: 'C' with the connected socket as SCM_RIGHTS, or 'E'
// followed by the error text.
const (
	replyConnected = 'C'
	replyError     = 'E'
)

// helperFD is the descriptor the helper receives its end of the
// socketpair on (the first of exec.Cmd.ExtraFiles).
const helperFD = 3

// RunHelper runs the hidden helper mode that args (os.Args) ask for, if
// any, and returns its exit status and true; otherwise it returns false.
// otpgate-sshd's main calls it first.
func RunHelper(args []string) (int, bool) {
	if len(args) < 2 {
		return 0, false
	}
	switch args[1] {
	case dialHelperArg:
		return dialHelper(args[2:]), true
	case accountHelperArg:
		return accountHelper(), true
	case sessionHelperArg:
		return sessionHelper(), true
	case agentHelperArg:
		return agentHelper(), true
	}
	return 0, false
}

// dialHelper connects to the one address in args and hands the socket to
// the parent over helperFD.
func dialHelper(args []string) int {
	if len(args) != 1 {
		return 2
	}
	reply := func(msg []byte, oob []byte) int {
		if err := unix.Sendmsg(helperFD, msg, oob, nil, 0); err != nil {
			return 1
		}
		return 0
	}
	// The kernel set the user's ids before exec; make sure root is gone
	// for good before touching the network on the user's behalf.
	if os.Getuid() != 0 && unix.Setuid(0) == nil {
		return reply(append([]byte{replyError}, "dial helper could regain root"...), nil)
	}
	c, err := net.DialTimeout("tcp", args[0], dialTimeout) //nolint:gosec // port forwarding: the address the user asked for, dialled as the user
	if err != nil {
		return reply(append([]byte{replyError}, err.Error()...), nil)
	}
	defer c.Close()
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		return reply(append([]byte{replyError}, err.Error()...), nil)
	}
	defer f.Close()
	return reply([]byte{replyConnected}, unix.UnixRights(int(f.Fd())))
}

// dialAsUser connects to addr (host:port) with cred's uid, gid and
// groups: a helper process started with them makes the connection and
// passes the socket back. Errors are the helper's connect error or a
// failure to run it.
func dialAsUser(ctx context.Context, exe string, cred *syscall.Credential, addr string) (net.Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dial helper: socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "dial-helper")
	child := os.NewFile(uintptr(fds[1]), "dial-helper-child")
	defer parent.Close()
	ctx, cancel := context.WithTimeout(ctx, dialTimeout+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, dialHelperArg, addr)
	cmd.Args[0] = "otpgate-sshd"
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{child}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	child.Close()
	if err != nil {
		return nil, fmt.Errorf("dial helper: %w", err)
	}
	defer func() { _ = cmd.Wait() }() // reaps it; the reply, not the exit status, is the answer

	pc, err := net.FileConn(parent)
	if err != nil {
		return nil, fmt.Errorf("dial helper: %w", err)
	}
	defer pc.Close()
	uc, ok := pc.(*net.UnixConn)
	if !ok {
		return nil, errors.New("dial helper: socketpair is not a Unix socket")
	}
	if d, ok := ctx.Deadline(); ok {
		if err := uc.SetReadDeadline(d); err != nil {
			return nil, fmt.Errorf("dial helper: %w", err)
		}
	}
	buf := make([]byte, 1024)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("dial helper: no reply: %w", err)
	}
	fd, err := receivedFD(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if fd < 0 {
		if n > 1 && buf[0] == replyError {
			return nil, errors.New(string(buf[1:n]))
		}
		return nil, fmt.Errorf("dial helper: bad reply (%d bytes)", n)
	}
	f := os.NewFile(uintptr(fd), "forward")
	defer f.Close()
	if n != 1 || buf[0] != replyConnected {
		return nil, fmt.Errorf("dial helper: bad reply (%d bytes)", n)
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("dial helper: %w", err)
	}
	if _, ok := c.(*net.TCPConn); !ok {
		c.Close()
		return nil, errors.New("dial helper: the descriptor passed back is not a TCP socket")
	}
	return c, nil
}

// receivedFD returns the one descriptor in a control message, or -1 if
// there is none; more than one is an error (and every one is closed).
func receivedFD(oob []byte) (int, error) {
	if len(oob) == 0 {
		return -1, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1, fmt.Errorf("dial helper: %w", err)
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, got...)
		}
	}
	switch len(fds) {
	case 0:
		return -1, nil
	case 1:
		return fds[0], nil
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	return -1, fmt.Errorf("dial helper: %d descriptors passed back, want 1", len(fds))
}
