package sshd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/msteinert/pam/v2"
	"golang.org/x/sys/unix"
)

// The PAM account check and every session run in helper processes:
// otpgate-sshd re-executed as root, one per account check and one per
// session. PAM modules change the process that calls them (pam_limits sets
// its resource limits, pam_loginuid its audit login uid, pam_keyinit its
// keyring), so they must not run in the server, which serves every user at
// once. As in OpenSSH, account management and open_session run as root
// before the user's process starts, the process inherits what the session
// modules set up, and close_session runs as root after it exits.
const (
	accountHelperArg = "__otpgate-sshd-account"
	sessionHelperArg = "__otpgate-sshd-session"
)

// accountTimeout bounds one account check (a PAM module waiting on a
// network directory should not hold a connection forever).
const accountTimeout = 30 * time.Second

// pamItems are the PAM items set before any PAM call.
type pamItems struct {
	Service string
	User    string
	RHost   string
	RUser   string
	TTY     string
}

// accountReply is the account helper's answer.
type accountReply struct {
	OK bool
	// Messages are what the PAM modules said to the user.
	Messages []string
	// Err is the PAM error, for the log.
	Err string
}

// sessionRequest is what a session helper is asked to run.
type sessionRequest struct {
	// PAM is false with use_pam = false: the helper then only keeps the
	// login records.
	PAM   bool
	Items pamItems

	Path string
	Args []string
	Dir  string
	Env  []string
	UID  uint32
	GID  uint32
	// Groups are the supplementary groups (never empty: see credential).
	Groups []uint32
	// PTY is set when the helper's standard descriptors are the session's
	// terminal: the process gets it as its controlling terminal.
	PTY bool
	// Record, if not nil, asks for login records (utmp, wtmp, lastlog).
	Record *loginRecord
}

// sessionReply is one message of a session helper to the server.
type sessionReply struct {
	// Kind is "started" (Pid is the user's process), "refused" (Message
	// is for the user, Err for the log) or "exit".
	Kind    string
	Pid     int
	Message string
	Err     string
	// CloseErr, in the "exit" reply, says why closing the PAM session
	// failed, for the log.
	CloseErr string
	// Exit status, or the name of the signal that ended the process.
	Status int
	Signal string
	Core   bool
}

// pamMessages collects what PAM modules say through the conversation; a
// module that prompts gets an error (nobody can answer after
// authentication).
type pamMessages struct {
	texts []string
	// echo, if not nil, receives each message at once.
	echo func(string)
}

func (m *pamMessages) respond(style pam.Style, msg string) (string, error) {
	switch style {
	case pam.TextInfo, pam.ErrorMsg:
		msg = strings.TrimRight(msg, "\n")
		if len(m.texts) < 32 {
			m.texts = append(m.texts, msg)
		}
		if m.echo != nil {
			m.echo(msg)
		}
		return "", nil
	}
	return "", errors.New("otpgate-sshd: PAM modules cannot prompt after authentication")
}

// startPAM starts a transaction for items with the conversation m.
func startPAM(items pamItems, m *pamMessages) (*pam.Transaction, error) {
	tx, err := pam.StartFunc(items.Service, items.User, m.respond)
	if err != nil {
		return nil, fmt.Errorf("pam_start %s: %w", items.Service, err)
	}
	for _, it := range []struct {
		item  pam.Item
		value string
	}{{pam.Rhost, items.RHost}, {pam.Ruser, items.RUser}, {pam.Tty, items.TTY}} {
		if it.value == "" {
			continue
		}
		if err := tx.SetItem(it.item, it.value); err != nil {
			_ = tx.End() // the SetItem error is the one to report
			return nil, fmt.Errorf("pam_set_item: %w", err)
		}
	}
	return tx, nil
}

// accountHelper runs the account stack for the items read from helperFD
// and writes an accountReply there.
func accountHelper() int {
	f := os.NewFile(helperFD, "account")
	var items pamItems
	if err := json.NewDecoder(f).Decode(&items); err != nil {
		return 2
	}
	runtime.LockOSThread()
	reply := accountReply{}
	m := &pamMessages{}
	tx, err := startPAM(items, m)
	if err == nil {
		err = tx.AcctMgmt(0)
		_ = tx.End() // the verdict is AcctMgmt's; End only frees the handle
	}
	reply.OK = err == nil
	reply.Messages = m.texts
	if err != nil {
		reply.Err = err.Error()
	}
	if json.NewEncoder(f).Encode(reply) != nil {
		return 1
	}
	return 0
}

// accountRefusal is the text a refused login shows when the PAM modules
// said nothing themselves (pam_access, for one, is silent).
const accountRefusal = "Access denied by the account policy of this system."

// checkAccount runs the PAM account stack for items in a helper process.
// It returns nil if the account may log in, and otherwise an error whose
// text is for the log and the message for the user.
func checkAccount(ctx context.Context, exe string, items pamItems) (message string, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return accountRefusal, fmt.Errorf("account helper: socketpair: %w", err)
	}
	// Non-blocking, so that the deadline below applies to it.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return accountRefusal, fmt.Errorf("account helper: socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "account-helper")
	child := os.NewFile(uintptr(fds[1]), "account-helper-child")
	defer parent.Close()
	ctx, cancel := context.WithTimeout(ctx, accountTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, accountHelperArg)
	cmd.Args[0] = "otpgate-sshd"
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{child}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	child.Close()
	if err != nil {
		return accountRefusal, fmt.Errorf("account helper: %w", err)
	}
	defer func() { _ = cmd.Wait() }() // reaps it; the reply, not the exit status, is the answer
	if d, ok := ctx.Deadline(); ok {
		if err := parent.SetDeadline(d); err != nil {
			return accountRefusal, fmt.Errorf("account helper: %w", err)
		}
	}
	if err := json.NewEncoder(parent).Encode(items); err != nil {
		return accountRefusal, fmt.Errorf("account helper: %w", err)
	}
	var reply accountReply
	if err := json.NewDecoder(parent).Decode(&reply); err != nil {
		return accountRefusal, fmt.Errorf("account helper: no answer: %w", err)
	}
	if reply.OK {
		return "", nil
	}
	message = strings.Join(reply.Messages, "\n")
	if strings.TrimSpace(message) == "" {
		message = accountRefusal
	}
	return message, fmt.Errorf("PAM account management refused the login: %s", reply.Err)
}

// sessionHelper opens the PAM session and writes the login records, runs
// the user's process, then closes both again. It is the helper mode
// sessionHelperArg; the request comes on helperFD, and the replies go
// back there.
func sessionHelper() int {
	runtime.LockOSThread()
	f := os.NewFile(helperFD, "session")
	var req sessionRequest
	if err := json.NewDecoder(f).Decode(&req); err != nil {
		return 2
	}
	enc := json.NewEncoder(f)
	refuse := func(msg string, err error) int {
		_ = enc.Encode(sessionReply{Kind: "refused", Message: msg, Err: err.Error()}) // if the server is gone, nobody is left to tell
		return 1
	}
	if os.Geteuid() != 0 {
		return refuse("session setup failed", errors.New("session helper is not root"))
	}
	// The helper outlives a hangup and a stop request long enough to
	// close the session; they are passed on to the user's process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)

	env := req.Env
	var tx *pam.Transaction
	if req.PAM {
		m := &pamMessages{}
		if req.PTY {
			// Messages of session modules (pam_motd, pam_mail) go to the
			// terminal, as with OpenSSH; a command without one gets none.
			m.echo = func(s string) { fmt.Fprint(os.Stdout, strings.ReplaceAll(s, "\n", "\r\n")+"\r\n") }
		}
		var err error
		if tx, err = startPAM(req.Items, m); err != nil {
			return refuse("PAM session setup failed.", err)
		}
		if err := tx.SetCred(pam.EstablishCred); err != nil {
			_ = tx.End() // the pam_setcred error is the one to report
			return refuse("PAM could not establish the credentials.", fmt.Errorf("pam_setcred: %w", err))
		}
		if err := tx.OpenSession(0); err != nil {
			// Undo pam_setcred; the pam_open_session error is the one to report.
			_ = tx.SetCred(pam.DeleteCred)
			_ = tx.End()
			return refuse("PAM refused to open the session.", fmt.Errorf("pam_open_session: %w", err))
		}
		penv, err := tx.GetEnvList()
		if err == nil {
			env = mergeEnv(env, penv)
		}
	}
	// closePAM closes the session and deletes the credentials. Its error
	// goes to the server's log with the last reply: by then the helper's
	// stderr is /dev/null.
	closePAM := func() error {
		if tx == nil {
			return nil
		}
		var errs []error
		if err := tx.CloseSession(0); err != nil {
			errs = append(errs, fmt.Errorf("pam_close_session: %w", err))
		}
		if err := tx.SetCred(pam.DeleteCred); err != nil {
			errs = append(errs, fmt.Errorf("pam_setcred: %w", err))
		}
		_ = tx.End() // frees the handle; the helper exits next
		return errors.Join(errs...)
	}

	cmd := &exec.Cmd{Path: req.Path, Args: req.Args, Dir: req.Dir, Env: env,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true,
		Credential: &syscall.Credential{Uid: req.UID, Gid: req.GID, Groups: req.Groups}}
	if req.PTY {
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 0
	}
	if err := cmd.Start(); err != nil {
		return refuse("The session could not start.", errors.Join(fmt.Errorf("start %s: %w", req.Path, err), closePAM()))
	}
	// The helper keeps no copy of the session's descriptors: the end of
	// the output is when the user's processes close them.
	if devnull, err := os.OpenFile("/dev/null", os.O_RDWR, 0); err == nil {
		for fd := 0; fd <= 2; fd++ {
			// Best effort: where it fails, the output ends when this
			// helper exits instead, at the end of the session.
			_ = unix.Dup2(int(devnull.Fd()), fd)
		}
		devnull.Close()
	}
	pid := cmd.Process.Pid
	var recErr error
	if req.Record != nil {
		req.Record.PID = int32(pid) //nolint:gosec // Linux pids fit pid_t, an int32
		recErr = req.Record.login()
	}
	msg := ""
	if recErr != nil {
		msg = recErr.Error()
	}
	_ = enc.Encode(sessionReply{Kind: "started", Pid: pid, Err: msg}) // if the server is gone, the session still ends normally

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
wait:
	for {
		select {
		case sig := <-sigs:
			_ = syscall.Kill(-pid, sig.(syscall.Signal)) // fails only once the group is gone
		case err = <-waited:
			break wait
		}
	}
	if req.Record != nil && recErr == nil {
		_ = req.Record.logout() // the login record's own failure was reported at the start
	}
	reply := sessionReply{Kind: "exit", Status: 255}
	if err := closePAM(); err != nil {
		reply.CloseErr = err.Error()
	}
	if st := cmd.ProcessState; st != nil {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			reply.Signal, reply.Core = signalName(ws.Signal()), ws.CoreDump()
		} else {
			reply.Status = st.ExitCode()
		}
	} else if err != nil {
		reply.Err = err.Error()
	}
	_ = enc.Encode(reply) // if the server is gone, nobody is left to tell
	return 0
}

// mergeEnv adds PAM's environment to env. PAM's variables replace the
// server's (as with OpenSSH), except the ones that say who and where the
// session is, which PAM has no business changing.
func mergeEnv(env []string, penv map[string]string) []string {
	keep := map[string]bool{"USER": true, "LOGNAME": true, "HOME": true, "SHELL": true,
		"SSH_CLIENT": true, "SSH_CONNECTION": true, "SSH_TTY": true, "SSH_AUTH_SOCK": true,
		"SSH_ORIGINAL_COMMAND": true}
	names := make([]string, 0, len(penv))
	for k := range penv {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if keep[k] || !validEnv(k, penv[k]) {
			continue
		}
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") })
		env = append(env, k+"="+penv[k])
	}
	return env
}
