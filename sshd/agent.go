package sshd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// Agent forwarding (ssh -A), as OpenSSH does it: a session asks with
// auth-agent-req@openssh.com; the server listens on a Unix socket in a
// directory only the user can reach, and opens an auth-agent@openssh.com
// channel to the client for every connection to it. The socket and its
// directory are created by a helper running with the user's credentials,
// which removes them again when the SSH connection ends.
const (
	agentRequest   = "auth-agent-req@openssh.com"
	agentChannel   = "auth-agent@openssh.com"
	agentHelperArg = "__otpgate-sshd-agent"
	// extNoAgent is set in the Permissions of a key whose authorized_keys
	// line forbids agent forwarding (no-agent-forwarding, restrict).
	extNoAgent = "otpgate-no-agent"
)

// agentDirBase is where the agent socket directories are made.
var agentDirBase = os.TempDir()

// agentForward is a connection's forwarded agent: the listener and the
// helper that owns (and will remove) its socket.
type agentForward struct {
	path   string
	ln     net.Listener
	helper *exec.Cmd
	link   *os.File
	wg     sync.WaitGroup
}

// forwardAgent returns the connection's agent socket path, creating the
// socket on first use. It refuses unless allow_agent_forwarding is on and
// the key allows it.
func (u *userConn) forwardAgent() (string, error) {
	if !u.cfg.AllowAgentForwarding {
		return "", errors.New("allow_agent_forwarding is off")
	}
	if u.perms.Extensions[extNoAgent] != "" {
		return "", errors.New("the key's authorized_keys line forbids agent forwarding")
	}
	u.agentMu.Lock()
	defer u.agentMu.Unlock()
	if u.agent != nil {
		return u.agent.path, nil
	}
	cred, err := u.acct.credential()
	if err != nil {
		return "", err
	}
	a, err := listenAgentAsUser(u.exe, cred)
	if err != nil {
		return "", err
	}
	u.agent = a
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.serve(u) }()
	u.log.Info("agent forwarding", "socket", a.path)
	return a.path, nil
}

// serve relays every connection to the socket over a new channel to the
// client's agent.
func (a *agentForward) serve(u *userConn) {
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer c.Close()
			ch, reqs, err := u.conn.OpenChannel(agentChannel, nil)
			if err != nil {
				u.log.Info("agent channel refused by the client", "err", err)
				return
			}
			go ssh.DiscardRequests(reqs)
			done := make(chan struct{})
			go func() {
				io.Copy(ch, c)
				ch.CloseWrite()
				close(done)
			}()
			io.Copy(c, ch)
			c.(*net.UnixConn).CloseWrite()
			<-done
			ch.Close()
		}()
	}
}

// close stops listening and lets the helper remove the socket and its
// directory.
func (a *agentForward) close() {
	a.ln.Close()
	a.link.Close()      // the helper's cue
	_ = a.helper.Wait() // reaps it; it has nothing left to report
}

// agentHelper runs with the user's credentials: it makes a 0700 directory
// with a socket in it, hands the listening socket and its path to the
// server over helperFD, then waits for the server to close helperFD and
// removes both.
func agentHelper() int {
	reply := func(msg []byte, oob []byte) int {
		if err := unix.Sendmsg(helperFD, msg, oob, nil, 0); err != nil {
			return 1
		}
		return 0
	}
	fail := func(err error) int { return reply(append([]byte{replyError}, err.Error()...), nil) }
	// The kernel set the user's ids before exec; make sure root is gone
	// for good before making files on the user's behalf.
	if os.Getuid() != 0 && unix.Setuid(0) == nil {
		return fail(errors.New("agent helper could regain root"))
	}
	unix.Umask(0o077)
	dir, err := os.MkdirTemp(agentDirBase, "otpgate-ssh-")
	if err != nil {
		return fail(err)
	}
	defer func() { _ = os.Remove(dir) }() // best effort at exit: nobody is left to tell
	path := filepath.Join(dir, "agent."+strconv.Itoa(os.Getppid()))
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	unix.Umask(0o177)
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: path})
	if err == nil {
		defer func() { _ = os.Remove(path) }() // best effort at exit: nobody is left to tell
		err = unix.Listen(fd, 16)
	}
	if err != nil {
		return fail(err)
	}
	if code := reply(append([]byte{replyConnected}, path...), unix.UnixRights(fd)); code != 0 {
		return code
	}
	unix.Close(fd)
	// Wait for the end of the connection: the server closes its end.
	var buf [1]byte
	for {
		n, err := unix.Read(helperFD, buf[:])
		if n <= 0 && err != unix.EINTR {
			return 0
		}
	}
}

// listenAgentAsUser starts the agent helper with cred and returns the
// listener it made.
func listenAgentAsUser(exe string, cred *syscall.Credential) (*agentForward, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("agent helper: socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "agent-helper")
	child := os.NewFile(uintptr(fds[1]), "agent-helper-child")
	cmd := exec.Command(exe, agentHelperArg)
	cmd.Args[0] = "otpgate-sshd"
	cmd.Env = []string{"TMPDIR=" + agentDirBase}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{child}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setsid: true}
	err = cmd.Start()
	child.Close()
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("agent helper: %w", err)
	}
	fail := func(err error) (*agentForward, error) {
		parent.Close()
		_ = cmd.Wait() // reaps it; err says what went wrong
		return nil, err
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() }) // fails only once it has exited
	defer stop()
	n, oobn, _, _, err := unix.Recvmsg(int(parent.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fail(fmt.Errorf("agent helper: no reply: %w", err))
	}
	fd, err := receivedFD(oob[:oobn])
	if err != nil {
		return fail(err)
	}
	if fd < 0 {
		if n > 1 && buf[0] == replyError {
			return fail(fmt.Errorf("agent helper: %s", buf[1:n]))
		}
		return fail(fmt.Errorf("agent helper: bad reply (%d bytes)", n))
	}
	f := os.NewFile(uintptr(fd), "agent-listener")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return fail(fmt.Errorf("agent helper: %w", err))
	}
	if n < 2 || buf[0] != replyConnected {
		ln.Close()
		return fail(fmt.Errorf("agent helper: bad reply (%d bytes)", n))
	}
	return &agentForward{path: string(buf[1:n]), ln: ln, helper: cmd, link: parent}, nil
}

// markAgentOption wraps a PublicKeyCallback: when agent forwarding is
// allowed, the Permissions of a key whose authorized_keys line forbids it
// (no-agent-forwarding, restrict) get extNoAgent. The line is found again
// as the wrapped callback found it; if that fails, the key is marked too
// (fail closed).
func (s *Server) markAgentOption(cfg *Config, next func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error)) func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
	return func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		perms, err := next(c, key)
		if err != nil || perms == nil || !cfg.AllowAgentForwarding {
			return perms, err
		}
		if perms.Extensions == nil {
			perms.Extensions = map[string]string{}
		}
		perms.Extensions[extNoAgent] = "1"
		acct, lerr := lookupAccount(c.User())
		if lerr != nil {
			return perms, err
		}
		data, rerr := s.readKeys(acct)
		if rerr != nil {
			return perms, err
		}
		if opts, ok := findAuthorizedKey(data, key, remoteIP(c), s.now(), func(int, error) {}); ok && !opts.noAgentForwarding {
			delete(perms.Extensions, extNoAgent)
		}
		return perms, err
	}
}
