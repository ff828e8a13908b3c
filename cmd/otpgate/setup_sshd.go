package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/otpgate/otpgate/internal/setup"
)

// sshdReloadTimeout bounds the wait for a reloaded sshd to answer with the
// new configuration.
const sshdReloadTimeout = 20 * time.Second

// runningSSHD is the sshd process that listens for connections.
type runningSSHD struct {
	pid  int
	unit string // its systemd service, "" when systemd does not run it
}

// writeSSHD applies the sshd changes in the one order under which the
// running sshd never accepts a login that neither the old nor the new
// configuration accepts: sshd_config first (checked with sshd -t/-T),
// then the running sshd reloaded and asked from outside which methods it
// offers first, and only when neither password nor keyboard-interactive
// is among them, /etc/pam.d/sshd. A failure at any step restores every
// file written and reloads sshd again.
func (s *setupRun) writeSSHD() error {
	var cfgChanges, pamChanges []*setup.Change
	for _, c := range s.changes {
		if filepath.Dir(c.Path) == setup.PAMDir {
			pamChanges = append(pamChanges, c)
		} else {
			cfgChanges = append(cfgChanges, c)
		}
	}
	cfg, err := s.applyFirst(cfgChanges)
	if err != nil {
		return err
	}
	if problems := s.verifySSHD(); len(problems) > 0 {
		return s.undo(problems, nil, cfg)
	}
	proc, err := s.findSSHD()
	if err != nil {
		return s.undo([]string{err.Error()}, nil, cfg)
	}
	if proc != nil {
		how, err := s.reloadSSHD(proc)
		if err != nil {
			return s.undo([]string{err.Error()}, proc, cfg)
		}
		s.out("reloaded sshd (%s)", how)
	}
	confirmed, err := s.confirmSSHD(proc != nil)
	if err != nil {
		return s.undo([]string{err.Error()}, proc, cfg)
	}
	s.out("%s", confirmed)
	pam, err := setup.Apply(pamChanges, s.a.now())
	if err != nil {
		return s.undo([]string{err.Error()}, proc, cfg)
	}
	s.printWritten(pam)
	if problems := s.verifyPAM(); len(problems) > 0 {
		return s.undo(problems, proc, cfg, pam)
	}
	s.out("\nChecked: %s.", s.afterChecks())
	s.out(`Next:
  1. Keep this root session open.
  2. From a second terminal, log in with your key and a code; check that root still gets in the way shown above.
Undo: restore the backups named above (and remove %s if it was new), then systemctl reload ssh.`, setup.SSHDDropIn)
	return nil
}

// applyFirst writes the first changes of a run and names each file
// written; when a write fails, Apply has restored the others and so
// nothing is changed.
func (s *setupRun) applyFirst(changes []*setup.Change) (*setup.Applied, error) {
	applied, err := setup.Apply(changes, s.a.now())
	if err != nil {
		s.a.errorf("%v", err)
		s.a.errorf("nothing is changed: the files already written were restored")
		return nil, errSilent
	}
	s.printWritten(applied)
	return applied, nil
}

// printWritten names each file written and its backup.
func (s *setupRun) printWritten(a *setup.Applied) {
	for _, w := range a.Files {
		if w.Backup != "" {
			s.out("wrote %s (backup: %s)", w.Path, w.Backup)
		} else {
			s.out("wrote %s (new file)", w.Path)
		}
	}
}

// undo reports problems, restores the files written (the newest first)
// and, when sshd runs, reloads it so that it reads the old configuration
// again.
func (s *setupRun) undo(problems []string, proc *runningSSHD, applied ...*setup.Applied) error {
	s.a.errorf("the new configuration does not work as intended:")
	for _, p := range problems {
		fmt.Fprintf(s.a.stderr, "  %s\n", p)
	}
	failed := false
	for i := len(applied) - 1; i >= 0; i-- {
		if err := applied[i].Rollback(); err != nil {
			s.a.errorf("restoring the backups failed: %v", err)
			failed = true
		}
	}
	if proc != nil {
		if _, err := s.reloadSSHD(proc); err != nil {
			s.a.errorf("reloading sshd with the restored files failed: %v; run systemctl reload ssh (or kill -HUP %d)", err, proc.pid)
			failed = true
		}
	}
	if failed {
		return errSilent
	}
	s.a.errorf("restored every file as it was (the backups are kept); nothing is changed")
	return errSilent
}

// findSSHD returns the running sshd named by the PidFile that sshd -T
// reports, or nil when none runs.
func (s *setupRun) findSSHD() (*runningSSHD, error) {
	eff, err := s.sshdT("")
	if err != nil {
		return nil, err
	}
	pidfile := eff.Get("pidfile")
	if pidfile == "" || pidfile == "none" {
		return nil, nil
	}
	data, err := os.ReadFile(pidfile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sshd's PidFile: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return nil, fmt.Errorf("sshd's PidFile %s does not hold a process id (%q): remove it if no sshd runs, or restart sshd", pidfile, strings.TrimSpace(string(data)))
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "sshd" {
		return nil, nil // a stale PidFile: no sshd runs under that id
	}
	p := &runningSSHD{pid: pid}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil {
			unit := filepath.Base(strings.TrimSpace(string(cg)))
			if strings.HasSuffix(unit, ".service") {
				p.unit = unit
			}
		}
	}
	return p, nil
}

// reloadSSHD makes the running sshd read its configuration again:
// systemctl reload where systemd runs it, else SIGHUP.
func (s *setupRun) reloadSSHD(p *runningSSHD) (string, error) {
	if p.unit != "" {
		if out, err := exec.CommandContext(s.ctx, "systemctl", "reload", p.unit).CombinedOutput(); err != nil {
			return "", fmt.Errorf("systemctl reload %s: %v: %s", p.unit, err, strings.TrimSpace(string(out)))
		}
		return "systemctl reload " + p.unit, nil
	}
	if err := syscall.Kill(p.pid, syscall.SIGHUP); err != nil {
		return "", fmt.Errorf("reload sshd: kill -HUP %d: %w", p.pid, err)
	}
	return fmt.Sprintf("kill -HUP %d", p.pid), nil
}

// probeUsers are the users the check from outside logs in as: the
// administrator and every user the plan has its own values for.
func (s *setupRun) probeUsers() []string {
	users := []string{s.admin}
	for _, w := range s.sshdPlan.Wants {
		if w.User != "" && w.User != s.admin {
			users = append(users, w.User)
		}
	}
	return users
}

// confirmSSHD asks sshd on each address it listens on (sshd -T) which
// methods it offers first, until none offers password or
// keyboard-interactive on its own and, when an sshd runs, one answered.
// It returns what it found, in a sentence.
func (s *setupRun) confirmSSHD(running bool) (string, error) {
	eff, err := s.sshdT("")
	if err != nil {
		return "", err
	}
	var addrs []string
	for _, l := range eff["listenaddress"] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		a, err := setup.ProbeAddr(f[0])
		if err != nil {
			return "", err
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return "", errors.New("sshd -T names no listenaddress to check")
	}
	deadline := time.Now().Add(sshdReloadTimeout)
	for {
		var bad, good, unanswered []string
		for _, addr := range addrs {
			for _, u := range s.probeUsers() {
				ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
				offered, err := setup.OfferedMethods(ctx, addr, u, 5*time.Second)
				cancel()
				switch {
				case err != nil:
					unanswered = append(unanswered, fmt.Sprintf("%s (%v)", addr, err))
				case len(setup.FirstFactorAlone(offered)) > 0:
					bad = append(bad, fmt.Sprintf("on %s sshd offers %s to %s", addr, strings.Join(offered, ","), u))
				default:
					good = append(good, fmt.Sprintf("%s offers %s to %s", addr, strings.Join(offered, ","), u))
				}
			}
		}
		switch {
		case len(bad) == 0 && len(good) > 0:
			return "checked from outside: " + strings.Join(good, "; ") + " (no password, no keyboard-interactive without a key)", nil
		case len(bad) == 0 && !running:
			return "no sshd is running (nothing answers on " + strings.Join(addrs, ", ") + "): it reads both files when it starts", nil
		case len(bad) > 0 && !running:
			return "", fmt.Errorf("%s, but no sshd runs under the PidFile that sshd -T names, so setup cannot reload it: reload that sshd (systemctl reload ssh), then run otpgate setup sshd again", strings.Join(bad, "; "))
		case time.Now().After(deadline):
			if len(bad) > 0 {
				return "", fmt.Errorf("after the reload, %s: it still lets a password or keyboard-interactive log in without a key, and the new PAM stack must not be written under it", strings.Join(bad, "; "))
			}
			return "", fmt.Errorf("sshd does not answer after the reload: %s", strings.Join(unanswered, "; "))
		}
		select {
		case <-s.ctx.Done():
			return "", s.ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
