//go:build root

package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	core "github.com/otpgate/otpgate/internal/container"
	"github.com/otpgate/otpgate/internal/testutil"
)

// TestIsolation proves that what a test does inside a container does not
// reach the host.
func TestIsolation(t *testing.T) {
	t.Parallel()
	hostPasswd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	c := Start(t)

	uid := c.AddUser(t, "ctalice")
	if uid <= 0 {
		t.Fatalf("AddUser returned uid %d", uid)
	}
	if out := c.Run(t, "id", "-u", "ctalice"); strings.TrimSpace(out) != strconv.Itoa(uid) {
		t.Errorf("id -u ctalice inside = %q, want %d", out, uid)
	}
	if got, err := os.ReadFile("/etc/passwd"); err != nil || !bytes.Equal(got, hostPasswd) {
		t.Errorf("host /etc/passwd changed by AddUser inside (err %v)", err)
	}
	if _, err := os.Stat("/home/ctalice"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("host /home/ctalice: %v, want it absent", err)
	}
	if st, err := os.Stat(c.Path("/home/ctalice")); err != nil || !st.IsDir() {
		t.Errorf("container /home/ctalice missing (%v)", err)
	}

	c.WriteFile(t, "/etc/pam.d/otpgate-ct-test", []byte("auth required pam_deny.so\n"), 0o644)
	if _, err := os.Stat("/etc/pam.d/otpgate-ct-test"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("host /etc/pam.d/otpgate-ct-test: %v, want it absent", err)
	}
	if out := c.Run(t, "cat", "/etc/pam.d/otpgate-ct-test"); out != "auth required pam_deny.so\n" {
		t.Errorf("cat inside = %q", out)
	}
	// A write inside the overlay of / (not a tmpfs) stays inside too.
	c.Run(t, "touch", "/usr/local/otpgate-ct-marker")
	if _, err := os.Stat("/usr/local/otpgate-ct-marker"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("host /usr/local/otpgate-ct-marker: %v, want it absent", err)
	}
}

// TestMounts checks the file systems inside.
func TestMounts(t *testing.T) {
	t.Parallel()
	c := Start(t)
	for _, dir := range []string{"/home", "/root", "/tmp", "/run", "/var/lib/otpgate", "/var/log", "/dev/shm"} {
		if out := strings.TrimSpace(c.Run(t, "findmnt", "-n", "-o", "FSTYPE", dir)); out != "tmpfs" {
			t.Errorf("%s is %q inside, want tmpfs", dir, out)
		}
	}
	if out := strings.TrimSpace(c.Run(t, "findmnt", "-n", "-o", "FSTYPE", "/")); out != "overlay" {
		t.Errorf("/ is %q inside, want overlay", out)
	}
	if out := strings.TrimSpace(c.Run(t, "stat", "-c", "%a", "/tmp")); out != "1777" {
		t.Errorf("/tmp mode %s, want 1777", out)
	}
	// Host sysctls cannot be changed from inside (the probe writes the
	// current value back, harmless should it succeed).
	if out, code, _ := c.Exec(context.Background(), "sh", "-c", "v=$(cat /proc/sys/kernel/printk_ratelimit) && echo $v > /proc/sys/kernel/printk_ratelimit"); code == 0 {
		t.Errorf("/proc/sys is writable inside: %s", out)
	}
	opts := c.Run(t, "findmnt", "-n", "-o", "OPTIONS", "/dev/pts")
	if !strings.Contains(opts, "ptmxmode=666") {
		t.Errorf("/dev/pts options %q, want a devpts instance with ptmxmode=666", opts)
	}
	// The host's files are there (the overlay's lower layer is the host root).
	if out := c.Run(t, "cat", "/etc/debian_version"); out == "" {
		t.Error("empty /etc/debian_version inside")
	}
	// The host's /tmp is not.
	marker, err := os.CreateTemp("", "otpgate-ct-hostmarker-")
	if err != nil {
		t.Fatal(err)
	}
	marker.Close()
	defer os.Remove(marker.Name())
	if _, code, _ := c.Exec(context.Background(), "test", "-e", marker.Name()); code != 1 {
		t.Errorf("host temp file %s visible inside (test -e exit %d)", marker.Name(), code)
	}
}

// TestNamespaces checks pid 1, the hostname and the network.
func TestNamespaces(t *testing.T) {
	t.Parallel()
	c := Start(t)

	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	inside := strings.TrimSpace(c.Run(t, "hostname"))
	if inside == host || inside != c.Hostname() {
		t.Errorf("hostname inside %q, host %q, Hostname() %q", inside, host, c.Hostname())
	}
	// sudo and others need the hostname to resolve.
	if out := c.Run(t, "getent", "hosts", c.Hostname()); !strings.Contains(out, "127.0.1.1") {
		t.Errorf("getent hosts %s = %q", c.Hostname(), out)
	}

	if out := c.Run(t, "ip", "-o", "link"); len(strings.Split(strings.TrimSpace(out), "\n")) != 1 || !strings.Contains(out, ": lo:") || !strings.Contains(out, "UP") {
		t.Errorf("ip -o link inside:\n%s\nwant only lo, up", out)
	}

	comm := strings.TrimSpace(c.Run(t, "cat", "/proc/1/cmdline"))
	if !strings.HasPrefix(comm, "otpgate-container-init") {
		t.Errorf("pid 1 cmdline inside %q, want the container init", comm)
	}
	// The shell's own pid is small: a fresh pid namespace.
	pid, err := strconv.Atoi(strings.TrimSpace(c.Run(t, "sh", "-c", "echo $$")))
	if err != nil || pid <= 1 || pid > 1000 {
		t.Errorf("pid inside %d (%v), want a small pid of a fresh namespace", pid, err)
	}
	// Processes of the host are invisible.
	if _, code, _ := c.Exec(context.Background(), "test", "-e", fmt.Sprintf("/proc/%d", os.Getpid())); code == 0 && os.Getpid() > 1000 {
		t.Errorf("host pid %d visible in the container's /proc", os.Getpid())
	}
}

// TestPty checks that a pty can be allocated (ssh -tt and tmux need it).
func TestPty(t *testing.T) {
	t.Parallel()
	c := Start(t)
	out := c.Run(t, "script", "-qc", "tty", "/dev/null")
	if !regexp.MustCompile(`^/dev/pts/\d+\s*$`).MatchString(out) {
		t.Errorf("tty in script = %q, want /dev/pts/N", out)
	}
	c.Run(t, "tmux", "new-session", "-d", "-s", "ct", "sleep 60")
	if out := c.Run(t, "tmux", "list-sessions"); !strings.HasPrefix(out, "ct:") {
		t.Errorf("tmux list-sessions = %q", out)
	}
	// The host's devpts is untouched: the container has its own instance.
	if _, err := os.Stat("/dev/pts/ptmx"); err != nil {
		t.Fatal(err)
	}
}

// TestCommandAs checks uid, groups, environment and working directory.
func TestCommandAs(t *testing.T) {
	t.Parallel()
	c := Start(t)
	c.AddGroup(t, "ctgroup")
	uid := c.AddUser(t, "ctbob", "ctgroup", "ctnew")
	out := c.RunAs(t, "ctbob", "id")
	for _, want := range []string{fmt.Sprintf("uid=%d(ctbob)", uid), "(ctgroup)", "(ctnew)"} {
		if !strings.Contains(out, want) {
			t.Errorf("id as ctbob = %q, want %q in it", out, want)
		}
	}
	env := c.RunAs(t, "ctbob", "sh", "-c", `echo "$HOME $USER $LOGNAME $(pwd)"`)
	if env != "/home/ctbob ctbob ctbob /home/ctbob\n" {
		t.Errorf("environment as ctbob = %q", env)
	}
	if out := c.Run(t, "sh", "-c", `echo "$HOME $(id -u) $(pwd)"`); out != "/root 0 /\n" {
		t.Errorf("environment as root = %q", out)
	}
	// A user cannot write root's files.
	c.WriteFile(t, "/etc/otpgate-ct.conf", []byte("x"), 0o644)
	if _, code, err := c.ExecAs(context.Background(), "ctbob", "sh", "-c", "echo y > /etc/otpgate-ct.conf"); code == 0 || err == nil {
		t.Errorf("ctbob could write a root file (exit %d, err %v)", code, err)
	}
	// Unknown users fail clearly.
	if _, _, err := c.ExecAs(context.Background(), "nosuchuser", "id"); err == nil || !strings.Contains(err.Error(), `user "nosuchuser" does not exist`) {
		t.Errorf("ExecAs unknown user: err %v", err)
	}
	// Dir is an in-container path.
	cmd := c.Command("pwd")
	cmd.Dir = "/home/ctbob"
	if got, err := cmd.Output(); err != nil || string(got) != "/home/ctbob\n" {
		t.Errorf("pwd with Dir=/home/ctbob: %q, %v", got, err)
	}
}

// TestExec checks exit codes, errors and deadlines.
func TestExec(t *testing.T) {
	t.Parallel()
	c := Start(t)
	out, code, err := c.Exec(context.Background(), "sh", "-c", "echo out; echo err >&2; exit 3")
	var exitErr *exec.ExitError
	if code != 3 || !errors.As(err, &exitErr) || out != "out\nerr\n" {
		t.Errorf("Exec: out %q code %d err %v", out, code, err)
	}
	if _, code, err := c.Exec(context.Background(), "no-such-command-ct"); code != 127 || err == nil {
		t.Errorf("missing command: code %d err %v, want 127", code, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, code, err = c.Exec(ctx, "sleep", "30")
	if code != -1 || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Exec past deadline: code %d err %v after %v", code, err, time.Since(start))
	}
	// The killed command is gone inside too, reaped before Exec returned.
	if out := containerProcesses(t, c); strings.Contains(out, "sleep") {
		t.Errorf("sleep still there after the deadline:\n%s", out)
	}
	// timeout(1) leaves nsenter's process group; the deadline still kills
	// it and its child, and Exec returns promptly.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	start = time.Now()
	if _, code, err := c.Exec(ctx2, "timeout", "100", "sh", "-c", "sleep 1000; echo never"); code != -1 || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Errorf("Exec of timeout past deadline: code %d err %v after %v", code, err, time.Since(start))
	}
	// Kill does the same for a started command.
	started := c.Command("timeout", "100", "sh", "-c", "sleep 1000; echo never")
	if err := started.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool {
		return strings.Contains(containerProcesses(t, c), "sleep 1000\n")
	})
	if err := c.Kill(started); err != nil {
		t.Fatal(err)
	}
	if err := started.Wait(); err == nil {
		t.Error("killed command exited 0")
	}
	if out := containerProcesses(t, c); strings.Contains(out, "sleep") || strings.Contains(out, "timeout") {
		t.Errorf("processes left after Kill:\n%s", out)
	}
	// A process left holding the output pipe does not hang Wait forever.
	lingering := c.Command("sh", "-c", "sleep 1000 & echo done")
	if lingering.WaitDelay != core.PipeWaitDelay {
		t.Errorf("WaitDelay %v, want %v", lingering.WaitDelay, core.PipeWaitDelay)
	}
	lingering.WaitDelay = 100 * time.Millisecond
	start = time.Now()
	if out, err := lingering.Output(); !errors.Is(err, exec.ErrWaitDelay) || string(out) != "done\n" || time.Since(start) > 3*time.Second {
		t.Errorf("command leaving a process on its stdout: %q, %v after %v", out, err, time.Since(start))
	}
	cmd := c.Command("cat")
	cmd.Stdin = strings.NewReader("stdin data")
	if got, err := cmd.Output(); err != nil || string(got) != "stdin data" {
		t.Errorf("cat with Stdin: %q, %v", got, err)
	}
}

// TestFiles checks WriteFile, ReadFile, MkdirAll, Chown and Path.
func TestFiles(t *testing.T) {
	t.Parallel()
	c := Start(t)
	c.AddUser(t, "ctcarol")
	c.WriteFile(t, "/etc/otpgate/deep/config.toml", []byte("a = 1\n"), 0o640)
	if out := c.Run(t, "stat", "-c", "%a %U %G", "/etc/otpgate/deep/config.toml"); out != "640 root root\n" {
		t.Errorf("stat = %q", out)
	}
	if got := c.ReadFile(t, "/etc/otpgate/deep/config.toml"); string(got) != "a = 1\n" {
		t.Errorf("ReadFile = %q", got)
	}
	// Path reads what root wrote inside, and writes are seen inside.
	if got, err := os.ReadFile(c.Path("/etc/otpgate/deep/config.toml")); err != nil || string(got) != "a = 1\n" {
		t.Errorf("read through Path: %q, %v", got, err)
	}
	c.Run(t, "sh", "-c", "echo inside > /root/note")
	if got, err := os.ReadFile(c.Path("/root/note")); err != nil || string(got) != "inside\n" {
		t.Errorf("read through Path: %q, %v", got, err)
	}
	if err := os.WriteFile(c.Path("/tmp/from-host"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.Run(t, "cat", "/tmp/from-host"); out != "host" {
		t.Errorf("cat /tmp/from-host = %q", out)
	}

	c.MkdirAll(t, "/home/ctcarol/.ssh", 0o700)
	c.Chown(t, "/home/ctcarol/.ssh", "ctcarol")
	c.WriteFile(t, "/home/ctcarol/.ssh/authorized_keys", []byte("ssh-ed25519 AAAA test\n"), 0o600)
	c.Chown(t, "/home/ctcarol/.ssh/authorized_keys", "ctcarol")
	if out := c.Run(t, "stat", "-c", "%a %U", "/home/ctcarol/.ssh", "/home/ctcarol/.ssh/authorized_keys"); out != "700 ctcarol\n600 ctcarol\n" {
		t.Errorf("stat .ssh = %q", out)
	}

	// Symlinks resolve inside the container: /var/run -> /run is absolute,
	// and must not lead to the host's /run.
	c.WriteFile(t, "/var/run/otpgate-ct-link", []byte("x"), 0o644)
	if _, err := os.Stat("/run/otpgate-ct-link"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteFile through /var/run reached the host's /run: %v", err)
	}
	if out := c.Run(t, "cat", "/run/otpgate-ct-link"); out != "x" {
		t.Errorf("cat /run/otpgate-ct-link = %q", out)
	}
	c.Run(t, "ln", "-s", "/etc/shadow", "/tmp/evil")
	if got := c.ReadFile(t, "/tmp/evil"); !strings.Contains(string(got), "ctcarol:") {
		t.Errorf("ReadFile through an absolute symlink did not read the container's /etc/shadow")
	}
}

// TestBackground checks a long-running process and its teardown.
func TestBackground(t *testing.T) {
	t.Parallel()
	c := Start(t)
	p := c.Background(t, "sh", "-c", `echo started; trap 'echo got-hup' HUP; while :; do sleep 0.05; done`)
	if p.Pid() <= 1 || p.HostPid() <= 1 {
		t.Fatalf("Pid %d HostPid %d", p.Pid(), p.HostPid())
	}
	if out := c.Run(t, "cat", fmt.Sprintf("/proc/%d/cmdline", p.Pid())); !strings.HasPrefix(out, "sh\x00-c") {
		t.Errorf("inside, pid %d is %q", p.Pid(), out)
	}
	waitUntil(t, func() bool { return strings.Contains(p.Output(), "started") })
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return strings.Contains(p.Output(), "got-hup") })
	if p.Exited() {
		t.Fatal("process exited on HUP")
	}

	// A process that ignores SIGTERM, and its child, die with the container.
	stubborn := c.Background(t, "sh", "-c", `trap '' TERM; sleep 1000 & wait`)
	// Every process in the container's mount namespace: pid 1, the commands
	// and the nsenter processes waiting for them. (Checking the namespace
	// inode after Close would not do: parallel tests reuse inode numbers.)
	hostPids := processesInMountNS(t, c.MountNamespace())
	if len(hostPids) < 5 {
		t.Fatalf("only %d processes in the mount namespace: %v", len(hostPids), hostPids)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() || !stubborn.Exited() {
		t.Error("background processes still running after Close")
	}
	for _, pid := range hostPids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("host pid %d still exists after Close: %v", pid, err)
		}
	}
	if _, _, err := c.Exec(context.Background(), "true"); !errors.Is(err, core.ErrClosed) {
		t.Errorf("Exec after Close: %v, want core.ErrClosed", err)
	}
}

// TestParallelContainers runs two containers at once.
func TestParallelContainers(t *testing.T) {
	t.Parallel()
	a, b := Start(t), Start(t)
	a.AddUser(t, "ctdave")
	if _, code, _ := b.Exec(context.Background(), "id", "ctdave"); code == 0 {
		t.Error("user ctdave of container a exists in container b")
	}
	if a.Hostname() == b.Hostname() {
		t.Errorf("both containers are named %q", a.Hostname())
	}
	a.WriteFile(t, "/tmp/only-a", []byte("a"), 0o644)
	if _, code, _ := b.Exec(context.Background(), "test", "-e", "/tmp/only-a"); code != 1 {
		t.Error("container a's /tmp file is visible in b")
	}
}

// TestNetwork checks loopback inside and the WaitForPort, WaitForSocket and
// DialContext helpers.
func TestNetwork(t *testing.T) {
	t.Parallel()
	Require(t, "ssh-keygen", "sshd")
	c := Start(t)
	// sshd serves on loopback inside; the port is free on the host's side
	// whatever runs there (separate network namespaces).
	c.Run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/etc/ssh/ct_host_key")
	c.WriteFile(t, "/etc/ssh/ct_sshd_config", []byte("Port 22\nListenAddress 127.0.0.1\nHostKey /etc/ssh/ct_host_key\nUsePAM no\nPidFile /run/ct-sshd.pid\n"), 0o644)
	sshd := c.Background(t, "/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/ct_sshd_config")
	c.WaitForPort(t, 22, 10*time.Second)
	if out := sshd.Output(); strings.Contains(out, "Connection") {
		t.Errorf("WaitForPort connected to sshd:\n%s", out)
	}
	conn, err := c.DialContext(context.Background(), "tcp", "127.0.0.1:22")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Must(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	banner := make([]byte, 8)
	if _, err := conn.Read(banner); err != nil || string(banner) != "SSH-2.0-" {
		t.Errorf("banner %q, %v", banner, err)
	}
	conn.Close()
	waitUntil(t, func() bool { _, err := os.Stat(c.Path("/run/ct-sshd.pid")); return err == nil })
	if pidfile := strings.TrimSpace(string(c.ReadFile(t, "/run/ct-sshd.pid"))); pidfile != strconv.Itoa(sshd.Pid()) {
		t.Errorf("sshd pid file %s, Pid() %d", pidfile, sshd.Pid())
	}

	// A Unix socket, addressed through the absolute symlink /var/run.
	c.MkdirAll(t, "/run/otpgate-ct", 0o755)
	server := `$SIG{PIPE} = "IGNORE"; use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => "/run/otpgate-ct/ct.sock", Listen => 5) or die "listen: $!"; while (my $c = $s->accept) { print $c "hello\n"; close $c }`
	c.Background(t, "perl", "-e", "sleep 0.2; "+server)
	c.WaitForSocket(t, "/var/run/otpgate-ct/ct.sock", 10*time.Second)
	uconn, err := c.DialContext(context.Background(), "unix", "/var/run/otpgate-ct/ct.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer uconn.Close()
	testutil.Must(t, uconn.SetDeadline(time.Now().Add(5*time.Second)))
	line := make([]byte, 6)
	if _, err := io.ReadFull(uconn, line); err != nil || string(line) != "hello\n" {
		t.Errorf("unix socket read %q, %v", line, err)
	}
	if _, err := os.Stat("/run/otpgate-ct"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("host /run/otpgate-ct: %v, want it absent", err)
	}
}

// waitUntil polls cond for up to 10 seconds.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// processesInMountNS lists host pids whose mount namespace has inode ino.
func processesInMountNS(t *testing.T, ino uint64) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", e.Name(), "ns", "mnt"), &st) == nil && st.Ino == ino {
			pids = append(pids, pid)
		}
	}
	return pids
}

// BenchmarkStart measures creating and destroying a container.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		c, err := core.New()
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExec measures running a trivial command inside (nsenter's fork
// and exec included).
func BenchmarkExec(b *testing.B) {
	c := Start(b)
	for b.Loop() {
		if out, _, err := c.Exec(context.Background(), "true"); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}

// containerProcesses lists the processes of c's pid namespace, one
// "pid command line" per line (zombies included, with an empty command
// line), read from the container's /proc so that no ps is needed.
func containerProcesses(t *testing.T, c *Container) string {
	t.Helper()
	entries, err := os.ReadDir(c.Path("/proc"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(c.Path("/proc/" + e.Name() + "/cmdline"))
		if err != nil {
			continue // exited meanwhile
		}
		stat, _ := os.ReadFile(c.Path("/proc/" + e.Name() + "/stat"))
		if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
			cmdline = []byte("<zombie>")
		}
		fmt.Fprintf(&b, "%s %s\n", e.Name(), strings.TrimRight(strings.ReplaceAll(string(cmdline), "\x00", " "), " "))
	}
	return b.String()
}
