package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// initEnv marks the re-executed calling program as a container's pid 1; its value
// is the JSON-encoded initConfig.
const initEnv = "OTPGATE_CONTAINER_INIT"

// scratchDir is where pid 1 mounts the tmpfs holding the overlay's upper and
// work directories and the merged root, before pivoting into it. It is a
// mount in the container's own (private) mount namespace, invisible to the
// host.
const scratchDir = "/tmp"

// initConfig is what New tells the container's pid 1.
type initConfig struct {
	Hostname string `json:"hostname"`
	Binds    []Bind `json:"binds"`
}

func init() {
	if cfg, ok := os.LookupEnv(initEnv); ok {
		os.Exit(runInit(cfg))
	}
}

// runInit is the container's pid 1: it builds the root file system, reports
// "ok" (or "error: ...") on fd 3, then reaps orphans until its stdin (the
// lifeline pipe from the calling process) reaches EOF or it is killed.
func runInit(rawCfg string) int {
	ready := os.NewFile(3, "ready")
	var cfg initConfig
	err := json.Unmarshal([]byte(rawCfg), &cfg)
	if err == nil {
		err = setupContainer(cfg)
	}
	if err != nil {
		fmt.Fprintf(ready, "error: %v\n", err)
		return 1
	}
	// Watch for SIGCHLD before reporting ready so that no orphan is missed.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	if _, err := fmt.Fprintln(ready, "ok"); err != nil {
		return 1
	}
	ready.Close()

	lifeline := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(lifeline)
	}()
	for {
		reapAll()
		select {
		case sig := <-sigs:
			if sig != unix.SIGCHLD {
				return 0
			}
		case <-lifeline:
			return 0
		}
	}
}

// reapAll collects every exited child, including orphans reparented to pid 1.
func reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}

// mountSpec is one mount(2) call relative to the new root. A source
// "root:/path" is /path in the new root (for binds within it).
type mountSpec struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	mkdir                  os.FileMode // create target (a directory) with this mode if non-zero
}

// setupContainer runs in pid 1, in fresh namespaces, still on the host root.
func setupContainer(cfg initConfig) error {
	// Nothing done from here on may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	submounts, err := realSubmounts()
	if err != nil {
		return err
	}
	// Open the bind sources now: the scratch tmpfs below may hide them (a
	// source under /tmp) and bind mounts from an fd resolve the real path.
	bindFds := make([]int, len(cfg.Binds))
	for i, b := range cfg.Binds {
		fd, err := unix.Open(b.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open bind source %s: %w", b.Source, err)
		}
		bindFds[i] = fd
	}

	if err := unix.Mount("otpgate-scratch", scratchDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
		return fmt.Errorf("mount scratch tmpfs on %s: %w", scratchDir, err)
	}
	root := scratchDir + "/root"
	if err := os.Mkdir(root, 0o755); err != nil { //nolint:gosec // the container's root directory is 0755, as / is
		return err
	}
	if err := overlay("/", root, "root"); err != nil {
		return err
	}
	// The overlay of / does not show file systems mounted below / (say a
	// separate /usr or /work): give each its own overlay, in mount order.
	for i, m := range submounts {
		if err := overlay(m, root+m, strconv.Itoa(i)); err != nil {
			return err
		}
	}

	const nsd = unix.MS_NOSUID | unix.MS_NODEV
	mounts := []mountSpec{
		{"tmpfs", "/home", "tmpfs", nsd, "mode=0755", 0o755},
		{"tmpfs", "/root", "tmpfs", nsd, "mode=0700", 0o700},
		{"tmpfs", "/tmp", "tmpfs", nsd, "mode=1777", 0o1777},
		{"tmpfs", "/run", "tmpfs", nsd, "mode=0755", 0o755},
		{"tmpfs", "/var/lib/otpgate", "tmpfs", nsd, "mode=0755", 0o755},
		{"tmpfs", "/var/log", "tmpfs", nsd, "mode=0755", 0o755},
		{"proc", "/proc", "proc", nsd | unix.MS_NOEXEC, "", 0o555},
		// Sysctls are mostly global: keep what runs inside from changing the host's.
		{"root:/proc/sys", "/proc/sys", "", unix.MS_BIND, "", 0},
		{"", "/proc/sys", "", unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY, "", 0},
		{"sysfs", "/sys", "sysfs", nsd | unix.MS_NOEXEC | unix.MS_RDONLY, "", 0o555},
		// The host's devtmpfs (not recursively: its devpts and shm are replaced).
		{"/dev", "/dev", "", unix.MS_BIND, "", 0o755},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5", 0},
		{"root:/dev/pts/ptmx", "/dev/ptmx", "", unix.MS_BIND, "", 0},
		{"tmpfs", "/dev/shm", "tmpfs", nsd, "mode=1777", 0},
	}
	for _, m := range mounts {
		target := root + m.target
		if m.mkdir != 0 {
			if err := os.MkdirAll(target, m.mkdir); err != nil {
				return err
			}
		}
		source := m.source
		if p, ok := strings.CutPrefix(source, "root:"); ok {
			source = root + p
		}
		if err := unix.Mount(source, target, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.source, m.target, err)
		}
	}
	for i, b := range cfg.Binds {
		if err := bindMount(root, b, bindFds[i]); err != nil {
			return err
		}
		unix.Close(bindFds[i])
	}
	if err := prepareEtc(root, cfg.Hostname); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	if err := pivot(root); err != nil {
		return err
	}
	return loopbackUp()
}

// overlay mounts an overlay of the directory lower on target, with its upper
// and work directories in the scratch tmpfs under name.
func overlay(lower, target, name string) error {
	upper, work := scratchDir+"/upper-"+name, scratchDir+"/work-"+name
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil { //nolint:gosec // overlay upper and work directories hold the root tree, 0755 as / is
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("otpgate-root", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay of %s (%s): %w (is the overlay module available?)", lower, opts, err)
	}
	return nil
}

// pseudoFS are file system types that are not part of the host's file
// tree proper: they are not carried into containers (or are mounted afresh).
var pseudoFS = map[string]bool{
	"proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "devtmpfs": true, "devpts": true,
	"mqueue": true, "tmpfs": true, "ramfs": true, "securityfs": true, "debugfs": true, "tracefs": true,
	"pstore": true, "bpf": true, "hugetlbfs": true, "fusectl": true, "configfs": true, "binfmt_misc": true,
	"autofs": true, "efivarfs": true, "nsfs": true, "rpc_pipefs": true, "selinuxfs": true,
}

// freshDirs are replaced inside the container; mounts below them are not
// carried in.
var freshDirs = []string{"/proc", "/sys", "/dev", "/tmp", "/run", "/home", "/root", "/var/lib/otpgate", "/var/log"}

// realSubmounts lists the directories where a real (disk, network or
// overlay) file system is mounted below /, outside freshDirs, parents first.
func realSubmounts() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseSubmounts(string(data), isDir), nil
}

// isDir reports whether p is a directory.
func isDir(p string) bool {
	st, err := os.Stat(p) //nolint:gosec // p is a mount point read from /proc/self/mountinfo
	return err == nil && st.IsDir()
}

// parseSubmounts is realSubmounts on the text of a mountinfo file.
func parseSubmounts(mountinfo string, isDir func(string) bool) []string {
	var dirs []string
	seen := map[string]bool{}
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 1 || pseudoFS[g[0]] {
			continue
		}
		dir := unescapeMountinfo(f[4])
		if dir == "/" || seen[dir] || under(dir, freshDirs) || strings.ContainsAny(dir, ",:\\") {
			continue
		}
		if !isDir(dir) {
			continue // a file bind mount (/etc/hosts in some containers)
		}
		seen[dir] = true
		dirs = append(dirs, dir)
	}
	// Parents before children, whatever order they were mounted in.
	sort.SliceStable(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") < strings.Count(dirs[j], "/") })
	return dirs
}

// under reports whether dir is one of roots or below one.
func under(dir string, roots []string) bool {
	for _, r := range roots {
		if dir == r || strings.HasPrefix(dir, r+"/") {
			return true
		}
	}
	return false
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// bindMount binds the file or directory open as fd onto b.Target in root.
func bindMount(root string, b Bind, fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat bind source %s: %w", b.Source, err)
	}
	target := root + b.Target
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := os.MkdirAll(target, 0o755); err != nil { //nolint:gosec // a bind mount point inside the container's root, 0755 as system directories are
			return err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil { //nolint:gosec // a bind mount point's parent inside the container's root, 0755 as system directories are
			return err
		}
		if f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644); err == nil { //nolint:gosec // an empty mount point for a file bind mount; the bound file keeps its own mode
			f.Close()
		} else {
			return err
		}
	}
	src := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", b.Source, b.Target, err)
	}
	if b.ReadOnly {
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", b.Target, err)
		}
	}
	return nil
}

// prepareEtc gives the container its hostname in /etc/hostname and
// /etc/hosts (sudo warns when the hostname does not resolve) and the
// directories daemons expect under the fresh /run.
func prepareEtc(root, hostname string) error {
	if err := os.WriteFile(root+"/etc/hostname", []byte(hostname+"\n"), 0o644); err != nil { //nolint:gosec // /etc/hostname is world-readable, as on any system
		return err
	}
	hosts, err := os.ReadFile(root + "/etc/hosts")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if !strings.Contains(string(hosts), "localhost") {
		hosts = append(hosts, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"...)
	}
	hosts = append(hosts, "127.0.1.1\t"+hostname+"\n"...)
	if err := os.WriteFile(root+"/etc/hosts", hosts, 0o644); err != nil { //nolint:gosec // /etc/hosts is world-readable, as on any system; root is the container's scratch root
		return err
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{"/run/sshd", 0o755}, {"/run/lock", 0o1777}} {
		if err := os.Mkdir(root+d.path, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(root+d.path, d.mode); err != nil { // umask
			return err
		}
	}
	// The login records Debian creates at install or boot (sshd, login
	// and su complain without them), owned by group utmp.
	utmpGID := groupID(root+"/etc/group", "utmp")
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{"/run/utmp", 0o664}, {"/var/log/wtmp", 0o664}, {"/var/log/btmp", 0o660}, {"/var/log/lastlog", 0o664}} {
		if err := os.WriteFile(root+f.path, nil, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(root+f.path, f.mode); err != nil {
			return err
		}
		if err := os.Chown(root+f.path, 0, utmpGID); err != nil {
			return err
		}
	}
	return nil
}

// groupID returns the gid of group name in the group file, or 0.
func groupID(groupFile, name string) int {
	data, err := os.ReadFile(groupFile)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[0] == name {
			if gid, err := strconv.Atoi(f[2]); err == nil {
				return gid
			}
		}
	}
	return 0
}

// pivot makes root the root of the mount namespace and detaches the old
// root (the runc recipe: pivot_root(".", ".") then unmount the old root that
// now sits on top).
func pivot(root string) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldRoot)
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// loopbackUp brings lo up; a new network namespace starts with it down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// startInitAttr is the SysProcAttr of the container's pid 1.
func startInitAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC,
		// No Pdeathsig: it fires when the forking OS thread exits, which Go
		// does for locked threads (see DialContext); the lifeline pipe on
		// stdin covers the death of the calling process instead.
	}
}
