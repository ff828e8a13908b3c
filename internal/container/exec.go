package container

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultPath is the PATH of commands run inside.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// NsenterPath and SetprivPath are the tools New and the commands need. They
// are absolute so they resolve identically on the host and inside (the
// container's root is an overlay of the host's).
const (
	NsenterPath = "/usr/bin/nsenter"
	SetprivPath = "/usr/bin/setpriv"
)

// Command returns an *exec.Cmd that runs name with args inside the container
// as root, in the working directory /, with the environment PATH, HOME=/root,
// LANG=C.UTF-8 and nothing else.
//
// The caller may set Stdin, Stdout, Stderr, Env and Dir before Run; Dir is an
// in-container path. Do not replace SysProcAttr (it carries the chroot into
// the container and the process group); modify its fields instead.
//
// The process is nsenter(1), started chrooted into the container's root so
// that Dir and the namespace files (/proc/1/ns/*) resolve inside: nsenter
// opens them, and the working directory (--wd=.), before it enters the
// namespaces. It then forks the command, which lives in the container's pid
// namespace, and passes on its exit status. It leads a new process group.
// To stop a command early, use a context (Exec), Kill or Process.Stop rather
// than killing nsenter: nsenter is in the host's pid namespace, and a
// command it leaves orphaned is reaped by the host's init, not the
// container's.
func (c *Container) Command(name string, args ...string) *exec.Cmd {
	return c.command(context.Background(), name, args...)
}

// CommandContext is Command bound to ctx: when ctx is done the command and
// every process it started inside are killed (see Kill).
func (c *Container) CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	return c.command(ctx, name, args...)
}

// CommandAsContext is CommandAs bound to ctx (see CommandContext).
func (c *Container) CommandAsContext(ctx context.Context, user, name string, args ...string) *exec.Cmd {
	return c.commandAs(ctx, user, name, args...)
}

// command builds Command's *exec.Cmd, bound to ctx when it is non-nil: on
// cancellation the whole process group is killed, not only nsenter.
func (c *Container) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append([]string{
		"--mount=/proc/1/ns/mnt", "--uts=/proc/1/ns/uts", "--ipc=/proc/1/ns/ipc",
		"--net=/proc/1/ns/net", "--pid=/proc/1/ns/pid", "--root=/", "--wd=.", "--",
		name,
	}, args...)
	var cmd *exec.Cmd
	// A context that can be done (not Background) ends the command.
	if ctx.Done() != nil {
		cmd = exec.CommandContext(ctx, NsenterPath, argv...)
		cmd.Cancel = func() error {
			killCommand(cmd.Process.Pid)
			return nil
		}
	} else {
		cmd = exec.Command(NsenterPath, argv...)
	}
	// A process started by the command (a daemon, or one left behind when
	// the command was killed) may hold the output pipes open: Wait then
	// returns this long after the command exited, instead of never.
	cmd.WaitDelay = PipeWaitDelay
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + DefaultPath, "HOME=/root", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: c.root, Setpgid: true}
	if !c.Alive() {
		cmd.Err = ErrClosed
	}
	return cmd
}

// CommandAs is Command run as user (a name from the container's
// /etc/passwd): setpriv(1) sets the real and effective uid and gid and the
// user's supplementary groups (initgroups), and the environment gets HOME,
// USER, LOGNAME and SHELL of that user. The working directory is the user's
// home if it exists, else /. If the user does not exist, the command's Run or
// Start returns an error saying so.
func (c *Container) CommandAs(user, name string, args ...string) *exec.Cmd {
	return c.commandAs(context.Background(), user, name, args...)
}

func (c *Container) commandAs(ctx context.Context, user, name string, args ...string) *exec.Cmd {
	u, err := c.LookupUser(user)
	if err != nil {
		cmd := c.command(ctx, name, args...)
		cmd.Err = err
		return cmd
	}
	argv := append([]string{
		"--reuid=" + strconv.Itoa(u.UID), "--regid=" + strconv.Itoa(u.GID), "--init-groups", "--",
		name,
	}, args...)
	cmd := c.command(ctx, SetprivPath, argv...)
	cmd.Env = []string{
		"PATH=" + DefaultPath, "HOME=" + u.Home, "LANG=C.UTF-8",
		"USER=" + u.Name, "LOGNAME=" + u.Name, "SHELL=" + u.Shell,
	}
	if u.Home != "" && c.isDir(u.Home) {
		cmd.Dir = u.Home
	}
	return cmd
}

// Exec runs name with args inside as root until it exits or ctx is done, and
// returns the combined output and the exit code. As with os/exec, err is
// non-nil when the exit code is not 0 (it wraps the *exec.ExitError, and the
// exit code is returned too), and when the command could not run or was
// killed (by a signal, or because ctx was done: it wraps ctx.Err()); in
// those last cases exitCode is -1.
func (c *Container) Exec(ctx context.Context, name string, args ...string) (out string, exitCode int, err error) {
	return runCmd(ctx, c.command(ctx, name, args...), "", name, args)
}

// ExecAs is Exec as user (see CommandAs).
func (c *Container) ExecAs(ctx context.Context, user, name string, args ...string) (string, int, error) {
	return runCmd(ctx, c.commandAs(ctx, user, name, args...), user, name, args)
}

// runCmd runs cmd, collecting its combined output, and describes failures
// with the in-container command line.
func runCmd(ctx context.Context, cmd *exec.Cmd, user, name string, args []string) (string, int, error) {
	var out syncBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err == nil {
		return out.String(), 0, nil
	}
	desc := describe(user, name, args)
	if ctx.Err() != nil {
		return out.String(), -1, fmt.Errorf("container: %s: killed: %w", desc, ctx.Err())
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code := exitErr.ExitCode()
		if code < 0 {
			return out.String(), -1, fmt.Errorf("container: %s: %w", desc, err)
		}
		return out.String(), code, fmt.Errorf("container: %s: %w", desc, err)
	}
	return out.String(), -1, fmt.Errorf("container: %s: %w", desc, err)
}

// describe renders a command line for error messages.
func describe(user, name string, args []string) string {
	var b strings.Builder
	if user != "" {
		b.WriteString("(as " + user + ") ")
	}
	b.WriteString(name)
	for _, a := range args {
		b.WriteByte(' ')
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`") {
			b.WriteString(strconv.Quote(a))
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}

// PipeWaitDelay is the WaitDelay of the commands made by Command and
// CommandAs (see exec.Cmd.WaitDelay): once the command has exited, or its
// context is done, Wait waits at most this long for its output pipes to
// close. Wait then returns exec.ErrWaitDelay if the command itself
// succeeded.
const PipeWaitDelay = 5 * time.Second

// Kill kills a command made by Command or CommandAs and started, with every
// process it started inside, including those that left its process group
// (timeout(1) does, and daemons), and lets nsenter reap the command. Prefer
// it to killing the process group yourself: killing nsenter first hands the
// command to the host's init instead of the container's. It returns once
// they are gone (or after 3 seconds); the caller still calls Wait.
func (c *Container) Kill(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return errors.New("container: kill: command not started")
	}
	killCommand(cmd.Process.Pid)
	return nil
}
