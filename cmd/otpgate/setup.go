package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/doctor"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/setup"
)

// setupRun prints one `otpgate setup sshd|sudo`; internal/setup decides
// and writes.
type setupRun struct {
	*setup.Session
	a     *app
	apply bool
	force bool
}

// cmdSetup prints, or with --apply writes, the sshd_config and /etc/pam.d
// changes that make sshd or sudo ask for a code (docs/pam.md).
func (a *app) cmdSetup(ctx context.Context, args []string) error {
	fs := newFlagSet("setup")
	apply := fs.Bool("apply", false, "write the changes (root only)")
	force := fs.Bool("force", false, "DANGEROUS: apply although the administrator is not enrolled and has no console way back in; only with another way in (an open root shell you keep, a console)")
	cfgPath := fs.String("config", "", "the `FILE` of otpgated's configuration, for its socket (default "+config.DefaultPath+")")
	pamDir := fs.String("pam-dir", "", "the `DIR` holding the PAM modules (default: where pam_unix.so is)")
	pos, ok, err := a.parseArgs("setup", fs, args)
	if !ok {
		return err
	}
	if err := wantArgs("setup", pos, "sshd|sudo"); err != nil {
		return err
	}
	if pos[0] != "sshd" && pos[0] != "sudo" {
		return usagef("setup", "setup configures sshd or sudo, not %q", pos[0])
	}
	if *force && !*apply {
		return usagef("setup", "--force only makes sense with --apply")
	}
	if *apply {
		if err := a.requireRoot(); err != nil {
			return err
		}
	}
	if *pamDir == "" {
		*pamDir = doctor.FindPAMDir()
	}
	cfg, err := loadSetupConfig(*cfgPath)
	if err != nil {
		return err
	}
	sock := a.socketFlag
	if sock == "" {
		sock = a.getenv("OTPGATE_SOCKET")
	}
	if sock == "" {
		sock = cfg.Daemon.Socket
	}
	admin, err := a.invokingAdmin()
	if err != nil {
		return err
	}
	s := &setupRun{a: a, apply: *apply, force: *force, Session: &setup.Session{
		Target: pos[0],
		Admin:  admin,
		Root:   a.uid == 0,
		Client: &protocol.Client{Socket: sock, Timeout: setup.DefaultTimeout},
		PAMDir: *pamDir,
		Now:    a.now,
	}}
	s.Log = func(line string) { s.out("%s", line) }
	return s.run(ctx)
}

// loadSetupConfig loads otpgated's configuration as doctor does: the
// default file may be absent (built-in defaults), a named one must load.
func loadSetupConfig(path string) (*config.Config, error) {
	if path == "" {
		cfg, err := config.LoadOrDefault(config.DefaultPath, false)
		if err != nil {
			return nil, fmt.Errorf("%w\nfix: correct %s (see otpgate.toml(5)) or name another file with --config", err, config.DefaultPath)
		}
		return cfg, nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%w\nfix: correct %s (see otpgate.toml(5))", err, path)
	}
	return cfg, nil
}

// invokingAdmin is the administrator whose way back in the guard protects:
// $SUDO_USER when root runs it through sudo, else the real uid's account.
func (a *app) invokingAdmin() (string, error) {
	if u := a.getenv("SUDO_USER"); u != "" && a.uid == 0 {
		return u, nil
	}
	u, err := a.self()
	if err != nil {
		return "", err
	}
	return u.Name, nil
}

func (s *setupRun) out(format string, args ...any) {
	fmt.Fprintf(s.a.stdout, format+"\n", args...)
}

func (s *setupRun) run(ctx context.Context) error {
	err := s.Plan(ctx)
	if err != nil && s.apply {
		s.a.errorf("%s", clean(err.Error()))
		s.a.errorf("refusing to apply: nothing was changed")
		return errSilent
	}
	if err != nil {
		return err
	}
	for _, n := range s.Notes {
		s.out("%s", n)
	}
	if len(s.Changes) == 0 {
		s.out("%s is already configured: nothing to change.", s.Target)
		return nil
	}
	for _, c := range s.Changes {
		s.out("\n%s", strings.TrimRight(c.Diff(), "\n"))
	}
	s.out("")
	failed := s.printGuards(ctx)
	if !s.apply {
		s.out("\nAfter writing, --apply checks %s, and restores the backups if a check fails.", s.AfterChecks())
		if len(failed) > 0 {
			s.out("--apply would refuse now (see above). Nothing was changed.")
		} else {
			s.out("Nothing was changed. Run 'otpgate setup %s --apply' as root to write it, with a backup of each file.", s.Target)
		}
		return nil
	}
	if len(failed) > 0 {
		if !setup.Overridable(failed) || !s.force {
			s.a.errorf("refusing to apply: nothing was changed")
			return errSilent
		}
		s.out("--force: going ahead although the administrator check failed.")
	}
	return s.write(ctx)
}

// printGuards runs the checks before writing, prints each result and
// returns the failures.
func (s *setupRun) printGuards(ctx context.Context) []setup.Guard {
	s.out("Checks before writing (--apply refuses if one fails):")
	guards := s.Guards(ctx)
	for _, g := range guards {
		switch g.Status {
		case setup.GuardOK:
			s.out("  ok    %s", g.What)
		case setup.GuardNote:
			s.out("  note  %s: %s", g.Problem, g.Fix)
		case setup.GuardFailed:
			s.out("  FAIL  %s\n        fix: %s", g.Problem, g.Fix)
		}
	}
	return setup.Failed(guards)
}

// write writes the changes and prints what was done and what to do next,
// or what failed and what was restored.
func (s *setupRun) write(ctx context.Context) error {
	err := s.Write(ctx)
	var ae *setup.ApplyError
	var ce *setup.CheckError
	switch {
	case errors.As(err, &ae):
		s.a.errorf("%v", ae.Err)
		s.a.errorf("nothing is changed: the files already written were restored")
		return errSilent
	case errors.As(err, &ce):
		s.a.errorf("the new configuration does not work as intended:")
		for _, p := range ce.Problems {
			fmt.Fprintf(s.a.stderr, "  %s\n", p)
		}
		for _, f := range ce.RestoreFailures {
			s.a.errorf("%s", f)
		}
		if len(ce.RestoreFailures) == 0 {
			s.a.errorf("restored every file as it was (the backups are kept); nothing is changed")
		}
		return errSilent
	case err != nil:
		return err
	}
	s.out("\nChecked: %s.", s.AfterChecks())
	if s.Target == "sshd" {
		s.out(`Next:
  1. Keep this root session open.
  2. From a second terminal, log in with your key and a code; check that root still gets in the way shown above.
Undo: restore the backups named above (and remove %s if it was new), then systemctl reload ssh.`, setup.SSHDDropIn)
		return nil
	}
	s.out(`Next:
  1. Keep this root session open.
  2. From a second terminal: sudo -k; sudo true (asks for your password, then a code).
Undo: restore the backups named above.`)
	return nil
}
