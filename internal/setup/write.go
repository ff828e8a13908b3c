package setup

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/otpgate/otpgate/internal/doctor"
	"github.com/otpgate/otpgate/internal/pamstack"
)

// ApplyError is a write that failed before any check: [Apply] has
// restored the files already written, so nothing is changed.
type ApplyError struct {
	Err error
}

func (e *ApplyError) Error() string { return e.Err.Error() }

// Unwrap returns the write's error.
func (e *ApplyError) Unwrap() error { return e.Err }

// CheckError is a check after writing that failed. Every file written was
// restored from its backup (and a running sshd reloaded), unless
// RestoreFailures says what could not be.
type CheckError struct {
	// Problems are what the checks found, one sentence each.
	Problems []string
	// RestoreFailures are the steps of the restore that failed, each with
	// what to do; empty when everything is as it was.
	RestoreFailures []string
}

func (e *CheckError) Error() string {
	s := "the new configuration does not work as intended: " + strings.Join(e.Problems, "; ")
	if len(e.RestoreFailures) > 0 {
		s += "; " + strings.Join(e.RestoreFailures, "; ")
	}
	return s
}

// Write applies the changes that Plan decided, with a backup of each
// file, checks the result and restores every file when a check fails. It
// returns an *ApplyError or a *CheckError, or another error from the
// checks themselves.
func (s *Session) Write(ctx context.Context) error {
	if s.Target == "sshd" {
		return s.writeSSHD(ctx)
	}
	applied, err := s.applyFirst(s.Changes)
	if err != nil {
		return err
	}
	if problems := s.verifyPAM(); len(problems) > 0 {
		return s.undo(ctx, problems, nil, applied)
	}
	return nil
}

// writeSSHD applies the sshd changes in the one order under which the
// running sshd never accepts a login that neither the old nor the new
// configuration accepts: sshd_config first (checked with sshd -t/-T),
// then the running sshd reloaded and asked from outside which methods it
// offers first, and only when neither password nor keyboard-interactive
// is among them, /etc/pam.d/sshd. A failure at any step restores every
// file written and reloads sshd again.
func (s *Session) writeSSHD(ctx context.Context) error {
	var cfgChanges, pamChanges []*Change
	for _, c := range s.Changes {
		if filepath.Dir(c.Path) == PAMDir {
			pamChanges = append(pamChanges, c)
		} else {
			cfgChanges = append(cfgChanges, c)
		}
	}
	cfg, err := s.applyFirst(cfgChanges)
	if err != nil {
		return err
	}
	if problems := s.verifySSHD(ctx); len(problems) > 0 {
		return s.undo(ctx, problems, nil, cfg)
	}
	proc, err := s.sshd.Running(ctx)
	if err != nil {
		return s.undo(ctx, []string{err.Error()}, nil, cfg)
	}
	if proc != nil {
		how, err := proc.Reload(ctx)
		if err != nil {
			return s.undo(ctx, []string{err.Error()}, proc, cfg)
		}
		s.log("reloaded sshd (%s)", how)
	}
	confirmed, err := s.sshd.Confirm(ctx, proc != nil, s.probeUsers())
	if err != nil {
		return s.undo(ctx, []string{err.Error()}, proc, cfg)
	}
	s.log("%s", confirmed)
	pam, err := Apply(pamChanges, s.now())
	if err != nil {
		return s.undo(ctx, []string{err.Error()}, proc, cfg)
	}
	s.logWritten(pam)
	if problems := s.verifyPAM(); len(problems) > 0 {
		return s.undo(ctx, problems, proc, cfg, pam)
	}
	return nil
}

// applyFirst writes the first changes of a run and names each file
// written; when a write fails, Apply has restored the others and so
// nothing is changed.
func (s *Session) applyFirst(changes []*Change) (*Applied, error) {
	applied, err := Apply(changes, s.now())
	if err != nil {
		return nil, &ApplyError{Err: err}
	}
	s.logWritten(applied)
	return applied, nil
}

// logWritten names each file written and its backup.
func (s *Session) logWritten(a *Applied) {
	for _, w := range a.Files {
		if w.Backup != "" {
			s.log("wrote %s (backup: %s)", w.Path, w.Backup)
		} else {
			s.log("wrote %s (new file)", w.Path)
		}
	}
}

// undo restores the files written (the newest first) and, when sshd
// runs, reloads it so that it reads the old configuration again. It
// returns the *CheckError for problems.
func (s *Session) undo(ctx context.Context, problems []string, proc *RunningSSHD, applied ...*Applied) error {
	e := &CheckError{Problems: problems}
	for i := len(applied) - 1; i >= 0; i-- {
		if err := applied[i].Rollback(); err != nil {
			e.RestoreFailures = append(e.RestoreFailures, fmt.Sprintf("restoring the backups failed: %v", err))
		}
	}
	if proc != nil {
		if _, err := proc.Reload(ctx); err != nil {
			e.RestoreFailures = append(e.RestoreFailures,
				fmt.Sprintf("reloading sshd with the restored files failed: %v; run systemctl reload ssh (or kill -HUP %d)", err, proc.PID))
		}
	}
	return e
}

// probeUsers are the users the check from outside logs in as: the
// administrator and every user the plan has its own values for.
func (s *Session) probeUsers() []string {
	users := []string{s.Admin}
	for _, w := range s.sshdPlan.Wants {
		if w.User != "" && w.User != s.Admin {
			users = append(users, w.User)
		}
	}
	return users
}

// verifySSHD runs the checks of sshd_config after writing and returns
// what is wrong, with the file and line that wins where it can tell.
func (s *Session) verifySSHD(ctx context.Context) []string {
	var problems []string
	if out, err := s.sshd.Test(ctx); err != nil {
		return []string{"sshd -t: " + out}
	}
	dirs, _ := ParseSSHDConfig(SSHDConfig, liveFiles())
	for _, w := range s.sshdPlan.Wants {
		eff, err := s.sshd.Effective(ctx, w.User)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		label := "sshd -T"
		if w.User != "" {
			label = "sshd -T -C user=" + w.User
		}
		for _, p := range CheckSSHDT(w, eff.Get) {
			problems = append(problems, fmt.Sprintf("%s: %s%s", label, p, winner(dirs, p, w.User)))
		}
		for _, f := range doctor.CheckSSHD(eff, w.User, label) {
			if f.Severity != doctor.Info {
				problems = append(problems, fmt.Sprintf("%s: %s (fix: %s)", label, f.Problem, f.Fix))
			}
		}
	}
	return problems
}

// verifyPAM runs doctor's checks of the PAM services written and returns
// what is wrong.
func (s *Session) verifyPAM() []string {
	var problems []string
	for _, c := range s.Changes {
		if filepath.Dir(c.Path) != PAMDir {
			continue
		}
		svc := filepath.Base(c.Path)
		want := SudoPAMWant(svc)
		if s.Target == "sshd" {
			want = SSHDPAMWant(svc)
		}
		entries, fds, err := doctor.LoadService(svc, pamstack.ReadSystem)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for _, f := range append(fds, doctor.CheckPAMService(want, entries)...) {
			if f.Severity != doctor.Info {
				problems = append(problems, fmt.Sprintf("%s: %s (fix: %s)", f.Where, f.Problem, f.Fix))
			}
		}
	}
	return problems
}

// winner names the line that sets the keyword of a CheckSSHDT problem.
func winner(dirs []Directive, problem, user string) string {
	kw, _, _ := strings.Cut(problem, " ")
	d, ok, maybe := Effective(dirs, kw, user)
	s := ""
	if ok {
		s = "; set by " + d.String()
	}
	for _, m := range maybe {
		s += "; perhaps overridden by " + m.String()
	}
	return s
}
