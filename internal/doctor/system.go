package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/accounts"
	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/pamstack"
	"github.com/otpgate/otpgate/internal/protocol"
	"golang.org/x/sys/unix"
)

// Options say where to look. The zero value inspects the live system at
// its default paths.
type Options struct {
	// ConfigPath is otpgated's configuration; "" means config.DefaultPath,
	// where (as for otpgated) a missing file means the built-in defaults.
	ConfigPath string
	// Socket overrides daemon.socket from the configuration.
	Socket string
	// PAMDir is the directory PAM loads modules from; "" finds it.
	PAMDir string
	// Timeout bounds each command and each request to otpgated; zero
	// means 10 s.
	Timeout time.Duration
}

// maxUsersChecked bounds the per-user requests and sshd -T -C runs.
const maxUsersChecked = 200

// maxMatchUsers bounds the `sshd -T -C` runs for Match blocks.
const maxMatchUsers = 20

// Run inspects the system and returns the report. It needs root for most
// checks (the state directory, sshd -T, admin requests to otpgated).
func Run(ctx context.Context, o Options) *Report {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	r := &Report{}
	cfg := checkConfig(r, o.ConfigPath)
	sock := cfg.Daemon.Socket
	if o.Socket != "" {
		sock = o.Socket
	}
	checkSocket(r, sock)
	client := &protocol.Client{Socket: sock, Timeout: o.Timeout}
	up := checkDaemon(ctx, r, client)
	r.check("state-dir")
	if _, err := os.Lstat(cfg.Daemon.StateDir); errors.Is(err, fs.ErrNotExist) {
		r.add(Finding{ID: "state-dir-absent", Severity: Info, Where: cfg.Daemon.StateDir,
			Problem: "the state directory does not exist yet",
			Why:     "otpgated creates it (root, 0700) when it first starts; until then nobody is enrolled.",
			Fix:     "none needed: systemctl start otpgated"})
	} else if err := store.CheckStateDir(cfg.Daemon.StateDir); err != nil {
		r.add(Finding{ID: "state-dir", Severity: Error, Where: cfg.Daemon.StateDir,
			Problem: strings.TrimPrefix(err.Error(), "store: "),
			Why:     "otpgated refuses to start with a state directory others could read or change (it holds the encrypted secrets and their key).",
			Fix:     fmt.Sprintf("mkdir -p %[1]s && chown root:root %[1]s && chmod 0700 %[1]s (and chmod 0600 the files in it)", cfg.Daemon.StateDir)})
	}

	read := pamstack.ReadSystem
	var otpLines []pamstack.Entry

	// sshd: its effective configuration first, for the PAM service name.
	sshdSvc, keyFirst := "sshd", true
	if sshd := LookPath("sshd"); sshd == "" {
		r.add(notInstalled("sshd", "openssh-server"))
	} else {
		r.check("sshd")
		global, err := SSHDT(ctx, o.Timeout, sshd)
		if err != nil && strings.Contains(err.Error(), `Disabled method "keyboard-interactive"`) {
			r.add(Finding{ID: "sshd-kbdinteractive", Severity: Error, Where: "sshd -T",
				Problem: "sshd refuses its configuration: " + err.Error(),
				Why:     "AuthenticationMethods requires keyboard-interactive but KbdInteractiveAuthentication (or ChallengeResponseAuthentication, perhaps in a drop-in read first) is no: sshd does not start or reload, and the code prompt could never be shown.",
				Fix:     "set 'KbdInteractiveAuthentication yes' in /etc/ssh/sshd_config and remove any 'KbdInteractiveAuthentication no' or 'ChallengeResponseAuthentication no' in /etc/ssh/sshd_config.d/*.conf (the first value wins), then 'sshd -t && systemctl reload ssh'."})
		} else if err != nil {
			r.add(Finding{ID: "sshd-t-failed", Severity: Error, Where: "sshd -T",
				Problem: "sshd -T failed: " + err.Error(),
				Why:     "sshd refuses to start (or reload) with a configuration it cannot parse, and its effective settings could not be checked.",
				Fix:     "run 'sshd -t' and fix what it reports (a missing /run/sshd: 'mkdir -p -m 0755 /run/sshd')."})
		} else {
			sshdSvc, keyFirst = global.PAMService(), global.KeyBeforeCode()
			seen := map[string]bool{}
			for _, f := range CheckSSHD(global, "", "sshd -T") {
				seen[f.ID+f.Problem] = true
				r.add(f)
			}
			users := append([]string{"root"}, usersOfInterest(cfg)...)
			if len(users) > maxMatchUsers {
				users = users[:maxMatchUsers]
			}
			for _, u := range users {
				uc, err := SSHDT(ctx, o.Timeout, sshd, "-C", "user="+u+",host=localhost,addr=127.0.0.1")
				if err != nil || (u != "root" && uc.SameAs(global)) {
					continue
				}
				for _, f := range CheckSSHD(uc, u, "sshd -T -C user="+u) {
					if !seen[f.ID+f.Problem] { // already said for everyone
						r.add(f)
					}
				}
			}
		}
		r.check("pam:" + sshdSvc)
		otpLines = append(otpLines, checkService(r, read, PAMWant{Service: sshdSvc, MissingSeverity: Error, PasswordFirst: !keyFirst, Setup: SetupSSHD})...)
	}

	// sudo.
	if sudo := LookPath("sudo"); sudo == "" {
		r.add(notInstalled("sudo", "sudo"))
	} else {
		r.check("pam:sudo")
		lines := checkService(r, read, PAMWant{Service: "sudo", MissingSeverity: Warning, PasswordFirst: true, Setup: SetupSudo})
		otpLines = append(otpLines, lines...)
		if len(lines) > 0 {
			if _, err := os.Stat("/etc/pam.d/sudo-i"); err == nil {
				r.check("pam:sudo-i")
				otpLines = append(otpLines, checkService(r, read, PAMWant{Service: "sudo-i", MissingSeverity: Warning, PasswordFirst: true, Setup: SetupSudo})...)
			}
		}
		r.check("sudo")
		out, err := run(ctx, o.Timeout, sudo, "-V")
		if minutes, ok := ParseSudoTimeout(out); err == nil && ok {
			r.add(CheckSudoTimeout(minutes, len(lines) > 0)...)
		}
	}

	// The console.
	r.check("pam:login")
	if entries, fds, err := LoadService("login", read); err == nil {
		r.add(fds...)
		r.add(CheckConsole(entries)...)
	}

	checkModuleFiles(r, o.PAMDir, otpLines)
	if up {
		checkAccounts(ctx, r, client, cfg)
	}
	r.check("clock")
	var tx unix.Timex
	if _, err := unix.Adjtimex(&tx); err == nil {
		r.add(CheckClock(Clock{Status: tx.Status, MaxError: time.Duration(tx.Maxerror) * time.Microsecond})...)
	}
	r.sort()
	return r
}

// notInstalled is the note for a program that is not there.
func notInstalled(prog, pkg string) Finding {
	return Finding{ID: prog + "-not-installed", Severity: Info, Where: prog,
		Problem: prog + " is not installed; its checks were not run",
		Why:     "nothing to check.",
		Fix:     fmt.Sprintf("none needed (apt-get install %s to use pam_otpgate with %s).", pkg, prog)}
}

// checkConfig loads the configuration, as otpgated does, and reports a
// broken file; it returns the configuration to use for the other checks.
func checkConfig(r *Report, path string) *config.Config {
	r.check("config")
	shown := path
	var cfg *config.Config
	var err error
	if path == "" {
		shown = config.DefaultPath
		cfg, err = config.LoadOrDefault(config.DefaultPath, false)
	} else {
		cfg, err = config.Load(path)
	}
	if err != nil {
		r.add(Finding{ID: "config-invalid", Severity: Error, Where: shown,
			Problem: "the configuration does not load:\n" + err.Error(),
			Why:     "otpgated refuses to start with it (and a SIGHUP reload keeps the old one), so what the file says is not what runs; the other checks use the built-in defaults.",
			Fix:     "correct the lines named above (every key is documented in config.example.toml and otpgate.toml(5)), then 'systemctl reload otpgated'."})
		d := config.Default()
		return &d
	}
	return cfg
}

// checkSocket checks the socket file and its directory.
func checkSocket(r *Report, sock string) {
	r.check("socket")
	dir := filepath.Dir(sock)
	if fi, err := os.Lstat(dir); err == nil {
		if uid := ownerOf(fi); uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			r.add(Finding{ID: "socket-dir", Severity: Error, Where: dir,
				Problem: fmt.Sprintf("the socket directory is owned by uid %d with mode %04o", uid, fi.Mode().Perm()),
				Why:     "whoever can write it can replace otpgated's socket with their own and see every code typed (clients refuse a socket not served by root, so logins fail instead).",
				Fix:     fmt.Sprintf("chown root:root %[1]s && chmod 0755 %[1]s", dir)})
			return
		}
	}
	fi, err := os.Lstat(sock)
	if err != nil {
		return // checkDaemon says the daemon is not reachable
	}
	switch {
	case fi.Mode()&fs.ModeSocket == 0:
		r.add(Finding{ID: "socket-not-socket", Severity: Error, Where: sock,
			Problem: fmt.Sprintf("%s is not a socket (mode %s)", sock, fi.Mode()),
			Why:     "otpgated cannot listen there and refuses to start.",
			Fix:     fmt.Sprintf("rm %s && systemctl restart otpgated", sock)})
	case ownerOf(fi) != 0:
		r.add(Finding{ID: "socket-owner", Severity: Error, Where: sock,
			Problem: fmt.Sprintf("the socket is owned by uid %d, not root", ownerOf(fi)),
			Why:     "otpgated creates its socket as root; another owner means someone else made it, and clients refuse it.",
			Fix:     fmt.Sprintf("rm %s && systemctl restart otpgated", sock)})
	case fi.Mode().Perm() != 0o666:
		r.add(Finding{ID: "socket-mode", Severity: Warning, Where: sock,
			Problem: fmt.Sprintf("the socket has mode %04o, not 0666", fi.Mode().Perm()),
			Why:     "otpgated decides per request from the caller's uid; a narrower mode stops users from running 'otpgate enroll' and 'otpgate status', and PAM applications running as the user (screen lockers).",
			Fix:     fmt.Sprintf("chmod 0666 %s (otpgated sets it at start: 'systemctl restart otpgated')", sock)})
	}
}

// checkDaemon pings otpgated and reports whether it answered.
func checkDaemon(ctx context.Context, r *Report, c *protocol.Client) bool {
	r.check("daemon")
	_, err := c.Do(ctx, &protocol.Request{Op: protocol.OpPing})
	if err == nil {
		return true
	}
	r.add(Finding{ID: "daemon-down", Severity: Error, Where: c.Socket,
		Problem: "otpgated does not answer: " + err.Error(),
		Why:     "with fail=closed (the default) every login and sudo that needs a code is refused; the admin and enrollment checks below were not run.",
		Fix:     "systemctl start otpgated (journalctl -u otpgated says why it stopped)"})
	return false
}

// checkService loads and checks one PAM service, and returns its
// pam_otpgate lines (for the module file checks).
func checkService(r *Report, read pamstack.ReadFunc, want PAMWant) []pamstack.Entry {
	entries, fds, err := LoadService(want.Service, read)
	if err != nil {
		r.add(Finding{ID: "pam-" + want.Service + "-missing", Severity: want.MissingSeverity, Where: "/etc/pam.d/" + want.Service,
			Problem: fmt.Sprintf("/etc/pam.d/%s cannot be read: %v", want.Service, unwrapPath(err)),
			Why:     "PAM then uses /etc/pam.d/other for " + want.Service + ", which does not ask for a code.",
			Fix:     fmt.Sprintf("restore /etc/pam.d/%s (apt-get install --reinstall the package that ships it) and add 'auth required %s' (see docs/pam.md).", want.Service, pamstack.ModuleName)})
		return nil
	}
	r.add(fds...)
	r.add(CheckPAMService(want, entries)...)
	var out []pamstack.Entry
	for _, e := range pamstack.AuthEntries(entries) {
		if e.IsOtpgate() {
			out = append(out, e)
		}
	}
	return out
}

// checkModuleFiles checks the loader and the Go library named by the
// pam_otpgate lines found.
func checkModuleFiles(r *Report, pamDir string, lines []pamstack.Entry) {
	if len(lines) == 0 {
		return
	}
	r.check("pam-module-files")
	if pamDir == "" {
		pamDir = FindPAMDir()
	}
	done := map[string]bool{}
	for _, e := range lines {
		loader := e.Module
		if !filepath.IsAbs(loader) {
			loader = filepath.Join(pamDir, loader)
		}
		golib, ok := e.Arg("golib")
		if !ok || golib == "" {
			golib = DefaultGoLib
		}
		for _, f := range []struct{ id, what, path string }{
			{"pam-loader", "the PAM module", loader},
			{"pam-golib", "the Go library of the PAM module", golib},
		} {
			if done[f.path] {
				continue
			}
			done[f.path] = true
			for _, fd := range CheckTrusted(f.id, f.what, TrustChain(f.path)) {
				fd.Where += " (used at " + e.Where + ")"
				r.add(fd)
			}
		}
	}
}

// TrustChain lstats path (after resolving symbolic links, as the loader
// does with realpath) and every directory above it.
func TrustChain(path string) []PathInfo {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return []PathInfo{{Path: path, Error: unwrapPath(err)}}
	}
	var out []PathInfo
	for p := resolved; ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err != nil {
			out = append(out, PathInfo{Path: p, Error: err})
		} else {
			out = append(out, PathInfo{Path: p, Mode: fi.Mode(), UID: ownerOf(fi)})
		}
		if p == "/" {
			return out
		}
	}
}

// FindPAMDir returns the directory holding pam_unix.so, which is where
// Linux-PAM loads modules named without a path from.
func FindPAMDir() string {
	arch := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "386": "i386-linux-gnu",
		"arm": "arm-linux-gnueabihf", "ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu", "riscv64": "riscv64-linux-gnu"}[runtime.GOARCH]
	var dirs []string
	if arch != "" {
		dirs = append(dirs, "/lib/"+arch+"/security", "/usr/lib/"+arch+"/security")
	}
	dirs = append(dirs, "/lib64/security", "/usr/lib64/security", "/lib/security", "/usr/lib/security")
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pam_unix.so")); err == nil {
			return d
		}
	}
	return dirs[0]
}

// usersOfInterest are the users the policy requires a code from.
func usersOfInterest(cfg *config.Config) []string {
	accounts, groups, _ := ReadAccounts() // checkAccounts reports a failed listing
	set := map[string]bool{}
	for _, u := range cfg.Policy.RequiredUsers {
		set[u] = true
	}
	for _, u := range GroupMembers(cfg.Policy.RequiredGroups, accounts, groups) {
		set[u] = true
	}
	for _, u := range Admins(accounts, groups) {
		set[u] = true
	}
	delete(set, "root")
	return sortedKeys(set)
}

// ReadAccounts lists the user and group databases through NSS, so that
// administrators from LDAP, sssd or any other source count. A user name
// comes once, as getpwnam has it; a group listed by two sources has the
// members of both, as getgrouplist counts them. A listing that fails
// gives what was listed before, and the error says which failed.
func ReadAccounts() ([]Account, []Group, error) {
	var users []Account
	seen := map[string]bool{}
	uerr := accounts.EachUser(func(u *accounts.User) error {
		if !seen[u.Name] {
			seen[u.Name] = true
			users = append(users, Account{Name: u.Name, UID: int(u.UID), GID: int(u.GID)})
		}
		return nil
	})
	var groups []Group
	index := map[string]int{}
	gerr := accounts.EachGroup(func(g *accounts.Group) error {
		if i, ok := index[g.Name]; ok {
			groups[i].Members = append(groups[i].Members, g.Members...)
			return nil
		}
		index[g.Name] = len(groups)
		groups = append(groups, Group{Name: g.Name, GID: int(g.GID), Members: g.Members})
		return nil
	})
	var err error
	if uerr != nil {
		err = fmt.Errorf("list the users: %w", uerr)
	}
	if gerr != nil {
		err = errors.Join(err, fmt.Errorf("list the groups: %w", gerr))
	}
	return users, groups, err
}

// checkAccounts asks otpgated about administrators and required users.
func checkAccounts(ctx context.Context, r *Report, c *protocol.Client, cfg *config.Config) {
	r.check("admins")
	r.check("required-users")
	accounts, groups, err := ReadAccounts()
	if err != nil {
		r.add(Finding{ID: "accounts-unlisted", Severity: Warning,
			Problem: fmt.Sprintf("the user and group databases could not be listed whole: %v", err),
			Why:     "administrators and required users may be missing from the enrollment checks.",
			Fix:     "check the sources in /etc/nsswitch.conf: 'getent passwd' and 'getent group' must list everyone."})
	}
	admins := Admins(accounts, groups)
	required := map[string]bool{}
	for _, u := range cfg.Policy.RequiredUsers {
		required[u] = true
	}
	for _, u := range GroupMembers(cfg.Policy.RequiredGroups, accounts, groups) {
		required[u] = true
	}
	reqList := sortedKeys(required)
	status := map[string]protocol.UserStatus{}
	ask := append(append([]string{}, admins...), reqList...)
	if len(ask) > maxUsersChecked {
		ask = ask[:maxUsersChecked]
	}
	for _, u := range ask {
		if _, ok := status[u]; ok {
			continue
		}
		resp, err := c.Do(ctx, &protocol.Request{Op: protocol.OpAdminShow, User: u, Service: "otpgate-doctor"})
		var pe *protocol.Error
		switch {
		case err == nil && resp.Status != nil:
			status[u] = *resp.Status
		case errors.As(err, &pe) && pe.Code == protocol.ErrNotFound:
		case err != nil:
			r.add(Finding{ID: "daemon-admin-show", Severity: Warning, Where: c.Socket,
				Problem: fmt.Sprintf("otpgated did not answer admin_show for %s: %v", u, err),
				Why:     "the enrollment checks are incomplete.",
				Fix:     "run otpgate doctor as root; check 'journalctl -u otpgated'."})
			return
		}
	}
	r.add(CheckAdmins(admins, status)...)
	r.add(CheckRequired(reqList, status)...)
}

// SSHDT runs `sshd -T` with extra arguments (such as "-C",
// "user=root,host=localhost,addr=127.0.0.1") and parses its output.
func SSHDT(ctx context.Context, timeout time.Duration, sshd string, args ...string) (SSHDConfig, error) {
	out, err := run(ctx, timeout, sshd, append([]string{"-T"}, args...)...)
	if err != nil {
		return nil, err
	}
	return ParseSSHDT(out), nil
}

// run runs a command and returns its standard output; on failure the
// error carries its standard error.
func run(ctx context.Context, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return string(out), errors.New(msg)
	}
	return string(out), nil
}

// LookPath finds a command in $PATH or the sbin directories.
func LookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func ownerOf(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return ^uint32(0)
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
