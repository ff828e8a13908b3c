package container

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// StartTimeout bounds how long New waits for a container's pid 1 to build
// the root and report ready.
const StartTimeout = 20 * time.Second

// Bind is a host file or directory mounted into the container.
type Bind struct {
	// Source is the host path.
	Source string `json:"source"`
	// Target is the in-container path; it is created if missing.
	Target string `json:"target"`
	// ReadOnly makes the bind read-only inside.
	ReadOnly bool `json:"readOnly"`
}

// Option configures a container created by New.
type Option func(*options)

type options struct {
	hostname string
	binds    []Bind
	noRepo   bool
}

// WithHostname sets the container's hostname (default "otpgate-ct-N").
func WithHostname(name string) Option {
	return func(o *options) { o.hostname = name }
}

// WithBind binds the host path source at the in-container path target.
func WithBind(source, target string, readOnly bool) Option {
	return func(o *options) { o.binds = append(o.binds, Bind{Source: source, Target: target, ReadOnly: readOnly}) }
}

// WithoutRepo does not bind the repository and $OTPGATE_BIN (they are then
// still visible through the overlay of the host root, as of the moment the
// container started, unless they live under /tmp, /home, /root or /run).
func WithoutRepo() Option {
	return func(o *options) { o.noRepo = true }
}

// Container is a running container. Its methods may be called from several
// goroutines.
type Container struct {
	pid      int    // host pid of the container's pid 1
	root     string // /proc/<pid>/root
	hostname string
	mntNS    uint64 // inode of the mount namespace, for Close checks

	cmd      *exec.Cmd
	lifeline *os.File
	initOut  *syncBuffer
	exited   chan struct{}

	mu        sync.Mutex
	closed    bool
	processes []*Process
}

var hostCounter atomic.Int64

// New creates a container; the caller must Close it. It needs root (new
// mount, pid and network namespaces) and nsenter(1) and setpriv(1) at
// NsenterPath and SetprivPath.
func New(opts ...Option) (*Container, error) {
	o := options{hostname: fmt.Sprintf("otpgate-ct-%d", hostCounter.Add(1))}
	for _, opt := range opts {
		opt(&o)
	}
	binds := o.binds
	if !o.noRepo {
		binds = append(defaultBinds(), binds...)
	}
	for i, b := range binds {
		if !filepath.IsAbs(b.Source) || !path.IsAbs(b.Target) {
			return nil, fmt.Errorf("container: bind %s on %s: paths must be absolute", b.Source, b.Target)
		}
		binds[i].Target = path.Clean(b.Target)
	}
	cfg, err := json.Marshal(initConfig{Hostname: o.hostname, Binds: binds})
	if err != nil {
		return nil, err
	}

	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return nil, err
	}
	c := &Container{hostname: o.hostname, lifeline: lifeW, initOut: &syncBuffer{}, exited: make(chan struct{})}
	c.cmd = &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{"otpgate-container-init"},
		Env:         []string{initEnv + "=" + string(cfg), "PATH=" + DefaultPath},
		Dir:         "/",
		Stdin:       lifeR,
		Stdout:      c.initOut,
		Stderr:      c.initOut,
		ExtraFiles:  []*os.File{readyW},
		SysProcAttr: startInitAttr(),
	}
	err = c.cmd.Start()
	readyW.Close()
	lifeR.Close()
	if err != nil {
		lifeW.Close()
		return nil, fmt.Errorf("container: start pid 1 (root and CLONE_NEWNS/NEWPID/NEWNET needed): %w", err)
	}
	c.pid = c.cmd.Process.Pid
	c.root = fmt.Sprintf("/proc/%d/root", c.pid)
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()

	status := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(readyR).ReadString('\n')
		status <- strings.TrimSpace(line)
	}()
	var fail error
	select {
	case line := <-status:
		if line != "ok" {
			msg := strings.TrimPrefix(line, "error: ")
			if msg == "" {
				msg = "pid 1 exited before reporting ready"
			}
			fail = fmt.Errorf("container: setup: %s", msg)
		}
	case <-time.After(StartTimeout):
		fail = fmt.Errorf("container: setup: not ready after %v", StartTimeout)
	}
	if fail != nil {
		c.kill()
		if out := strings.TrimSpace(c.initOut.String()); out != "" {
			fail = fmt.Errorf("%w; pid 1 output: %s", fail, out)
		}
		return nil, fail
	}
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/mnt", c.pid), &st); err != nil {
		c.kill()
		return nil, fmt.Errorf("container: stat mount namespace: %w", err)
	}
	c.mntNS = st.Ino
	return c, nil
}

// defaultBinds binds the repository and $OTPGATE_BIN read-only at their host
// paths, so that builds made while a container runs are seen and nothing
// inside can modify the tree.
func defaultBinds() []Bind {
	var binds []Bind
	repo := RepoRoot()
	if repo != "" {
		binds = append(binds, Bind{Source: repo, Target: repo, ReadOnly: true})
	}
	if bin := os.Getenv("OTPGATE_BIN"); bin != "" && filepath.IsAbs(bin) {
		bin = filepath.Clean(bin)
		if repo == "" || (bin != repo && !strings.HasPrefix(bin, repo+"/")) {
			if _, err := os.Stat(bin); err == nil { //nolint:gosec // OTPGATE_BIN names the binaries to bind into the container, by whoever runs it
				binds = append(binds, Bind{Source: bin, Target: bin, ReadOnly: true})
			}
		}
	}
	return binds
}

// Hostname returns the container's hostname.
func (c *Container) Hostname() string { return c.hostname }

// InitPid returns the host pid of the container's pid 1.
func (c *Container) InitPid() int { return c.pid }

// MountNamespace returns the inode number of the container's mount
// namespace (as in /proc/<pid>/ns/mnt), which is gone once Close returns.
func (c *Container) MountNamespace() uint64 { return c.mntNS }

// Path translates an in-container path to a host path through which the
// calling process can read and write the container's files:
// /proc/<pid1>/root/<p>. The container's mounts (tmpfs /home, /tmp, ...) are
// seen through it. Caveat: an absolute symlink met on the way (for example
// /var/run -> /run) is resolved against the host root, not the container's;
// WriteFile, ReadFile, MkdirAll and Chown resolve such links inside the
// container and are the safe choice.
func (c *Container) Path(p string) string {
	return c.root + path.Clean("/"+p)
}

// Close destroys the container: every process inside is killed, then pid 1
// is reaped, which releases the mount
// namespace and its tmpfs. Close is idempotent.
func (c *Container) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	procs := c.processes
	c.mu.Unlock()

	c.kill()
	// Wait for the nsenter wrappers of background processes, so their
	// output is complete.
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("container: background %s did not exit after pid 1 was killed", p.name)
		}
	}
	return nil
}

// kill SIGKILLs pid 1 (which kills its whole pid namespace) and waits for it.
func (c *Container) kill() {
	_ = c.cmd.Process.Kill()
	c.lifeline.Close()
	<-c.exited
}

// Alive reports whether the container's pid 1 is still running.
func (c *Container) Alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// RepoRoot returns the root of the otpgate repository: the nearest parent of
// the working directory (a test's package directory, or the checkout the
// demo runs from) whose go.mod declares
// module github.com/otpgate/otpgate, or "" if there is none.
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module github.com/otpgate/otpgate\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ErrClosed is returned by operations on a closed container (Exec, Dial,
// a command's Run or Start).
var ErrClosed = errors.New("container: closed")
