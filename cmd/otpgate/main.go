// Command otpgate is the command-line client of otpgated: users enroll
// their authenticator app, see their status, turn two-factor
// authentication off and make new recovery codes; root lists, resets,
// unlocks, enrolls on behalf of and imports users.
//
// otpgate talks to the daemon only through the Unix socket
// (internal/protocol); it holds no secret and no state of its own. The
// daemon decides what the caller may do from the socket's peer
// credentials, so the checks here only give earlier, clearer messages.
// It links no store: copying the stores is otpgated -migrate-store.
// setup reads and, with --apply, writes sshd_config and /etc/pam.d as root
// (internal/setup).
//
// Exit codes: 0 success, 1 failure (wrong code, refused, bad input),
// 2 usage error, 3 otpgated unreachable, 4 permission denied, 130 (128 +
// SIGINT) interrupted with Ctrl-C, 143 on SIGTERM.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/version"
	"golang.org/x/term"

	"github.com/otpgate/otpgate/internal/accounts"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitUnavailable = 3
	exitPermission  = 4
)

// service is the Service field of every request, for the audit log.
const service = "otpgate"

// app is one invocation: its standard streams, who runs it and how to
// reach the daemon.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// inFd and outFd are the descriptors of stdin and stdout, or -1 when
	// they are not terminals.
	inFd, outFd int
	lines       *bufio.Reader // stdin, line by line, when it is not a terminal
	getenv      func(string) string
	uid         int // the real uid
	tty         string
	socketFlag  string
	now         func() time.Time
}

func main() {
	ctx, stop := notifyInterrupt(context.Background())
	a := &app{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		inFd: terminalFd(os.Stdin), outFd: terminalFd(os.Stdout),
		getenv: os.Getenv, uid: os.Getuid(), now: time.Now,
	}
	if a.inFd >= 0 {
		if name, err := os.Readlink("/proc/self/fd/0"); err == nil {
			a.tty = name
		}
	}
	code := a.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// interrupted is the cause of the command's context ending on SIGINT
// (Ctrl-C) or SIGTERM.
type interrupted struct{ sig syscall.Signal }

func (i interrupted) Error() string { return "interrupted by " + i.sig.String() }

// notifyInterrupt returns a context that ends, with an interrupted cause,
// when the process gets SIGINT or SIGTERM; stop ends the watch.
func notifyInterrupt(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			cancel(interrupted{s.(syscall.Signal)})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

// terminalFd returns f's descriptor if it is a terminal, else -1.
func terminalFd(f *os.File) int {
	if term.IsTerminal(int(f.Fd())) {
		return int(f.Fd())
	}
	return -1
}

// usageError is a command-line mistake: exit code 2, with the usage of the
// command.
type usageError struct {
	cmd string // the command whose usage applies, "" for the top level
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// errPermission is a refusal decided before asking the daemon.
var errPermission = errors.New("admin commands need root: run with sudo")

// errSilent is returned after the command has already printed why it
// failed.
var errSilent = errors.New("failed")

// run executes the command line args and returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	err := a.dispatch(ctx, args)
	// Interrupted (Ctrl-C at a prompt or while otpgated was asked): end
	// as a shell expects, 128 + the signal, and say nothing of otpgated,
	// whose request may have been cut short by the interruption itself.
	if i := (interrupted{}); errors.As(context.Cause(ctx), &i) {
		return 128 + int(i.sig)
	}
	if err == nil {
		return exitOK
	}
	var ue *usageError
	var pe *protocol.Error
	switch {
	case errors.As(err, &ue):
		a.errorf("%s", ue.msg)
		fmt.Fprintf(a.stderr, "Run '%s' for usage.\n", strings.TrimSpace("otpgate help "+ue.cmd))
		return exitUsage
	case errors.Is(err, protocol.ErrUnavailable):
		sock := a.socket()
		for _, line := range unreachable(sock, sock == protocol.DefaultSocket, err) {
			a.errorf("%s", clean(line))
		}
		return exitUnavailable
	case errors.Is(err, errPermission):
		a.errorf("%v", err)
		return exitPermission
	case errors.As(err, &pe):
		a.errorf("%s", clean(pe.Message))
		if pe.Code == protocol.ErrPermissionDenied {
			return exitPermission
		}
		return exitFailure
	case errors.Is(err, errSilent):
		return exitFailure
	}
	a.errorf("%s", clean(err.Error()))
	return exitFailure
}

// errorf prints an error line: "otpgate: " prefix, lower case, no period.
func (a *app) errorf(format string, args ...any) {
	fmt.Fprintf(a.stderr, "otpgate: "+format+"\n", args...)
}

// socket returns the daemon's socket chosen by --socket, $OTPGATE_SOCKET
// or the default.
func (a *app) socket() string {
	if a.socketFlag != "" {
		return a.socketFlag
	}
	if s := a.getenv("OTPGATE_SOCKET"); s != "" {
		return s
	}
	return protocol.DefaultSocket
}

// client returns the daemon client for a.socket().
func (a *app) client() *protocol.Client {
	return &protocol.Client{Socket: a.socket()}
}

// unreachable explains err, a failure to reach otpgated at sock, in lines
// for stderr. It connects to sock once more to tell the cases apart:
// nothing answers there (no such file, not a socket, no process listening
// on it), the caller may not connect, or something answered but could not
// be used (err says how). Only for the default socket does it suggest
// starting otpgated: a path the user gave may simply be wrong.
func unreachable(sock string, isDefault bool, err error) []string {
	conn, derr := net.DialTimeout("unix", sock, time.Second)
	if derr == nil {
		conn.Close()
		return []string{err.Error()}
	}
	var why string
	switch fi, serr := os.Stat(sock); {
	case errors.Is(derr, fs.ErrNotExist):
		why = "there is no such file"
	case serr == nil && fi.Mode().Type() != fs.ModeSocket:
		why = "it is not a socket"
	case errors.Is(derr, syscall.ECONNREFUSED):
		why = "no process listens on the socket"
	case errors.Is(derr, fs.ErrPermission):
		return []string{fmt.Sprintf("cannot connect to %s: permission denied", sock)}
	default:
		var se syscall.Errno
		if errors.As(derr, &se) {
			why = se.Error()
		} else {
			why = derr.Error()
		}
	}
	lines := []string{fmt.Sprintf("nothing answers at %s: %s", sock, why)}
	if isDefault {
		lines = append(lines, "is otpgated running? Start it with: systemctl start otpgated")
	}
	return lines
}

// do sends req with the invocation's service and terminal filled in.
func (a *app) do(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	req.Service, req.TTY = service, a.tty
	return a.client().Do(ctx, req)
}

// self returns the account of the real uid (never $USER or $LOGNAME).
func (a *app) self() (*accounts.User, error) {
	u, err := accounts.LookupUID(uint32(a.uid)) //nolint:gosec // a uid from os.Getuid or a test
	if err != nil {
		return nil, fmt.Errorf("cannot find the account of uid %d: %w", a.uid, err)
	}
	return u, nil
}

// home returns the home directory of the account of the real uid, from
// the password database (never $HOME), or "" if there is none. A "~" in a
// path typed to otpgate means this directory, for every command: for
// admin enroll it is the administrator's home, as a shell would expand
// it, never the home of the user being enrolled.
func (a *app) home() string {
	u, err := a.self()
	if err != nil {
		return ""
	}
	return u.Home
}

// requireRoot refuses admin commands for other users before the daemon
// does, with a clearer message.
func (a *app) requireRoot() error {
	if a.uid != 0 {
		return errPermission
	}
	return nil
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	fs := newFlagSet("")
	fs.StringVar(&a.socketFlag, "socket", "", socketUsage)
	if err := fs.Parse(args); err != nil {
		return a.flagError("", fs, err)
	}
	args = fs.Args()
	if len(args) == 0 {
		printOverview(a.stderr, "")
		return &usageError{cmd: "", msg: "no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		return a.help(ctx, rest)
	case "version":
		pos, ok, err := a.parseArgs("version", newFlagSet("version"), rest)
		if !ok || err != nil {
			return err
		}
		if err := wantArgs("version", pos); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "otpgate %s\n", version.String())
		return nil
	case "enroll":
		return a.cmdEnroll(ctx, rest)
	case "status":
		return a.cmdStatus(ctx, rest)
	case "disable":
		return a.cmdDisable(ctx, rest)
	case "recovery-codes":
		return a.cmdRecoveryCodes(ctx, rest)
	case "forget":
		return a.cmdForget(ctx, rest)
	case "admin":
		return a.cmdAdmin(ctx, rest)
	case "doctor":
		return a.cmdDoctor(ctx, rest)
	case "setup":
		return a.cmdSetup(ctx, rest)
	}
	return usagef("", "unknown command %q", cmd)
}

// help is 'otpgate help [COMMAND]': the overview, or what
// 'otpgate COMMAND --help' prints.
func (a *app) help(ctx context.Context, args []string) error {
	switch {
	case len(args) == 0:
		printOverview(a.stdout, "")
		return nil
	case len(args) == 1 && args[0] == "admin":
		printOverview(a.stdout, "admin ")
		return nil
	case len(args) == 1 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help"):
		printHelp(a.stdout, lookupCommand("help"), newFlagSet("help"))
		return nil
	}
	words := args[:1] // "status"; "admin list" is two words
	if args[0] == "admin" {
		words = args[:2]
	}
	if lookupCommand(strings.Join(words, " ")) == nil || len(args) > len(words) {
		return usagef("", "no help for %q", strings.Join(args, " "))
	}
	return a.dispatch(ctx, append(slices.Clone(words), "--help"))
}
