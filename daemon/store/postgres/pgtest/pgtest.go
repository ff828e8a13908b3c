// Package pgtest runs a throwaway PostgreSQL server for tests: Debian's
// postgresql-15 binaries, a data directory on tmpfs (/dev/shm), run as the
// unprivileged postgres user, listening only on a Unix socket in that
// directory. It needs root (to drop to postgres) and the postgresql
// package; without them Start returns an error naming the package, which
// tests report with t.Fatal, never t.Skip.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDir holds Debian's PostgreSQL 15 server binaries.
const BinDir = "/usr/lib/postgresql/15/bin"

// Package is the Debian package that provides BinDir.
const Package = "postgresql"

// superuser is the bootstrap role initdb creates.
const superuser = "otpgate"

// Server is a running (or stopped) test PostgreSQL server.
type Server struct {
	// Dir is the base directory: data/, the socket and the server log.
	Dir string
	// SocketDir is the directory holding the Unix socket (.s.PGSQL.5432).
	SocketDir string

	uid, gid uint32

	mu   sync.Mutex // guards cmd and done
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	dbs  int
}

// Start creates a data directory under /dev/shm (tmpfs: fast, and gone
// with the machine; falling back to the system temporary directory), runs
// initdb as the postgres user and starts the server. Call Remove when
// done.
func Start() (*Server, error) {
	parent := "/dev/shm"
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		parent = os.TempDir()
	}
	return StartIn(parent)
}

// StartIn is Start with the data directory under parent: benchmarks put
// it on a disk file system, where fsync costs what it does in production.
func StartIn(parent string) (*Server, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("pgtest: must run as root (the server runs as the postgres user, and initdb refuses root)")
	}
	for _, b := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(BinDir, b)); err != nil {
			return nil, fmt.Errorf("pgtest: %s missing: install the Debian package %q (apt-get install %s)", filepath.Join(BinDir, b), Package, Package)
		}
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: no postgres user (install the Debian package %q): %w", Package, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	dir, err := os.MkdirTemp(parent, "otpgate-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{Dir: dir, SocketDir: dir, uid: uint32(uid), gid: uint32(gid)}
	if err := os.Chmod(dir, 0o755); err != nil {
		s.Remove()
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		s.Remove()
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	initdb := s.command(filepath.Join(BinDir, "initdb"), "-D", s.dataDir(), "-U", superuser,
		"--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		s.Remove()
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	if err := s.Restart(); err != nil {
		s.Remove()
		return nil, err
	}
	return s, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

// LogPath is the server's log file.
func (s *Server) LogPath() string { return filepath.Join(s.Dir, "server.log") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.Dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=" + s.Dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: s.uid, Gid: s.gid},
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
	return cmd
}

// Restart starts the server if it is not running and waits until it
// accepts connections.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(s.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close()
	cmd := s.command(filepath.Join(BinDir, "postgres"), "-D", s.dataDir(),
		"-k", s.SocketDir, "-c", "listen_addresses=",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB",
		// Durability stays as in production: fsync and synchronous
		// commit on (cheap here: the data directory is on tmpfs).
		"-c", "fsync=on", "-c", "synchronous_commit=on",
		"-c", "log_min_messages=warning")
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // Stop reports what matters
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err == nil {
			c.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			return fmt.Errorf("pgtest: postgres exited at start:\n%s", s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres not ready after 30s: %w\n%s", err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.LogPath())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// DSN returns a connection string for database db as the superuser over
// the Unix socket.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("host=%s port=5432 user=%s dbname=%s sslmode=disable connect_timeout=5", s.SocketDir, superuser, db)
}

// CreateDatabase creates a fresh, empty database and returns its DSN.
func (s *Server) CreateDatabase() (string, error) {
	s.mu.Lock()
	s.dbs++
	name := fmt.Sprintf("otpgate_test_%d", s.dbs)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.DSN(name), nil
}

// Exec runs SQL as the superuser in the database of dsn.
func Exec(dsn, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("pgtest: %s: %w", strings.Fields(sql)[0], err)
	}
	return nil
}

// Stop shuts the server down with the given signal (SIGINT: fast
// shutdown, rolling back open transactions; SIGKILL: a crash) and waits
// for every server process to exit.
func (s *Server) Stop(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	// Backends are the postmaster's children, each in a process group of
	// its own; a crash test kills them too, or they would go on serving
	// their connections for a moment.
	pid := s.cmd.Process.Pid
	var children []int
	if sig == syscall.SIGKILL {
		children = childrenOf(pid)
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pgtest: signal postgres: %w", err)
	}
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL) // fails only for a child that has exited
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL) // fails only if it has exited after all
		<-s.done
	}
	for _, c := range children {
		for i := 0; i < 500 && alive(c); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	s.cmd, s.done = nil, nil
	return nil
}

// Remove stops the server and deletes its directory.
func (s *Server) Remove() {
	_ = s.Stop(syscall.SIGINT) // cleanup: the test has its verdict already
	_ = os.RemoveAll(s.Dir)
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _ := procStat(n); ppid == pid {
			out = append(out, n)
		}
	}
	return out
}

// procStat returns a process's parent pid and state from /proc/PID/stat.
func procStat(pid int) (ppid int, state byte) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 2 {
		return 0, 0
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0][0]
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	_, state := procStat(pid)
	return state != 0 && state != 'Z'
}
