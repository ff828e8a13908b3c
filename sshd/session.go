package sshd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/otpgate/otpgate/internal/accounts"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// Limits on what a client may store in a session before it starts.
const (
	maxEnvVars  = 64
	maxEnvBytes = 4096
	maxTermLen  = 64
)

// closeGrace is how long a session waits for a process's last output or
// for its exit after a hangup.
const closeGrace = 2 * time.Second

// userPath is the PATH given to sessions (Debian's sshd defaults).
const (
	userPath = "/usr/local/bin:/usr/bin:/bin:/usr/games"
	rootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// userConn is an authenticated connection.
type userConn struct {
	cfg   *Config
	conn  *ssh.ServerConn
	acct  *account
	perms *ssh.Permissions
	log   *slog.Logger
	// dial connects a forwarded channel with the user's credentials.
	dial func(ctx context.Context, cred *syscall.Credential, addr string) (net.Conn, error)
	// exe is the binary run as the session helper (selfExe).
	exe string
	// records are the login record files written for terminal sessions.
	records loginFiles
	// agent is the connection's forwarded agent socket, if a session asked
	// for one (agent.go).
	agentMu sync.Mutex
	agent   *agentForward
}

// RFC 4254 request payloads.
type (
	ptyRequestMsg struct {
		Term     string
		Columns  uint32
		Rows     uint32
		Width    uint32
		Height   uint32
		Modelist string
	}
	windowChangeMsg struct {
		Columns uint32
		Rows    uint32
		Width   uint32
		Height  uint32
	}
	envMsg struct {
		Name  string
		Value string
	}
	execMsg struct {
		Command string
	}
	subsystemMsg struct {
		Name string
	}
	signalMsg struct {
		Signal string
	}
	exitStatusMsg struct {
		Status uint32
	}
	exitSignalMsg struct {
		Signal     string
		CoreDumped bool
		Error      string
		Lang       string
	}
)

// signals maps RFC 4254 signal names to the signals a client may send.
var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP,
	"ILL": syscall.SIGILL, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE,
	"QUIT": syscall.SIGQUIT, "SEGV": syscall.SIGSEGV, "TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

func signalName(sig syscall.Signal) string {
	for name, s := range signals {
		if s == sig {
			return name
		}
	}
	return strconv.Itoa(int(sig))
}

// session is one "session" channel.
type session struct {
	u   *userConn
	ch  ssh.Channel
	log *slog.Logger
	// refused is set by handleRequest when the session's start was
	// refused with a reason on stderr (request loop only).
	refused bool

	mu      sync.Mutex // guards the fields below
	env     []string
	pty     *ptyRequestMsg
	ptmx    *os.File
	cmd     *exec.Cmd     // the session helper (pamsession.go)
	pid     int           // the user's process, run by the helper
	replies *json.Decoder // the helper's replies, read from link
	link    *os.File
	started bool
	exited  bool
	// agentSock is SSH_AUTH_SOCK, set when the client asked for agent
	// forwarding.
	agentSock string

	copies sync.WaitGroup // output copies of a process without a pty
}

func (u *userConn) handleSession(nch ssh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	s := &session{u: u, ch: ch, log: u.log}
	done := make(chan struct{})
	for req := range reqs {
		ok := s.handleRequest(req, done)
		if req.WantReply {
			req.Reply(ok, nil)
		}
		if s.refused {
			s.endRefused()
			s.refused = false
		}
	}
	// The client closed the channel (or the connection went away).
	s.mu.Lock()
	running := s.started && !s.exited
	ptmx, pid := s.ptmx, s.pid
	s.mu.Unlock()
	if running {
		if ptmx != nil {
			ptmx.Close() // the kernel hangs up the terminal: SIGHUP
		}
		if pid > 0 {
			_ = syscall.Kill(-pid, syscall.SIGHUP) // fails only once the group is gone
		}
	}
	if s.started {
		// Give the process a moment to exit after the hangup; one that
		// ignores it is left running (as with OpenSSH), and its exit is
		// reported to no one.
		select {
		case <-done:
		case <-time.After(closeGrace):
		}
	}
	ch.Close()
}

// handleRequest answers one channel request.
func (s *session) handleRequest(req *ssh.Request, done chan struct{}) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch req.Type {
	case "env":
		var m envMsg
		if s.started || ssh.Unmarshal(req.Payload, &m) != nil || len(s.env) >= maxEnvVars ||
			!validEnv(m.Name, m.Value) || reservedEnv[m.Name] || !envAccepted(s.u.cfg.AcceptEnv, m.Name) {
			return false
		}
		s.env = append(s.env, m.Name+"="+m.Value)
		return true
	case "pty-req":
		var m ptyRequestMsg
		if s.started || s.pty != nil || s.u.perms.Extensions[extNoPTY] != "" ||
			ssh.Unmarshal(req.Payload, &m) != nil || !validTerm(m.Term) {
			return false
		}
		s.pty = &m
		return true
	case "window-change":
		var m windowChangeMsg
		if s.pty == nil || ssh.Unmarshal(req.Payload, &m) != nil {
			return false
		}
		s.pty.Columns, s.pty.Rows, s.pty.Width, s.pty.Height = m.Columns, m.Rows, m.Width, m.Height
		if s.ptmx != nil {
			// A size the kernel refuses leaves the old one: nothing to undo.
			_ = pty.Setsize(s.ptmx, winsize(s.pty))
		}
		return true
	case "shell", "exec", "subsystem":
		if s.started {
			return false
		}
		if err := s.start(req); err != nil {
			s.log.Info("session request refused", "request", req.Type, "err", err)
			if errors.Is(err, errSessionRefused) {
				// PAM said why on stderr: end the session as a
				// process would, so that the client shows it
				// (a failed request may make it leave first).
				s.refused = true
				return true
			}
			return false
		}
		go s.wait(done)
		return true
	case "signal":
		var m signalMsg
		if ssh.Unmarshal(req.Payload, &m) != nil {
			return false
		}
		sig, ok := signals[m.Signal]
		if !ok || !s.started || s.exited || s.pid <= 0 {
			return false
		}
		return syscall.Kill(s.pid, sig) == nil
	case agentRequest:
		if s.started || s.agentSock != "" {
			return false
		}
		sock, err := s.u.forwardAgent()
		if err != nil {
			s.log.Info("agent forwarding refused", "err", err)
			return false
		}
		s.agentSock = sock
		return true
	default:
		// x11-req and anything else.
		s.log.Debug("session request refused", "request", req.Type)
		return false
	}
}

// reservedEnv are the variables the server sets; clients cannot override
// them.
var reservedEnv = map[string]bool{
	"USER": true, "LOGNAME": true, "HOME": true, "SHELL": true, "PATH": true, "MAIL": true,
	"SSH_CLIENT": true, "SSH_CONNECTION": true, "SSH_TTY": true, "TERM": true,
	"SSH_ORIGINAL_COMMAND": true, "LD_PRELOAD": true, "LD_LIBRARY_PATH": true, "SSH_AUTH_SOCK": true,
}

func validEnv(name, value string) bool {
	if name == "" || len(name)+len(value) > maxEnvBytes || strings.ContainsAny(name, "=\x00") || strings.ContainsRune(value, 0) {
		return false
	}
	return true
}

func validTerm(t string) bool {
	if len(t) > maxTermLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '+') {
			return false
		}
	}
	return true
}

func winsize(p *ptyRequestMsg) *pty.Winsize {
	clamp := func(v uint32) uint16 { return uint16(min(v, 0xffff)) }
	return &pty.Winsize{Rows: clamp(p.Rows), Cols: clamp(p.Columns), X: clamp(p.Width), Y: clamp(p.Height)}
}

// command works out argv for a start request: the login shell with -c for
// a command, or as a login shell ("-bash") for an interactive shell. A
// forced command (command= in authorized_keys) replaces whatever the
// client asked for, and the request is kept in SSH_ORIGINAL_COMMAND.
func (s *session) command(req *ssh.Request) (argv []string, original string, err error) {
	shell := s.u.acct.shell
	var cmdline string
	interactive := false
	switch req.Type {
	case "shell":
		interactive = true
	case "exec":
		var m execMsg
		if err := ssh.Unmarshal(req.Payload, &m); err != nil {
			return nil, "", fmt.Errorf("bad exec request: %w", err)
		}
		if strings.ContainsRune(m.Command, 0) {
			return nil, "", errors.New("command contains NUL")
		}
		cmdline = m.Command
	case "subsystem":
		var m subsystemMsg
		if err := ssh.Unmarshal(req.Payload, &m); err != nil {
			return nil, "", fmt.Errorf("bad subsystem request: %w", err)
		}
		if m.Name != "sftp" || s.u.cfg.SFTPServer == "" {
			return nil, "", fmt.Errorf("unsupported subsystem %q", m.Name)
		}
		cmdline = s.u.cfg.SFTPServer
	}
	if forced, ok := s.u.perms.Extensions[extCommand]; ok {
		original, cmdline, interactive = cmdline, forced, false
		if req.Type == "subsystem" {
			original = "internal-sftp"
		}
	}
	if interactive {
		return []string{shell}, "", nil
	}
	return []string{shell, "-c", cmdline}, original, nil
}

// environ builds the session's clean environment.
func (s *session) environ(ttyName string, original string, forced bool) []string {
	a := s.u.acct
	path := userPath
	if a.uid == 0 {
		path = rootPath
	}
	rh, rp, _ := net.SplitHostPort(s.u.conn.RemoteAddr().String())
	lh, lp, _ := net.SplitHostPort(s.u.conn.LocalAddr().String())
	env := []string{
		"USER=" + a.name,
		"LOGNAME=" + a.name,
		"HOME=" + a.home,
		"SHELL=" + a.shell,
		"PATH=" + path,
		"MAIL=/var/mail/" + a.name,
		"SSH_CLIENT=" + rh + " " + rp + " " + lp,
		"SSH_CONNECTION=" + rh + " " + rp + " " + lh + " " + lp,
	}
	if s.pty != nil {
		if s.pty.Term != "" {
			env = append(env, "TERM="+s.pty.Term)
		}
		env = append(env, "SSH_TTY="+ttyName)
	}
	if forced {
		env = append(env, "SSH_ORIGINAL_COMMAND="+original)
	}
	if s.agentSock != "" {
		env = append(env, "SSH_AUTH_SOCK="+s.agentSock)
	}
	return append(env, s.env...)
}

// start runs the user's process for a shell, exec or subsystem request.
// s.mu is held.
func (s *session) start(req *ssh.Request) error {
	if req.Type == "subsystem" && s.pty != nil {
		s.pty = nil // sftp over a terminal would corrupt the stream
	}
	argv, original, err := s.command(req)
	if err != nil {
		return err
	}
	_, forced := s.u.perms.Extensions[extCommand]
	cred, err := s.u.acct.credential()
	if err != nil {
		return err
	}
	args := slices.Clone(argv)
	if req.Type == "shell" && !forced {
		args = []string{"-" + filepath.Base(argv[0])}
	} else {
		args[0] = filepath.Base(argv[0])
	}
	dir := s.u.acct.home
	if !canEnter(dir, cred) {
		// As OpenSSH: start in / rather than fail.
		s.log.Warn("home directory not accessible; starting in /", "home", dir)
		dir = "/"
	}
	rhost, _, _ := net.SplitHostPort(s.u.conn.RemoteAddr().String())
	sreq := &sessionRequest{
		PAM: s.u.cfg.UsePAM,
		Items: pamItems{Service: s.u.cfg.PAMService, User: s.u.acct.name, RHost: rhost,
			RUser: s.u.acct.name, TTY: "ssh"},
		Path: argv[0], Args: args, Dir: dir,
		UID: cred.Uid, GID: cred.Gid, Groups: cred.Groups,
	}

	// The session helper runs as root in a session of its own; the user's
	// process is its child.
	cmd := exec.Command(s.u.exe, sessionHelperArg)
	cmd.Args[0] = "otpgate-sshd"
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var ptmx *os.File
	var stdin io.WriteCloser
	var stdout, stderr io.ReadCloser
	if s.pty != nil {
		var tty *os.File
		ptmx, tty, err = pty.Open()
		if err != nil {
			return fmt.Errorf("open pty: %w", err)
		}
		defer tty.Close()
		if err := chownTTY(tty, s.u.acct); err != nil {
			ptmx.Close()
			return err
		}
		_ = pty.Setsize(ptmx, winsize(s.pty)) // a refused size leaves the kernel's default
		sreq.Env = s.environ(tty.Name(), original, forced)
		sreq.PTY = true
		sreq.Items.TTY = tty.Name()
		sreq.Record = &loginRecord{Files: s.u.records, User: s.u.acct.name, UID: s.u.acct.uid, TTY: tty.Name(), Host: rhost}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	} else {
		sreq.Env = s.environ("", original, forced)
		if stdin, err = cmd.StdinPipe(); err != nil {
			return err
		}
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return err
		}
		if stderr, err = cmd.StderrPipe(); err != nil {
			return err
		}
	}
	reply, replies, link, err := s.startHelper(cmd, sreq)
	if err != nil {
		if ptmx != nil {
			ptmx.Close()
		}
		return err
	}
	if reply.Err != "" {
		s.log.Warn("session helper", "err", reply.Err)
	}
	if ptmx != nil {
		s.ptmx = ptmx
	} else {
		go func() {
			io.Copy(stdin, s.ch)
			stdin.Close()
		}()
		s.copies.Add(2)
		go func() { defer s.copies.Done(); io.Copy(s.ch, stdout) }()
		go func() { defer s.copies.Done(); io.Copy(s.ch.Stderr(), stderr) }()
	}
	s.cmd, s.pid, s.replies, s.link = cmd, reply.Pid, replies, link
	s.started = true
	s.log.Info("process started", "request", req.Type, "pty", s.pty != nil, "pid", reply.Pid, "forced_command", forced)
	return nil
}

// startHelper starts the session helper cmd, hands it req and waits for
// its first reply: the user's process started, or the session refused
// (the refusal's text is sent to the client's stderr, and the helper is
// reaped).
func (s *session) startHelper(cmd *exec.Cmd, req *sessionRequest) (*sessionReply, *json.Decoder, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("session helper: socketpair: %w", err)
	}
	// Non-blocking, so that the deadline below applies to it.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, nil, fmt.Errorf("session helper: socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "session-helper")
	child := os.NewFile(uintptr(fds[1]), "session-helper-child")
	cmd.ExtraFiles = []*os.File{child}
	err = cmd.Start()
	child.Close()
	if err != nil {
		parent.Close()
		return nil, nil, nil, fmt.Errorf("start session helper: %w", err)
	}
	dec := json.NewDecoder(parent)
	var reply sessionReply
	err = parent.SetDeadline(time.Now().Add(sessionStartTimeout))
	if err == nil {
		err = json.NewEncoder(parent).Encode(req)
	}
	if err == nil {
		err = dec.Decode(&reply)
	}
	if derr := parent.SetDeadline(time.Time{}); err == nil {
		err = derr
	}
	if err == nil && reply.Kind == "started" && reply.Pid > 0 {
		return &reply, dec, parent, nil
	}
	_ = cmd.Process.Kill() // it has exited already unless it hung
	parent.Close()
	_ = cmd.Wait() // reaps it; its reply, read above, says what went wrong
	switch {
	case err != nil:
		fmt.Fprint(s.ch.Stderr(), "otpgate-sshd: the session could not start.\r\n")
		return nil, nil, nil, fmt.Errorf("session helper: %w", err)
	case reply.Kind == "refused":
		fmt.Fprintf(s.ch.Stderr(), "%s\r\n", strings.ReplaceAll(reply.Message, "\n", "\r\n"))
		return nil, nil, nil, fmt.Errorf("%w: %s", errSessionRefused, reply.Err)
	}
	return nil, nil, nil, fmt.Errorf("session helper: unexpected reply %q", reply.Kind)
}

// errSessionRefused marks a session the PAM session stack refused; the
// reason has been written to the client's stderr.
var errSessionRefused = errors.New("session refused")

// endRefused ends a session whose start was refused, once the request is
// answered: exit status 1, then the channel closes.
func (s *session) endRefused() {
	s.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatusMsg{Status: 1}))
	s.ch.CloseWrite()
	s.ch.Close()
}

// sessionStartTimeout bounds the PAM session's opening (pam_systemd,
// for one, waits for logind).
const sessionStartTimeout = time.Minute

// chownTTY gives the terminal to the user, group tty, mode 0620, as
// OpenSSH does, so that programs reopening it by name work.
func chownTTY(tty *os.File, a *account) error {
	gid := int(a.gid)
	if g, err := accounts.LookupGroup("tty"); err == nil {
		gid = int(g.GID)
	}
	if err := tty.Chown(int(a.uid), gid); err != nil {
		return fmt.Errorf("chown tty: %w", err)
	}
	if err := tty.Chmod(0o620); err != nil {
		return fmt.Errorf("chmod tty: %w", err)
	}
	return nil
}

// wait copies the terminal's output (if any), waits for the process and
// its output, and reports the exit status or signal.
func (s *session) wait(done chan struct{}) {
	defer close(done)
	s.mu.Lock()
	ptmx := s.ptmx
	s.mu.Unlock()
	if ptmx != nil {
		go func() {
			io.Copy(ptmx, s.ch)
		}()
		outDone := make(chan struct{})
		go func() {
			io.Copy(s.ch, ptmx) // ends with EIO once every holder of the tty closed it
			close(outDone)
		}()
		reply := s.waitExit()
		// Output still buffered in the terminal is read at once; a
		// background process that keeps the terminal open must not hold
		// the session, so the master is closed soon after the exit.
		select {
		case <-outDone:
		case <-time.After(closeGrace):
		}
		// Under mu: a window-change request resizes the master under mu,
		// and a resize racing the close is a data race on the file.
		s.mu.Lock()
		ptmx.Close()
		s.mu.Unlock()
		s.exit(reply)
		return
	}
	s.copies.Wait()
	s.exit(s.waitExit())
}

// waitExit reads the session helper's last reply (sent once the user's
// process has exited and the session is closed) and reaps the helper.
func (s *session) waitExit() *sessionReply {
	var reply sessionReply
	err := s.replies.Decode(&reply)
	s.link.Close()
	if werr := s.cmd.Wait(); err == nil && reply.Kind != "exit" {
		err = fmt.Errorf("unexpected reply %q (helper: %v)", reply.Kind, werr) //nolint:errorlint // werr may be nil; the helper's state is only reported
	}
	if err != nil {
		s.log.Error("session helper failed", "err", err)
		return &sessionReply{Kind: "exit", Status: 255}
	}
	return &reply
}

func (s *session) exit(r *sessionReply) {
	s.mu.Lock()
	s.exited = true
	s.mu.Unlock()
	if r.CloseErr != "" {
		s.log.Warn("closing the PAM session failed", "err", r.CloseErr)
	}
	switch {
	case r.Err != "":
		s.log.Error("process wait failed", "err", r.Err)
		s.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatusMsg{Status: 255}))
	case r.Signal != "":
		s.log.Info("process exited", "signal", r.Signal)
		s.ch.SendRequest("exit-signal", false, ssh.Marshal(exitSignalMsg{Signal: r.Signal, CoreDumped: r.Core}))
	default:
		s.log.Info("process exited", "status", r.Status)
		s.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatusMsg{Status: uint32(r.Status)})) //nolint:gosec // an exit status is 0..255
	}
	s.ch.CloseWrite()
	s.ch.Close()
}

// canEnter reports whether a process with cred could chdir into dir,
// judged from its owner, group and mode bits (ACLs are not consulted; if
// they deny, starting the process fails instead).
func canEnter(dir string, cred *syscall.Credential) bool {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	st := fi.Sys().(*syscall.Stat_t)
	perm := fi.Mode().Perm()
	switch {
	case cred.Uid == 0:
		return true
	case st.Uid == cred.Uid:
		return perm&0o100 != 0
	case st.Gid == cred.Gid || slices.Contains(cred.Groups, st.Gid):
		return perm&0o010 != 0
	}
	return perm&0o001 != 0
}
