package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StopTimeout is how long Stop waits after SIGTERM before it sends SIGKILL.
const StopTimeout = 5 * time.Second

// Process is a long-running process started inside a container by Start.
type Process struct {
	c    *Container
	name string
	cmd  *exec.Cmd
	out  syncBuffer

	hostPid int // host pid of the command (nsenter's child), 0 if not found
	pid     int // the same process's pid inside the container

	done chan struct{}
	err  error
}

// Start starts a command made by Command or CommandAs (and then customised:
// Env, Dir, Stdin...) and returns at once. Its stdout and stderr are
// captured (Output); if cmd.Stdout or cmd.Stderr is set, the output goes
// there as well. Stop it with Stop; Close waits for it.
func (c *Container) Start(cmd *exec.Cmd) (*Process, error) {
	p := &Process{c: c, name: cmdName(cmd.Args), cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = teeTo(cmd.Stdout, &p.out)
	cmd.Stderr = teeTo(cmd.Stderr, &p.out)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("container: background %s: %w", p.name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	p.findChild()

	c.mu.Lock()
	closed := c.closed
	c.processes = append(c.processes, p)
	c.mu.Unlock()
	if closed {
		_ = p.Stop()
	}
	return p, nil
}

// cmdName renders the in-container command line of an nsenter (and
// setpriv) argv: what follows the last "--".
func cmdName(argv []string) string {
	inner := argv
	for i := len(argv) - 1; i >= 0; i-- {
		if argv[i] == "--" {
			inner = argv[i+1:]
			break
		}
	}
	if len(inner) == 0 {
		return "?"
	}
	return describe("", inner[0], inner[1:])
}

// teeTo returns a writer that writes to both w (if non-nil) and buf.
func teeTo(w io.Writer, buf *syncBuffer) io.Writer {
	if w == nil {
		return buf
	}
	return io.MultiWriter(w, buf)
}

// findChild waits until nsenter has forked and executed the command and
// records its host and in-container pids; it gives up if nsenter exits, and
// after 5 seconds takes the child as it is.
func (p *Process) findChild() {
	nsenter := p.cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for {
		pid := firstChild(nsenter)
		if pid > 0 && (execed(pid) || time.Now().After(deadline)) {
			p.hostPid = pid
			p.pid = innerPid(pid)
			return
		}
		select {
		case <-p.done:
			return
		case <-time.After(time.Millisecond):
		}
		if pid == 0 && time.Now().After(deadline) {
			return
		}
	}
}

// innerPid returns the innermost pid of host pid from its NSpid status line.
func innerPid(hostPid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", hostPid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.Atoi(f[len(f)-1])
				return n
			}
		}
	}
	return 0
}

// Name returns the process's in-container command line, for messages.
func (p *Process) Name() string { return p.name }

// Pid returns the process's pid as seen inside the container (what `ps` or a
// pid file inside shows), or 0 if it exited before it could be found.
func (p *Process) Pid() int { return p.pid }

// HostPid returns the process's pid in the caller's (host) pid namespace, or
// 0 if it exited before it could be found.
func (p *Process) HostPid() int { return p.hostPid }

// Signal sends sig to the process itself (not to nsenter, which waits for
// it).
func (p *Process) Signal(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("container: signal %v: not a syscall.Signal", sig)
	}
	if p.Exited() {
		return fmt.Errorf("container: signal %s: %w", p.name, os.ErrProcessDone)
	}
	if p.hostPid == 0 {
		return fmt.Errorf("container: signal %s: process not found", p.name)
	}
	if err := syscall.Kill(p.hostPid, s); err != nil {
		return fmt.Errorf("container: signal %s: %w", p.name, err)
	}
	return nil
}

// Wait waits for the process to exit and returns its status as
// exec.Cmd.Wait does (nil for exit status 0, an *exec.ExitError otherwise).
// It may be called several times, from several goroutines.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Done returns a channel closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns the stdout and stderr captured so far.
func (p *Process) Output() string { return p.out.String() }

// Stop sends SIGTERM to the process, and SIGKILL to its process group after
// StopTimeout, and waits for it. It returns an error only if the process
// outlives SIGKILL; use Wait for the exit status.
func (p *Process) Stop() error {
	if p.Exited() {
		return nil
	}
	pgid := p.cmd.Process.Pid
	if p.hostPid != 0 {
		_ = syscall.Kill(p.hostPid, syscall.SIGTERM)
	} else {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(StopTimeout):
	}
	killCommand(pgid)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("still running 10s after SIGKILL")
	}
}

// killCommand SIGKILLs a command started through nsenter (nsenterPid) and
// every process it started, including those that left its process group
// (timeout(1), shells with job control, daemons). The descendants are
// stopped first, so they cannot fork while being collected; then the
// command dies and nsenter reaps it, then the descendants die (pid 1 of the
// container reaps them), then nsenter's group. Were nsenter killed first,
// its orphaned child would be handed to the host's reaper (nsenter lives in
// the host's pid namespace), not to the container's pid 1, and linger as a
// zombie that also holds up the container's teardown.
func killCommand(nsenterPid int) {
	child := firstChild(nsenterPid)
	if child > 0 {
		stopped := map[int]bool{}
		for range 5 { // until no new descendant appears
			grew := false
			for _, pid := range descendants(child) {
				if !stopped[pid] {
					stopped[pid] = true
					grew = true
					_ = syscall.Kill(pid, syscall.SIGSTOP)
				}
			}
			if !grew {
				break
			}
		}
		_ = syscall.Kill(child, syscall.SIGKILL)
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", child)); err != nil {
				break // reaped by nsenter
			}
			time.Sleep(time.Millisecond)
		}
		for pid := range stopped {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		// Return once they are gone (reaped by the container's pid 1).
		for pid := range stopped {
			for time.Now().Before(deadline) {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	_ = syscall.Kill(-nsenterPid, syscall.SIGKILL)
}

// children returns the children of every thread of pid.
func children(pid int) []int {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil
	}
	var kids []int
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(f); err == nil {
				kids = append(kids, n)
			}
		}
	}
	return kids
}

// descendants returns the children of pid, their children, and so on.
func descendants(pid int) []int {
	var all []int
	queue := children(pid)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		all = append(all, p)
		queue = append(queue, children(p)...)
	}
	return all
}

// firstChild returns the first child of pid, or 0.
func firstChild(pid int) int {
	if kids := children(pid); len(kids) > 0 {
		return kids[0]
	}
	return 0
}

// execed reports whether pid, forked by nsenter, has executed the command
// (rather than still being nsenter, or setpriv for CommandAs), so that
// signals reach the command's handlers. A command that is itself nsenter or
// setpriv is taken as soon as the 5-second search of findChild ends.
func execed(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && exe != NsenterPath && exe != SetprivPath
}
