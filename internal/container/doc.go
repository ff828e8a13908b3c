// Package container runs commands in throwaway Linux containers made from
// namespaces, without Docker. The integration tests (through the testing
// helpers of integration/container) and otpgate-demo run in them; this
// package links no test code.
//
// [New] creates a container: a process tree in new mount, pid, network, UTS
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
// touch the host. [Container.Close] tears everything down: killing the
// container's pid 1 kills every process in its pid namespace, and the mounts
// go with the last process of the mount namespace. If the program dies
// without calling Close (a panic, a test's -timeout), the container's pid 1
// sees its lifeline pipe close and exits, so nothing is left behind either.
//
// How it works: the container's pid 1 is the calling program itself (a test
// binary, otpgate-demo), re-executed with a marker in its environment that
// this package's init function recognises (so any program importing this
// package can start containers, without a hook in main or TestMain). It
// builds the root, pivots into it, reports readiness on a pipe and then only
// reaps orphans. Commands enter
// the container with nsenter(1) (util-linux) and, for other users, drop
// privileges with setpriv(1).
//
// Everything here needs root, and nsenter(1) and setpriv(1) ([NsenterPath],
// [SetprivPath]).
//
// Things to know:
//
//   - A container is a fixture for tests and demos, not a security
//     boundary: commands run as real root with all capabilities, /dev is
//     the host's devtmpfs, and only /sys and /proc/sys are read-only. What it guarantees is that
//     files, users, mounts, processes and network listeners stay inside.
//   - File systems mounted below the host's / (a separate /usr, /work...)
//     get overlays of their own, so they are seen, and written to only
//     inside. The host's /tmp, /home, /root and /run are not seen at all.
//   - [Container.Path] gives a host path into the container, for the calling
//     process's own opens, dials and reads; absolute symlinks met through
//     it resolve against the host (see its doc). The file helpers
//     ([Container.WriteFile], ReadFile, MkdirAll, Chown) and
//     [Container.DialContext] resolve everything inside.
//   - To stop a command early, use a context ([Container.Exec],
//     [Container.CommandContext]), [Container.Kill] or [Process.Stop]; not
//     kill(2) on the *exec.Cmd's process, which is nsenter and not the
//     command (see [Container.Command]).
//   - [Container.WaitForPort] and [Container.WaitForSocket] read the
//     kernel's listen tables instead of connecting, so no probe connection
//     reaches a daemon's logs or rate limits.
package container
