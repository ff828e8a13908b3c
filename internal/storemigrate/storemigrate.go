// Package storemigrate opens otpgated's configured store and copies every
// record between the embedded store ("bolt") and PostgreSQL, for
// `otpgated -migrate-store FROM`; the copy itself, with its checks, is
// postgres.Copy.
package storemigrate

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/daemon/store/bolt"
	"github.com/otpgate/otpgate/daemon/store/postgres"
	"github.com/otpgate/otpgate/internal/config"
)

// The store.backend values.
const (
	Bolt     = "bolt"
	Postgres = "postgres"
)

// ErrDaemonRunning is wrapped by Migrate's error when otpgated answers on
// daemon.socket.
var ErrDaemonRunning = errors.New("otpgated is running")

// dialTimeout bounds the connection attempt that detects a running
// otpgated.
const dialTimeout = 2 * time.Second

// Result is what Migrate did.
type Result struct {
	From, To string // the backends, "bolt" or "postgres"
	// Records is the number of records written to To, also when Migrate
	// failed after writing some.
	Records int
	// KeyMissing is set when daemon.state_dir has no secret.key: the
	// records keep their secrets sealed by the key they were written
	// with, which otpgated needs there before it starts.
	KeyMissing bool
	// KeyPath is daemon.state_dir/secret.key.
	KeyPath string
}

// Other returns the backend that Migrate copies from into: "postgres" for
// "bolt" and back.
func Other(from string) (string, error) {
	switch from {
	case Bolt:
		return Postgres, nil
	case Postgres:
		return Bolt, nil
	}
	return "", fmt.Errorf("unknown store %q: it must be %q or %q", from, Bolt, Postgres)
}

// Open opens the configured store of the given backend: the bbolt file in
// daemon.state_dir, or the PostgreSQL database named by the root-only
// store.dsn_file (whose content is never logged).
func Open(cfg *config.Config, backend string) (store.Store, error) {
	if backend != Postgres {
		return bolt.Open(cfg.Daemon.StateDir)
	}
	dsn, err := postgres.ReadDSNFile(cfg.Store.DSNFile)
	if err != nil {
		return nil, err
	}
	return postgres.Open(dsn, postgres.Options{Timeout: cfg.Store.Timeout.Duration, MaxConns: cfg.Store.MaxConns})
}

// Migrate copies every record from the from store into the other
// backend's (see postgres.Copy), as root, and only while no otpgated
// answers on daemon.socket. The destination must be empty: nothing is
// merged or overwritten (postgres.ErrNotEmpty). The key file stays where
// it is: records keep their secrets sealed by it.
//
// An otpgated using the embedded store elsewhere is also caught by the
// store's file lock; one using the PostgreSQL database on another server
// is not, and must be stopped by the administrator.
func Migrate(cfg *config.Config, from string) (Result, error) {
	to, err := Other(from)
	if err != nil {
		return Result{}, err
	}
	res := Result{From: from, To: to, KeyPath: filepath.Join(cfg.Daemon.StateDir, store.KeyFile)}
	if os.Geteuid() != 0 {
		return res, errors.New("must run as root")
	}
	if err := checkNotRunning(cfg.Daemon.Socket); err != nil {
		return res, err
	}
	if err := store.PrepareStateDir(cfg.Daemon.StateDir); err != nil {
		return res, err
	}
	src, err := Open(cfg, from)
	if err != nil {
		return res, err
	}
	defer src.Close()
	dst, err := Open(cfg, to)
	if err != nil {
		return res, err
	}
	res.Records, err = postgres.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("copied %d records from %s to %s, then: %w", res.Records, from, to, err)
	}
	if _, err := os.Lstat(res.KeyPath); errors.Is(err, os.ErrNotExist) {
		res.KeyMissing = true
	}
	return res, nil
}

// checkNotRunning fails when something accepts connections on socket,
// otpgated's socket: the copy must not race a daemon changing either
// store. An absent socket, or one nobody listens on (left by a crash), is
// fine.
func checkNotRunning(socket string) error {
	conn, err := net.DialTimeout("unix", socket, dialTimeout)
	switch {
	case err == nil:
		if cerr := conn.Close(); cerr != nil {
			return fmt.Errorf("close the test connection to %s: %w", socket, cerr)
		}
		return fmt.Errorf("%w (it answers on %s): stop otpgated first (systemctl stop otpgated), and every other otpgated using the same PostgreSQL database", ErrDaemonRunning, socket)
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return nil
	}
	return fmt.Errorf("cannot tell whether otpgated is running on %s (%w): stop otpgated first", socket, err)
}
