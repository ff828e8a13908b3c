// Package container runs integration tests in throwaway Linux containers made
// from namespaces, without Docker.
//
// [Start] creates a container: a process tree in new mount, pid, network, UTS
// and IPC namespaces whose root is an overlay of the host root (writes land
// in a tmpfs and vanish with the container). Inside it /home, /root, /tmp,
// /run, /var/lib/otpgate, /var/log (with empty wtmp, btmp and lastlog) and
// /dev/shm are fresh tmpfs (so the host's ~root/.ssh stays out), /proc
// belongs to the new pid namespace, /sys is a read-only sysfs of the new
// network namespace, /dev is the host's devtmpfs with a private devpts
// instance mounted on /dev/pts (and its ptmx bound over /dev/ptmx, so ptys,
// ssh -tt and tmux work), only the loopback interface exists (and is up), and
// the hostname is the container's own (and resolves, through /etc/hosts).
// The repository and $OTPGATE_BIN are bound read-only at their host paths.
//
// Users, groups, /etc/pam.d, sshd configs and daemons created inside never
// touch the host. Everything is torn down by a t.Cleanup registered by
// [Start]: killing the container's pid 1 kills every process in its pid
// namespace, and the mounts go with the last process of the mount namespace.
// If the test binary dies without running its cleanups (a panic in another
// goroutine, -timeout), the container's pid 1 sees its lifeline pipe close
// and exits, so nothing is left behind either.
//
// How it works: the container's pid 1 is the test binary itself, re-executed
// with a marker in its environment that this package's init function
// recognises (so any test binary importing this package can start
// containers, without a TestMain hook). It builds the root, pivots into it,
// reports readiness on a pipe and then only reaps orphans. Commands enter
// the container with nsenter(1) (util-linux) and, for other users, drop
// privileges with setpriv(1).
//
// Everything here needs root; [Require] fails (never skips) a test that is
// not run as root or lacks a tool, naming the Debian package to install.
package container
