// Command otpgate-sshd is a standalone SSH server that asks for a public
// key and then, through otpgated, for a TOTP code. See docs/sshd.md and
// `otpgate-sshd -help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/otpgate/otpgate/internal/version"
	"github.com/otpgate/otpgate/sshd"
)

const usage = `usage: otpgate-sshd [-config PATH] [-check-config] [-version]

otpgate-sshd runs in the foreground as root and serves SSH on sshd.listen:
a public key from ~/.ssh/authorized_keys, then a verification code checked
by otpgated. Only the [sshd] section of the configuration file is read.

  -config PATH    configuration file (default /etc/otpgate/config.toml;
                  built-in defaults are used if that default file is absent)
  -check-config   load and validate the [sshd] section, then exit
  -version        print the version and exit

Signals: SIGHUP reloads the reloadable settings (a broken file keeps the old
ones); SIGTERM and SIGINT stop accepting, let sessions finish for up to
sshd.shutdown_timeout, then close them and exit.
`

func main() {
	// The server re-executes itself, with a user's credentials, to connect
	// forwarded channels as that user.
	if code, ok := sshd.RunHelper(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

// loadConfig reads path; a missing default file means the defaults.
func loadConfig(path string, explicit bool) (*sshd.Config, error) {
	cfg, err := sshd.LoadConfig(path)
	if err != nil && !explicit && errors.Is(err, fs.ErrNotExist) {
		c := sshd.DefaultConfig()
		return &c, nil
	}
	return cfg, err
}

func run(args []string, stderr io.Writer) int {
	fl := flag.NewFlagSet("otpgate-sshd", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, usage) }
	configPath := fl.String("config", sshd.DefaultConfigPath, "configuration file")
	checkOnly := fl.Bool("check-config", false, "validate the configuration and exit")
	showVersion := fl.Bool("version", false, "print the version")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fl.NArg() != 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if *showVersion {
		fmt.Fprintln(os.Stdout, "otpgate-sshd", version.String())
		return 0
	}
	explicit := false
	fl.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	cfg, err := loadConfig(*configPath, explicit)
	if err != nil {
		fmt.Fprintf(stderr, "otpgate-sshd: %v\n", err)
		return 1
	}
	if *checkOnly {
		fmt.Fprintf(stderr, "otpgate-sshd: %s: [sshd] is valid\n", *configPath)
		return 0
	}

	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := serve(cfg, *configPath, explicit, log, level); err != nil {
		log.Error("otpgate-sshd failed", "err", err)
		return 1
	}
	return 0
}

func serve(cfg *sshd.Config, path string, explicit bool, log *slog.Logger, level *slog.LevelVar) error {
	if os.Geteuid() != 0 {
		return errors.New("otpgate-sshd must run as root (it starts sessions as other users)")
	}
	// No core dumps and no ptrace by other users of a process holding host
	// keys; like otpgated, refuse to start without that.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("disable core dumps: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err)
	}

	signers, err := sshd.LoadHostKeys(cfg.HostKeyDir, cfg.HostKeyTypes)
	if err != nil {
		return err
	}
	for _, s := range signers {
		log.Info("host key", "type", s.PublicKey().Type(), "fingerprint", ssh.FingerprintSHA256(s.PublicKey()))
	}
	srv, err := sshd.New(cfg, signers, log, level)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("listening", "addr", ln.Addr().String(), "version", version.String(), "otpgated", cfg.Socket)

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			nc, err := loadConfig(path, explicit)
			if err != nil {
				log.Error("reload failed; keeping the old settings", "err", err)
				continue
			}
			srv.Reload(nc)
			log.Info("configuration reloaded")
		}
	}()

	serveErr := srv.Serve(ctx, ln)
	cancel()
	timeout := srv.Config().ShutdownTimeout.Duration
	log.Info("shutting down", "timeout", timeout.String())
	sctx, scancel := context.WithTimeout(context.Background(), timeout)
	defer scancel()
	start := time.Now()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err, "after", time.Since(start).Round(time.Millisecond).String())
	}
	return serveErr
}
