// Command otpgated is the otpgate daemon: it alone holds users' TOTP
// secrets and state and answers the PAM module, otpgate-sshd and the CLI
// on a Unix socket. See docs/ and `otpgated -help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/daemon/seal"
	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/daemon/store/postgres"
	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/storemigrate"
	"github.com/otpgate/otpgate/internal/version"
)

const usage = `usage: otpgated [-config PATH] [-check-config] [-migrate-store FROM] [-version]

otpgated runs in the foreground as root (systemd: Type=simple), listens on
daemon.socket and keeps its key under daemon.state_dir and its state in the
store.backend: "bolt" (a file in daemon.state_dir) or "postgres" (shared).

  -config PATH    configuration file (default /etc/otpgate/config.toml;
                  built-in defaults are used if that default file is absent)
  -check-config   load and validate the configuration, then exit
  -migrate-store FROM
                  copy every record from the FROM store ("bolt" or
                  "postgres", as configured) into the other one, check the
                  copy, then exit; stop every otpgated using either store
                  first; the destination must be empty
  -version        print the version and exit

Signals: SIGHUP reloads the configuration (a broken file keeps the old one),
SIGTERM and SIGINT stop accepting, let requests finish, and exit.
`

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("otpgated", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	cfgPath := fs.String("config", "", "")
	checkOnly := fs.Bool("check-config", false, "")
	showVersion := fs.Bool("version", false, "")
	migrateFrom := fs.String("migrate-store", "", "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "otpgated: unexpected argument %q\n%s", fs.Arg(0), usage)
		return 2
	}
	if *showVersion {
		fmt.Println("otpgated", version.String())
		return 0
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "otpgated: %v\n", err)
		return 1
	}
	if *checkOnly {
		if cfg.Store.Backend == "postgres" {
			// The file's owner and mode, not the database: -check-config
			// does not connect.
			if _, err := postgres.ReadDSNFile(cfg.Store.DSNFile); err != nil {
				fmt.Fprintf(os.Stderr, "otpgated: %v\n", err)
				return 1
			}
		}
		fmt.Println("otpgated: configuration OK")
		return 0
	}
	if *migrateFrom != "" {
		if *migrateFrom != "bolt" && *migrateFrom != "postgres" {
			fmt.Fprintf(os.Stderr, "otpgated: -migrate-store takes \"bolt\" or \"postgres\", got %q\n", *migrateFrom)
			return 2
		}
		path := *cfgPath
		if path == "" {
			path = config.DefaultPath
		}
		return migrateStore(cfg, path, *migrateFrom, os.Stdout, os.Stderr)
	}
	if err := serve(cfg, *cfgPath); err != nil {
		fmt.Fprintf(os.Stderr, "otpgated: %v\n", err)
		return 1
	}
	return 0
}

// loadConfig loads path, or the default path; only an absent default file
// falls back to the built-in defaults.
func loadConfig(path string) (*config.Config, error) {
	if path != "" {
		return config.Load(path)
	}
	return config.LoadOrDefault(config.DefaultPath, false)
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// auditLogger opens the audit destination.
func auditLogger(dest string, level *slog.LevelVar, stderr *slog.Logger) (*slog.Logger, io.Closer, error) {
	switch dest {
	case "stderr", "":
		return stderr, nil, nil
	case "syslog":
		w, err := syslog.New(syslog.LOG_AUTHPRIV|syslog.LOG_INFO, "otpgated")
		if err != nil {
			return nil, nil, fmt.Errorf("audit log to syslog: %w", err)
		}
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), w, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log file: %w", err)
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: level})), f, nil
}

func serve(cfg *config.Config, cfgPath string) error {
	if os.Geteuid() != 0 {
		return errors.New("otpgated must run as root (it reads peer credentials and guards secrets)")
	}
	// No core dumps and no ptrace by other users: secrets live in memory.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("disable core dumps: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err)
	}

	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.Daemon.LogLevel))
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	audit, auditCloser, err := auditLogger(cfg.Audit.Destination, level, logger)
	if err != nil {
		return err
	}
	if auditCloser != nil {
		defer auditCloser.Close()
	}

	dir := cfg.Daemon.StateDir
	if err := store.PrepareStateDir(dir); err != nil {
		return err
	}
	key, err := seal.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
	if err != nil {
		return err
	}
	sealer, err := seal.New(key)
	clear(key)
	if err != nil {
		return err
	}
	db, err := storemigrate.Open(cfg, cfg.Store.Backend)
	if err != nil {
		return err
	}
	defer db.Close()

	ln, err := daemon.Listen(cfg.Daemon.Socket)
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(cfg.Daemon.Socket) }() // at exit; Listen replaces a stale one

	srv := daemon.New(cfg, db, sealer, daemon.WithLogger(logger), daemon.WithAuditLogger(audit))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		for sig := range sigs {
			if sig != syscall.SIGHUP {
				logger.Info("stopping", "signal", sig.String())
				cancel()
				return
			}
			next, err := loadConfig(cfgPath)
			if err != nil {
				logger.Error("reload failed; keeping the previous configuration", "err", err)
				continue
			}
			level.Set(logLevel(next.Daemon.LogLevel))
			srv.Reload(next)
		}
	}()
	logger.Info("otpgated started", "version", version.String(), "socket", cfg.Daemon.Socket, "state_dir", dir, "store", storeName(cfg))
	return srv.Serve(ctx, ln, 5*time.Second)
}

// storeName describes the configured store for the log.
func storeName(cfg *config.Config) string {
	if cfg.Store.Backend == "postgres" {
		return "postgres (dsn_file " + cfg.Store.DSNFile + ")"
	}
	return "bolt"
}
