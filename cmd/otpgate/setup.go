package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/otpgate/otpgate/internal/accounts"
	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/doctor"
	"github.com/otpgate/otpgate/internal/pamstack"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/setup"
)

// setupCmdTimeout bounds each sshd run and each request to otpgated.
const setupCmdTimeout = 20 * time.Second

// setupRun is one `otpgate setup sshd|sudo`.
type setupRun struct {
	a      *app
	ctx    context.Context
	target string // "sshd" or "sudo"
	apply  bool
	force  bool
	cfg    *config.Config
	client *protocol.Client
	pamDir string
	admin  string // who runs it: $SUDO_USER under sudo, else the real uid's account

	sshd     string // sshd's path
	sshdPlan *setup.SSHDPlan
	changes  []*setup.Change
	notes    []string
}

// guardFailure is a check before writing that failed.
type guardFailure struct {
	problem, fix string
}

// cmdSetup prints, or with --apply writes, the sshd_config and /etc/pam.d
// changes that make sshd or sudo ask for a code (docs/pam.md).
func (a *app) cmdSetup(ctx context.Context, args []string) error {
	fs := newFlagSet("setup")
	apply := fs.Bool("apply", false, "write the changes (root only)")
	force := fs.Bool("force", false, "DANGEROUS: apply although the administrator is not enrolled and has no console way back in")
	cfgPath := fs.String("config", "", "otpgated's configuration, for its socket (default "+config.DefaultPath+")")
	pamDir := fs.String("pam-dir", "", "the PAM module directory (default: where pam_unix.so is)")
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
	s := &setupRun{a: a, ctx: ctx, target: pos[0], apply: *apply, force: *force, pamDir: *pamDir}
	if s.pamDir == "" {
		s.pamDir = doctor.FindPAMDir()
	}
	if s.cfg, err = loadSetupConfig(*cfgPath); err != nil {
		return err
	}
	sock := a.socketFlag
	if sock == "" {
		sock = a.getenv("OTPGATE_SOCKET")
	}
	if sock == "" {
		sock = s.cfg.Daemon.Socket
	}
	s.client = &protocol.Client{Socket: sock, Timeout: setupCmdTimeout}
	if s.admin, err = s.invokingAdmin(); err != nil {
		return err
	}
	return s.run()
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
func (s *setupRun) invokingAdmin() (string, error) {
	if u := s.a.getenv("SUDO_USER"); u != "" && s.a.uid == 0 {
		return u, nil
	}
	u, err := s.a.self()
	if err != nil {
		return "", err
	}
	return u.Username, nil
}

func (s *setupRun) out(format string, args ...any) {
	fmt.Fprintf(s.a.stdout, format+"\n", args...)
}

func (s *setupRun) run() error {
	var err error
	if s.target == "sshd" {
		err = s.planSSHD()
	} else {
		err = s.planSudo()
	}
	if err != nil && s.apply {
		s.a.errorf("%s", clean(err.Error()))
		s.a.errorf("refusing to apply: nothing was changed")
		return errSilent
	}
	if err != nil {
		return err
	}
	for _, n := range s.notes {
		s.out("%s", n)
	}
	if len(s.changes) == 0 {
		s.out("%s is already configured: nothing to change.", s.target)
		return nil
	}
	for _, c := range s.changes {
		s.out("\n%s", strings.TrimRight(c.Diff(), "\n"))
	}
	s.out("")
	failures := s.guards()
	if !s.apply {
		s.out("\nAfter writing, --apply checks %s, and restores the backups if a check fails.", s.afterChecks())
		if len(failures) > 0 {
			s.out("--apply would refuse now (see above). Nothing was changed.")
		} else {
			s.out("Nothing was changed. Run 'otpgate setup %s --apply' as root to write it, with a backup of each file.", s.target)
		}
		return nil
	}
	if len(failures) > 0 {
		if !s.onlyEnrollment(failures) || !s.force {
			s.a.errorf("refusing to apply: nothing was changed")
			return errSilent
		}
		s.out("--force: going ahead although the administrator check failed.")
	}
	return s.write()
}

// planSSHD plans sshd_config and sshd's PAM service.
func (s *setupRun) planSSHD() error {
	s.sshd = doctor.LookPath("sshd")
	if s.sshd == "" {
		return errors.New("sshd is not installed: apt-get install openssh-server, then run otpgate setup sshd again")
	}
	service, prr := "sshd", ""
	if s.a.uid == 0 {
		if out, err := s.runSSHD("-t"); err != nil {
			return fmt.Errorf("sshd -t fails before any change: %s\nfix: correct what it names first (a missing /run/sshd: mkdir -p -m 0755 /run/sshd), then run otpgate setup sshd again", out)
		}
		global, err := s.sshdT("")
		if err != nil {
			return err
		}
		service = global.PAMService()
		root, err := s.sshdT("root")
		if err != nil {
			return err
		}
		prr = root.Get("permitrootlogin")
	} else {
		s.notes = append(s.notes, "Not root: sshd -t and sshd -T were not run; PermitRootLogin is read from the files.")
	}
	var users []string
	if s.admin != "root" {
		users = append(users, s.admin)
	}
	p, err := setup.PlanSSHD(liveFiles(), setup.SSHDOptions{PermitRootLogin: prr, Users: users})
	if err != nil {
		return err
	}
	s.sshdPlan = p
	if p.Change != nil {
		s.changes = append(s.changes, p.Change)
		if p.DropIn {
			s.notes = append(s.notes, fmt.Sprintf("%s includes %s first, and sshd uses the first value it reads: the settings go into %s.",
				setup.SSHDConfig, filepath.Dir(setup.SSHDDropIn)+"/*.conf", setup.SSHDDropIn))
		} else {
			s.notes = append(s.notes, fmt.Sprintf("%s does not include %s first: the settings go at its top, where they are read first.",
				setup.SSHDConfig, setup.SSHDDropIn))
		}
	}
	s.notes = append(s.notes, "root: "+p.Root+".")
	data, err := os.ReadFile(filepath.Join(setup.PAMDir, service))
	if err != nil {
		return fmt.Errorf("read the PAM service of sshd: %w\nfix: restore /etc/pam.d/%s (apt-get install --reinstall openssh-server)", err, service)
	}
	c, err := setup.PlanSSHDPAM(service, data, pamRead)
	if err != nil {
		return err
	}
	if c != nil {
		s.changes = append(s.changes, c)
	}
	return nil
}

// planSudo plans /etc/pam.d/sudo and, when present, sudo-i.
func (s *setupRun) planSudo() error {
	for _, svc := range []string{"sudo", "sudo-i"} {
		data, err := os.ReadFile(filepath.Join(setup.PAMDir, svc))
		if errors.Is(err, fs.ErrNotExist) && svc == "sudo-i" {
			continue
		}
		if err != nil {
			return fmt.Errorf("read the PAM service of sudo: %w\nfix: install sudo (apt-get install sudo), then run otpgate setup sudo again", err)
		}
		c, err := setup.PlanSudoPAM(svc, data, pamRead)
		if err != nil {
			return err
		}
		if c != nil {
			s.changes = append(s.changes, c)
		}
	}
	s.notes = append(s.notes, "sudo asks for the password, then the code; while sudo's timestamp is valid (timestamp_timeout) it asks for neither.")
	return nil
}

// guards runs the checks before writing and prints each result.
func (s *setupRun) guards() []guardFailure {
	s.out("Checks before writing (--apply refuses if one fails):")
	var failed []guardFailure
	report := func(ok bool, what string, f *guardFailure) {
		if ok {
			s.out("  ok    %s", what)
			return
		}
		s.out("  FAIL  %s\n        fix: %s", f.problem, f.fix)
		failed = append(failed, *f)
	}

	ctx, cancel := context.WithTimeout(s.ctx, setupCmdTimeout)
	defer cancel()
	_, err := s.client.Do(ctx, &protocol.Request{Op: protocol.OpPing, Service: "otpgate-setup"})
	report(err == nil, "otpgated answers on "+s.client.Socket, &guardFailure{
		problem: fmt.Sprintf("otpgated does not answer on %s (%v): with pam_otpgate in place every login that needs a code would be refused", s.client.Socket, err),
		fix:     "systemctl start otpgated (journalctl -u otpgated says why it stopped); if it listens elsewhere, give --config or --socket"})
	daemonUp := err == nil

	loader := filepath.Join(s.pamDir, pamstack.ModuleName)
	var trust []doctor.Finding
	trust = append(trust, doctor.CheckTrusted("pam-loader", "the PAM module", doctor.TrustChain(loader))...)
	trust = append(trust, doctor.CheckTrusted("pam-golib", "the Go library of the PAM module", doctor.TrustChain(doctor.DefaultGoLib))...)
	if len(trust) == 0 {
		report(true, fmt.Sprintf("the PAM module %s and its Go library %s are installed, root's and not writable by others", loader, doctor.DefaultGoLib), nil)
	}
	for _, f := range trust {
		report(false, "", &guardFailure{problem: f.Problem + ": " + f.Why, fix: f.Fix})
	}

	if !daemonUp {
		report(false, "", &guardFailure{problem: "whether " + s.admin + " is enrolled cannot be asked while otpgated is down", fix: "start otpgated first"})
		return failed
	}
	ok, what, f := s.adminGuard()
	report(ok, what, f)
	return failed
}

// adminGuard is the lock-yourself-out check: the administrator running
// setup must have an active enrollment, or (when the policy does not
// require a code from them) a console that does not depend on otpgated,
// with a usable root password.
func (s *setupRun) adminGuard() (bool, string, *guardFailure) {
	status := map[string]protocol.UserStatus{}
	users, groups := doctor.ReadAccounts()
	admins := doctor.Admins(users, groups)
	if !slices.Contains(admins, s.admin) {
		admins = append(admins, s.admin)
	}
	for _, u := range admins {
		ctx, cancel := context.WithTimeout(s.ctx, setupCmdTimeout)
		resp, err := s.client.Do(ctx, &protocol.Request{Op: protocol.OpAdminShow, User: u, Service: "otpgate-setup"})
		cancel()
		var pe *protocol.Error
		switch {
		case err == nil && resp.Status != nil:
			status[u] = *resp.Status
		case errors.As(err, &pe) && pe.Code == protocol.ErrNotFound:
		case err != nil && u == s.admin:
			return false, "", &guardFailure{problem: fmt.Sprintf("otpgated did not say whether %s is enrolled: %v", u, err), fix: "run it as root; check journalctl -u otpgated"}
		}
	}
	for _, f := range doctor.CheckAdmins(admins, status) {
		if f.ID != "admin-none-enrolled" {
			s.out("  note  %s: %s", f.Problem, f.Fix)
		}
	}
	st := status[s.admin]
	if st.State == protocol.StateActive {
		return true, s.admin + " (who runs this) is enrolled and can log in with a code", nil
	}
	enroll := fmt.Sprintf("enroll first ('otpgate enroll' as %s, or 'otpgate admin enroll %s'), test a code with 'otpgate status', then run this again", s.admin, s.admin)
	if st.Required && !st.Exempt {
		return false, "", &guardFailure{
			problem: fmt.Sprintf("%s (who runs this) is not enrolled, and otpgated's policy requires a code from %s: after this change %s is refused by %s", s.admin, s.admin, s.admin, s.target),
			fix:     enroll}
	}
	entries, _, err := doctor.LoadService("login", pamRead)
	switch {
	case err != nil:
		return false, "", &guardFailure{
			problem: fmt.Sprintf("%s (who runs this) is not enrolled, and the console has no PAM service (/etc/pam.d/login: %v)", s.admin, err),
			fix:     enroll}
	case len(doctor.CheckConsole(entries)) > 0:
		return false, "", &guardFailure{
			problem: fmt.Sprintf("%s (who runs this) is not enrolled, and the console login (/etc/pam.d/login) also uses pam_otpgate: if this goes wrong there is no way back in", s.admin),
			fix:     enroll + "; and keep pam_otpgate out of /etc/pam.d/login (docs/pam.md, 'When otpgated is down')"}
	}
	if ok, why := rootConsoleUsable(); !ok {
		return false, "", &guardFailure{
			problem: fmt.Sprintf("%s (who runs this) is not enrolled, and root cannot log in on the console (%s): if this goes wrong there is no way back in", s.admin, why),
			fix:     enroll + "; or give root a password for the console first (passwd root)"}
	}
	return true, fmt.Sprintf("%s (who runs this) is not enrolled (no code is asked until they enroll), but the console does not use otpgated and root has a password for it", s.admin), nil
}

// rootConsoleUsable reports whether root has a password the console login
// accepts (not locked with ! or *), from root's shadow entry (NSS).
func rootConsoleUsable() (bool, string) {
	sh, err := accounts.LookupShadow("root")
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		return false, "root has no shadow entry"
	case err != nil:
		return false, "root's shadow entry cannot be read: " + err.Error()
	case sh.Locked:
		return false, "its password is locked in the shadow database"
	}
	return true, ""
}

// onlyEnrollment reports whether the failures are the administrator
// check only (the one --force overrides).
func (s *setupRun) onlyEnrollment(failures []guardFailure) bool {
	for _, f := range failures {
		if !strings.Contains(f.problem, "(who runs this)") {
			return false
		}
	}
	return true
}

// afterChecks describes the checks after writing.
func (s *setupRun) afterChecks() string {
	var c []string
	if s.target == "sshd" {
		c = append(c, "sshd -t", "sshd -T (UsePAM, KbdInteractiveAuthentication, PasswordAuthentication, AuthenticationMethods)", "sshd -T -C user=root,host=localhost,addr=127.0.0.1")
		if s.admin != "root" {
			c = append(c, "sshd -T -C user="+s.admin+",...")
		}
	}
	if s.target == "sshd" {
		c = append(c, "then (before any PAM file) the running sshd reloaded and asked on each address sshd -T names which methods it offers first (neither password nor keyboard-interactive may log in without a key)")
	}
	c = append(c, "that otpgate doctor finds no problem in the PAM services written")
	return strings.Join(c, ", ")
}

// write applies the changes, checks the result and restores the backups
// when a check fails.
func (s *setupRun) write() error {
	if s.target == "sshd" {
		return s.writeSSHD()
	}
	applied, err := s.applyFirst(s.changes)
	if err != nil {
		return err
	}
	if problems := s.verifyPAM(); len(problems) > 0 {
		return s.undo(problems, nil, applied)
	}
	s.out("\nChecked: %s.", s.afterChecks())
	s.out(`Next:
  1. Keep this root session open.
  2. From a second terminal: sudo -k; sudo true (asks for your password, then a code).
Undo: restore the backups named above.`)
	return nil
}

// verifySSHD runs the checks of sshd_config after writing and returns
// what is wrong, with the file and line that wins where it can tell.
func (s *setupRun) verifySSHD() []string {
	var problems []string
	if out, err := s.runSSHD("-t"); err != nil {
		return []string{"sshd -t: " + out}
	}
	dirs, _ := setup.ParseSSHDConfig(setup.SSHDConfig, liveFiles())
	for _, w := range s.sshdPlan.Wants {
		eff, err := s.sshdT(w.User)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		label := "sshd -T"
		if w.User != "" {
			label = "sshd -T -C user=" + w.User
		}
		for _, p := range setup.CheckSSHDT(w, eff.Get) {
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
func (s *setupRun) verifyPAM() []string {
	var problems []string
	for _, c := range s.changes {
		if filepath.Dir(c.Path) != setup.PAMDir {
			continue
		}
		svc := filepath.Base(c.Path)
		want := setup.SudoPAMWant(svc)
		if s.target == "sshd" {
			want = setup.SSHDPAMWant(svc)
		}
		entries, fds, err := doctor.LoadService(svc, pamRead)
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
func winner(dirs []setup.Directive, problem, user string) string {
	kw, _, _ := strings.Cut(problem, " ")
	d, ok, maybe := setup.Effective(dirs, kw, user)
	s := ""
	if ok {
		s = "; set by " + d.String()
	}
	for _, m := range maybe {
		s += "; perhaps overridden by " + m.String()
	}
	return s
}

// runSSHD runs sshd with args and returns its combined output.
func (s *setupRun) runSSHD(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, setupCmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.sshd, args...).CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err != nil && msg == "" {
		msg = err.Error()
	}
	return msg, err
}

// sshdT runs sshd -T, for user's connection when user is not "".
func (s *setupRun) sshdT(user string) (doctor.SSHDConfig, error) {
	var args []string
	if user != "" {
		args = []string{"-C", "user=" + user + ",host=localhost,addr=127.0.0.1"}
	}
	c, err := doctor.SSHDT(s.ctx, setupCmdTimeout, s.sshd, args...)
	if err != nil {
		return nil, fmt.Errorf("sshd -T %s: %w", strings.Join(args, " "), err)
	}
	return c, nil
}

// liveFiles reads the live system.
func liveFiles() setup.Files {
	return setup.Files{Read: os.ReadFile, Glob: filepath.Glob}
}

// pamRead reads a PAM service file by name.
func pamRead(name string) ([]byte, error) {
	if !filepath.IsAbs(name) {
		name = filepath.Join(setup.PAMDir, name)
	}
	return os.ReadFile(name)
}
