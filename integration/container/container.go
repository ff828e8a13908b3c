package container

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	core "github.com/otpgate/otpgate/internal/container"
)

// Container is a running container (see internal/container) with helpers
// that fail the test instead of returning an error. Its methods may be
// called from several goroutines.
type Container struct {
	*core.Container
}

// Process is a long-running process started inside a container.
type Process = core.Process

// User is an entry of the container's /etc/passwd.
type User = core.User

// Option configures a container created by Start.
type Option = core.Option

// WithHostname sets the container's hostname (default "otpgate-ct-N").
func WithHostname(name string) Option { return core.WithHostname(name) }

// WithBind binds the host path source at the in-container path target.
func WithBind(source, target string, readOnly bool) Option {
	return core.WithBind(source, target, readOnly)
}

// WithoutRepo does not bind the repository and $OTPGATE_BIN (see
// internal/container).
func WithoutRepo() Option { return core.WithoutRepo() }

// RepoRoot returns the root of the otpgate repository, or "" (see
// internal/container).
func RepoRoot() string { return core.RepoRoot() }

// DefaultTimeout is the deadline of Run and RunAs.
const DefaultTimeout = 60 * time.Second

// Start creates a container and registers t.Cleanup to destroy it (all
// processes killed, mounts gone). It fails the test if the container cannot
// be created, for example when not running as root.
func Start(t testing.TB, opts ...Option) *Container {
	t.Helper()
	Require(t, core.NsenterPath, core.SetprivPath)
	c, err := core.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("container: close: %v", err)
		}
	})
	return &Container{c}
}

// Run runs name with args inside as root, with a deadline of DefaultTimeout,
// and returns the combined stdout and stderr. It fails the test, with the
// output, if the command cannot run or exits non-zero.
func (c *Container) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	out, _, err := c.Exec(ctx, name, args...)
	if err != nil {
		t.Fatalf("%v\noutput:\n%s", err, out)
	}
	return out
}

// RunAs is Run as user (see CommandAs).
func (c *Container) RunAs(t testing.TB, user, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	out, _, err := c.ExecAs(ctx, user, name, args...)
	if err != nil {
		t.Fatalf("%v\noutput:\n%s", err, out)
	}
	return out
}

// ReadFile returns the contents of the in-container file p; it fails the
// test if the file cannot be read.
func (c *Container) ReadFile(t testing.TB, p string) []byte {
	t.Helper()
	data, err := c.Container.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// WriteFile writes data to the in-container file p, creating missing parent
// directories (mode 0755, owner root), and leaves the file with exactly mode
// (umask does not apply) and owner root:root.
func (c *Container) WriteFile(t testing.TB, p string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := c.Container.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

// MkdirAll creates the in-container directory p and its missing parents,
// owned by root; the directories it creates get mode (umask applies to
// none of them).
func (c *Container) MkdirAll(t testing.TB, p string, mode os.FileMode) {
	t.Helper()
	if err := c.Container.MkdirAll(p, mode); err != nil {
		t.Fatal(err)
	}
}

// Chown gives the in-container file or directory p to user and the user's
// primary group (as in the container's /etc/passwd). Symlinks are not
// followed at the last component.
func (c *Container) Chown(t testing.TB, p, user string) {
	t.Helper()
	if err := c.Container.Chown(p, user); err != nil {
		t.Fatal(err)
	}
}

// AddUser creates a user inside (see internal/container) and returns the
// uid.
func (c *Container) AddUser(t testing.TB, name string, groups ...string) int {
	t.Helper()
	Require(t, "useradd", "groupadd")
	uid, err := c.Container.AddUser(name, groups...)
	if err != nil {
		t.Fatal(err)
	}
	return uid
}

// AddGroup creates a group inside with groupadd.
func (c *Container) AddGroup(t testing.TB, name string) {
	t.Helper()
	if err := c.Container.AddGroup(name); err != nil {
		t.Fatal(err)
	}
}

// WaitForSocket polls until a Unix socket is listening at the in-container
// path p, and fails the test after timeout or as soon as the container is
// gone. It does not connect.
func (c *Container) WaitForSocket(t testing.TB, p string, timeout time.Duration) {
	t.Helper()
	if err := c.Container.WaitForSocket(p, timeout); err != nil {
		t.Fatal(err)
	}
}

// WaitForPort polls until a TCP socket inside the container listens on port
// at a loopback-reachable address, and fails the test after timeout or as
// soon as the container is gone. It does not connect.
func (c *Container) WaitForPort(t testing.TB, port int, timeout time.Duration) {
	t.Helper()
	if err := c.Container.WaitForPort(port, timeout); err != nil {
		t.Fatal(err)
	}
}

// Background starts name with args inside as root (see Command) and returns
// at once. Its stdout and stderr are captured (Output); at cleanup it gets
// SIGTERM, then SIGKILL after StopTimeout, and if the test failed its output
// is logged with t.Log.
func (c *Container) Background(t testing.TB, name string, args ...string) *Process {
	t.Helper()
	return c.BackgroundCmd(t, c.Command(name, args...))
}

// BackgroundAs is Background as user (see CommandAs).
func (c *Container) BackgroundAs(t testing.TB, user, name string, args ...string) *Process {
	t.Helper()
	return c.BackgroundCmd(t, c.CommandAs(user, name, args...))
}

// BackgroundCmd is Background for a command made by Command or CommandAs and
// then customised (Env, Dir, Stdin...). If cmd.Stdout or cmd.Stderr is set,
// the output goes there as well as to Output.
func (c *Container) BackgroundCmd(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p, err := c.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("container: stop %s: %v", p.Name(), err)
		}
		if t.Failed() {
			status := "still running"
			if p.Exited() {
				status = fmt.Sprint("exit: ", p.Wait())
			}
			t.Logf("output of %s (pid %d in the container, %s):\n%s", p.Name(), p.Pid(), status, p.Output())
		}
	})
	return p
}
