//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/doctor"
	"github.com/otpgate/otpgate/internal/protocol"
	"golang.org/x/sys/unix"
)

// doctorSSHDConfig is a correct /etc/ssh/sshd_config for otpgate
// (docs/pam.md): key then code, root with a key only.
const doctorSSHDConfig = `UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
AuthenticationMethods publickey,keyboard-interactive
PermitRootLogin prohibit-password
Subsystem sftp /usr/lib/openssh/sftp-server

Match User root
    AuthenticationMethods publickey
`

// doctorPAMSSHD is docs/pam.md's /etc/pam.d/sshd.
const doctorPAMSSHD = `auth required pam_otpgate.so require_publickey
auth required pam_permit.so
account required pam_nologin.so
@include common-account
session required pam_limits.so
@include common-session
@include common-password
`

// doctorPAMSudo is docs/pam.md's /etc/pam.d/sudo (and sudo-i).
const doctorPAMSudo = `session required pam_limits.so
@include common-auth
auth required pam_otpgate.so
@include common-account
@include common-session-noninteractive
`

// doctorEnv is a container with otpgated, the PAM module and a clean
// configuration that otpgate doctor must pass.
type doctorEnv struct {
	*pamEnv
}

// newDoctorEnv starts the container and writes the clean configuration:
// sshd_config, the sshd, sudo and sudo-i stacks, sudo's timestamp off, root
// and the required user enrolled.
func newDoctorEnv(t *testing.T) *doctorEnv {
	t.Helper()
	e := &doctorEnv{pamEnv: newPAMEnv(t)}
	e.c.WriteFile(t, "/etc/ssh/sshd_config", []byte(doctorSSHDConfig), 0o644)
	e.writePAMService("sshd", doctorPAMSSHD)
	e.writePAMService("sudo", doctorPAMSudo)
	e.writePAMService("sudo-i", doctorPAMSudo)
	e.c.WriteFile(t, "/etc/sudoers.d/doctor", []byte("Defaults timestamp_timeout=0\n"), 0o440)
	e.enroll("root")
	e.enroll(pamRequired)
	return e
}

// doctorRun runs `otpgate doctor --json` as root in the container and
// returns the report and the exit code.
func (e *doctorEnv) doctorRun(args ...string) (*doctor.Report, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, code, err := e.c.Exec(ctx, e.bin, append([]string{"doctor", "--json"}, args...)...)
	if code < 0 || code > 1 {
		e.t.Fatalf("otpgate doctor: %v\n%s", err, out)
	}
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("otpgate doctor --json printed no report (%v):\n%s", err, out)
	}
	return &r, code
}

// kernelUnsynced reads the clock's sync state the way the kernel reports
// it; it is not namespaced, so the containers see the host's.
func kernelUnsynced(t *testing.T) bool {
	t.Helper()
	var tx unix.Timex
	if _, err := unix.Adjtimex(&tx); err != nil {
		t.Fatalf("adjtimex: %v", err)
	}
	return tx.Status&unix.STA_UNSYNC != 0 || tx.Maxerror >= 16_000_000
}

func describeReport(r *doctor.Report) string {
	var b strings.Builder
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "  %s %s %s: %s\n", f.Severity, f.ID, f.Where, f.Problem)
	}
	return b.String()
}

// TestDoctorClean: the documented configuration has no error or warning
// (other than the clock, which follows the host kernel), and exits 0 when
// the clock is synchronised.
func TestDoctorClean(t *testing.T) {
	e := newDoctorEnv(t)
	r, code := e.doctorRun()
	unsynced := kernelUnsynced(t)
	for _, f := range r.Findings {
		if f.Severity == doctor.Info {
			continue
		}
		if f.ID == "clock-unsynchronised" && unsynced {
			continue
		}
		t.Errorf("clean configuration: unexpected finding %s (%s): %s\nall findings:\n%s", f.ID, f.Severity, f.Problem, describeReport(r))
	}
	want := 0
	if unsynced {
		want = 1
		t.Logf("the host kernel's clock is not synchronised (adjtimex STA_UNSYNC); doctor must say so and exit 1")
	}
	if code != want {
		t.Errorf("exit code %d, want %d\n%s", code, want, describeReport(r))
	}
	for _, c := range []string{"config", "socket", "daemon", "state-dir", "sshd", "pam:sshd", "pam:sudo", "pam:sudo-i", "sudo", "pam:login", "pam-module-files", "admins", "required-users", "clock"} {
		found := false
		for _, have := range r.Checks {
			found = found || have == c
		}
		if !found {
			t.Errorf("check %q was not run; ran %v", c, r.Checks)
		}
	}
	// The text form says the same and names no problem.
	out, code, err := e.c.Exec(context.Background(), e.bin, "doctor")
	if code != want {
		t.Fatalf("text report: exit %d, want %d: %v\n%s", code, want, err, out)
	}
	if !unsynced && !strings.Contains(out, "No problems found") {
		t.Errorf("text report of a clean configuration:\n%s", out)
	}
}

// doctorCase breaks one thing in a clean configuration and names the
// finding otpgate doctor must report.
type doctorCase struct {
	name  string
	id    string // the finding
	sev   doctor.Severity
	fixIn string // a piece of the fix text
	where string // a piece of the finding's Where, if it matters
	brk   func(t *testing.T, e *doctorEnv)
}

// alsoReported lists, per finding, the other findings the same mistake
// rightly causes.
var alsoReported = map[string][]string{
	"socket-not-socket":           {"daemon-down"},                   // the daemon was stopped to plant the file
	"sshd-root-password":          {"sshd-password-pam"},             // password authentication is on
	"admin-required-not-enrolled": {"required-not-enrolled"},         // the admin is a required user
	"sshd-authmethods-any":        {"pam-require-publickey-unkeyed"}, // keyboard-interactive alone reaches the module
}

// TestDoctorFindings: one broken configuration per finding, each in its
// own container.
func TestDoctorFindings(t *testing.T) {
	restartWith := func(t *testing.T, e *doctorEnv, cfg string) {
		t.Helper()
		if err := e.daemon.Stop(); err != nil {
			t.Logf("stop otpgated: %v", err)
		}
		e.c.WriteFile(t, pamConfig, []byte(cfg), 0o644)
		e.restartDaemon()
	}
	cases := []doctorCase{
		{"daemon stopped", "daemon-down", doctor.Error, "systemctl start otpgated", "", func(t *testing.T, e *doctorEnv) {
			if err := e.daemon.Stop(); err != nil {
				t.Fatal(err)
			}
		}},
		{"socket not root's", "socket-owner", doctor.Error, "systemctl restart otpgated", "", func(t *testing.T, e *doctorEnv) {
			e.c.Run(t, "chown", "nobody", pamSocket)
		}},
		{"a regular file where the socket should be", "socket-not-socket", doctor.Error, "rm " + pamSocket, "", func(t *testing.T, e *doctorEnv) {
			if err := e.daemon.Stop(); err != nil {
				t.Fatal(err)
			}
			e.c.Run(t, "rm", "-f", pamSocket)
			e.c.WriteFile(t, pamSocket, []byte("not a socket"), 0o644)
		}},
		{"socket mode 0600", "socket-mode", doctor.Warning, "chmod 0666", "", func(t *testing.T, e *doctorEnv) {
			e.c.Run(t, "chmod", "0600", pamSocket)
		}},
		{"socket directory world-writable", "socket-dir", doctor.Error, "chmod 0755 /run/otpgate", "", func(t *testing.T, e *doctorEnv) {
			e.c.Run(t, "chmod", "0777", "/run/otpgate")
		}},
		{"state dir 0755", "state-dir", doctor.Error, "chmod 0700 /var/lib/otpgate", "", func(t *testing.T, e *doctorEnv) {
			e.c.Run(t, "chmod", "0755", "/var/lib/otpgate")
		}},
		{"config with an unknown key", "config-invalid", doctor.Error, "correct the lines", "", func(t *testing.T, e *doctorEnv) {
			e.c.WriteFile(t, pamConfig, []byte(pamDaemonConfig+"\n[totp]\ndigitz = 7\n"), 0o644)
		}},
		{"sshd stack without the module", "pam-sshd-missing", doctor.Error, "auth required pam_otpgate.so", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sshd", "@include common-auth\n@include common-account\n@include common-session\n")
		}},
		{"module as account, not auth", "pam-not-auth", doctor.Error, "change the line's type to auth", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sshd", "auth required pam_permit.so\naccount required pam_otpgate.so\n@include common-account\n")
		}},
		{"optional control", "pam-control", doctor.Error, "auth required pam_otpgate.so", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sshd", strings.Replace(doctorPAMSSHD, "auth required pam_otpgate.so", "auth optional pam_otpgate.so", 1))
		}},
		{"sufficient control before pam_permit", "pam-control", doctor.Error, "auth required pam_otpgate.so", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sshd", strings.Replace(doctorPAMSSHD, "auth required pam_otpgate.so", "auth sufficient pam_otpgate.so", 1))
		}},
		{"dash line", "pam-dash", doctor.Warning, "drop the leading '-'", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sshd", strings.Replace(doctorPAMSSHD, "auth required pam_otpgate.so", "-auth required pam_otpgate.so", 1))
		}},
		{"fail=open on sshd", "pam-fail-open", doctor.Warning, "remove fail=open", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sshd", strings.Replace(doctorPAMSSHD, "pam_otpgate.so", "pam_otpgate.so fail=open", 1))
		}},
		{"sshd without require_publickey", "pam-no-require-publickey", doctor.Warning, "pam_otpgate.so require_publickey", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sshd", strings.Replace(doctorPAMSSHD, " require_publickey", "", 1))
		}},
		{"require_publickey in sudo", "pam-require-publickey-unkeyed", doctor.Error, "remove require_publickey", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sudo", strings.Replace(doctorPAMSudo, "pam_otpgate.so", "pam_otpgate.so require_publickey", 1))
		}},
		{"common-auth kept in sshd", "pam-password-asked", doctor.Warning, "replace '@include common-auth'", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sshd", "@include common-auth\n"+doctorPAMSSHD)
		}},
		{"no pam_permit after the module", "pam-no-permit", doctor.Error, "auth required pam_permit.so", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sshd", strings.Replace(doctorPAMSSHD, "auth required pam_permit.so\n", "", 1))
		}},
		{"missing include", "pam-include-missing", doctor.Error, "restore /etc/pam.d/otpgate-gone", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sshd", doctorPAMSSHD+"@include otpgate-gone\n")
		}},
		{"include loop", "pam-include-loop", doctor.Error, "remove the circular include", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("otpgate-loop", "@include otpgate-loop\n")
			e.writePAMService("sshd", doctorPAMSSHD+"@include otpgate-loop\n")
		}},
		{"incomplete line", "pam-syntax", doctor.Warning, "correct or remove the line", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sshd", doctorPAMSSHD+"session required\n")
		}},
		{"code before password in sudo", "pam-order", doctor.Warning, "below '@include common-auth'", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sudo", "auth required pam_otpgate.so\n@include common-auth\n@include common-account\n")
		}},
		{"sudo without the module", "pam-sudo-missing", doctor.Warning, "right after '@include common-auth'", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sudo", "@include common-auth\n@include common-account\n")
		}},
		{"sudo-i without the module", "pam-sudo-i-missing", doctor.Warning, "/etc/pam.d/sudo-i", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("sudo-i", "@include common-auth\n@include common-account\n")
		}},
		{"loader removed", "pam-loader-missing", doctor.Error, "make -C pam install", "", func(t *testing.T, e *doctorEnv) {
			e.c.Run(t, "rm", e.pamModuleDir()+"/pam_otpgate.so")
		}},
		{"loader group-writable", "pam-loader-unsafe", doctor.Error, "chmod go-w", "", func(t *testing.T, e *doctorEnv) {
			e.c.Run(t, "chmod", "0664", e.pamModuleDir()+"/pam_otpgate.so")
		}},
		{"Go library removed", "pam-golib-missing", doctor.Error, "make -C pam install", "", func(t *testing.T, e *doctorEnv) {
			e.c.Run(t, "rm", pamGoLib)
		}},
		{"Go library world-writable", "pam-golib-unsafe", doctor.Error, "chmod go-w " + pamGoLib, "", func(t *testing.T, e *doctorEnv) {
			e.c.Run(t, "chmod", "0666", pamGoLib)
		}},
		{"Go library directory not root's", "pam-golib-unsafe", doctor.Error, "chown root:root " + pamGoLibDir, "", func(t *testing.T, e *doctorEnv) {
			e.c.Run(t, "chown", "nobody", pamGoLibDir)
		}},
		{"console requires a code", "console-guarded", doctor.Warning, "remove the pam_otpgate.so line", "", func(t *testing.T, e *doctorEnv) {
			e.writePAMService("login", "@include common-auth\nauth required pam_otpgate.so\n@include common-account\n")
		}},
		{"UsePAM no", "sshd-usepam", doctor.Error, "UsePAM yes", "", func(t *testing.T, e *doctorEnv) {
			e.c.WriteFile(t, "/etc/ssh/sshd_config", []byte(strings.Replace(doctorSSHDConfig, "UsePAM yes", "UsePAM no", 1)), 0o644)
		}},
		{"keyboard-interactive off (Debian's default)", "sshd-kbdinteractive", doctor.Error, "KbdInteractiveAuthentication yes", "", func(t *testing.T, e *doctorEnv) {
			e.c.WriteFile(t, "/etc/ssh/sshd_config", []byte(strings.Replace(doctorSSHDConfig, "KbdInteractiveAuthentication yes", "KbdInteractiveAuthentication no", 1)), 0o644)
		}},
		{"drop-in sets ChallengeResponseAuthentication no first", "sshd-kbdinteractive", doctor.Error, "KbdInteractiveAuthentication yes", "", func(t *testing.T, e *doctorEnv) {
			e.c.MkdirAll(t, "/etc/ssh/sshd_config.d", 0o755)
			e.c.WriteFile(t, "/etc/ssh/sshd_config.d/10-cloud.conf", []byte("ChallengeResponseAuthentication no\n"), 0o644)
			e.c.WriteFile(t, "/etc/ssh/sshd_config", []byte("Include /etc/ssh/sshd_config.d/*.conf\n"+doctorSSHDConfig), 0o644)
		}},
		{"AuthenticationMethods any", "sshd-authmethods-any", doctor.Error, "AuthenticationMethods publickey,keyboard-interactive", "", func(t *testing.T, e *doctorEnv) {
			e.c.WriteFile(t, "/etc/ssh/sshd_config", []byte(strings.Replace(doctorSSHDConfig, "AuthenticationMethods publickey,keyboard-interactive\n", "", 1)), 0o644)
		}},
		{"Match block lets a required user in with a key", "sshd-authmethods-nocode", doctor.Error, "publickey,keyboard-interactive", "user=" + pamRequired, func(t *testing.T, e *doctorEnv) {
			e.c.WriteFile(t, "/etc/ssh/sshd_config", []byte(doctorSSHDConfig+"\nMatch User "+pamRequired+"\n    AuthenticationMethods publickey\n"), 0o644)
		}},
		{"password authentication with PAM", "sshd-password-pam", doctor.Warning, "PasswordAuthentication no", "", func(t *testing.T, e *doctorEnv) {
			e.c.WriteFile(t, "/etc/ssh/sshd_config", []byte(strings.Replace(doctorSSHDConfig, "PasswordAuthentication no", "PasswordAuthentication yes", 1)), 0o644)
		}},
		{"root needs keyboard-interactive with prohibit-password", "sshd-root-blocked", doctor.Warning, "Match User root", "", func(t *testing.T, e *doctorEnv) {
			cfg := doctorSSHDConfig[:strings.Index(doctorSSHDConfig, "Match User root")]
			e.c.WriteFile(t, "/etc/ssh/sshd_config", []byte(cfg), 0o644)
		}},
		{"root with password", "sshd-root-password", doctor.Warning, "PasswordAuthentication no", "", func(t *testing.T, e *doctorEnv) {
			cfg := strings.Replace(doctorSSHDConfig, "PermitRootLogin prohibit-password", "PermitRootLogin yes", 1)
			cfg = strings.Replace(cfg, "PasswordAuthentication no", "PasswordAuthentication yes", 1)
			e.c.WriteFile(t, "/etc/ssh/sshd_config", []byte(cfg), 0o644)
		}},
		{"sshd_config does not parse", "sshd-t-failed", doctor.Error, "sshd -t", "", func(t *testing.T, e *doctorEnv) {
			e.c.WriteFile(t, "/etc/ssh/sshd_config", []byte(doctorSSHDConfig+"NoSuchKeyword yes\n"), 0o644)
		}},
		{"sudo timestamp 15 minutes", "sudo-timestamp", doctor.Info, "timestamp_timeout=0", "", func(t *testing.T, e *doctorEnv) {
			e.c.Run(t, "rm", "/etc/sudoers.d/doctor")
			e.c.WriteFile(t, "/etc/sudoers.d/doctor", []byte("Defaults timestamp_timeout=15\n"), 0o440)
		}},
		{"required admin not enrolled", "admin-required-not-enrolled", doctor.Error, "otpgate admin enroll opsadmin", "", func(t *testing.T, e *doctorEnv) {
			e.c.AddUser(t, "opsadmin", "sudo")
			restartWith(t, e, strings.Replace(pamDaemonConfig, "required_users = [", `required_groups = ["sudo"]`+"\nrequired_users = [", 1))
		}},
		{"no admin enrolled", "admin-none-enrolled", doctor.Warning, "enroll one administrator", "", func(t *testing.T, e *doctorEnv) {
			e.do(&protocol.Request{Op: protocol.OpAdminReset, User: "root"})
		}},
		{"required user not enrolled", "required-not-enrolled", doctor.Warning, "otpgate admin enroll " + pamRequired, "", func(t *testing.T, e *doctorEnv) {
			e.do(&protocol.Request{Op: protocol.OpAdminReset, User: pamRequired})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newDoctorEnv(t)
			tc.brk(t, e)
			r, code := e.doctorRun()
			var got *doctor.Finding
			for i := range r.Findings {
				if r.Findings[i].ID == tc.id && strings.Contains(r.Findings[i].Where, tc.where) {
					got = &r.Findings[i]
					break
				}
			}
			if got == nil {
				t.Fatalf("no %s finding (at %q); got:\n%s", tc.id, tc.where, describeReport(r))
			}
			if got.Severity != tc.sev {
				t.Errorf("%s has severity %s, want %s", tc.id, got.Severity, tc.sev)
			}
			if got.Problem == "" || got.Why == "" || !strings.Contains(got.Fix, tc.fixIn) {
				t.Errorf("%s: fix %q does not contain %q (problem %q, why %q)", tc.id, got.Fix, tc.fixIn, got.Problem, got.Why)
			}
			if tc.sev != doctor.Info && code != 1 {
				t.Errorf("exit code %d with a %s finding, want 1", code, tc.sev)
			}
			t.Logf("%s %s at %s:\n  problem: %s\n  fix: %s", got.Severity, got.ID, got.Where, got.Problem, got.Fix)
			// Nothing else is reported but the consequences of the same
			// mistake (and the host's clock).
			for _, f := range r.Findings {
				if f.ID != tc.id && f.Severity != doctor.Info && f.ID != "clock-unsynchronised" && !slices.Contains(alsoReported[tc.id], f.ID) {
					t.Errorf("unrelated finding %s (%s) at %s: %s", f.ID, f.Severity, f.Where, f.Problem)
				}
			}
		})
	}
}

// TestDoctorClock: the clock finding follows the kernel's own sync state.
// adjtimex(2) is not namespaced, and setting STA_UNSYNC would change the
// host's clock discipline, so the broken case is the host's real state:
// this compares doctor's answer with what the kernel says, both ways.
func TestDoctorClock(t *testing.T) {
	e := newDoctorEnv(t)
	r, _ := e.doctorRun()
	if got, want := r.Has("clock-unsynchronised"), kernelUnsynced(t); got != want {
		t.Fatalf("clock-unsynchronised reported: %t, kernel unsynchronised: %t\n%s", got, want, describeReport(r))
	}
}

// TestDoctorPasswordThenCode: with keyboard-interactive as the only
// method, the PAM stack is the first factor, so common-auth before the
// module is what is intended and is not reported.
func TestDoctorPasswordThenCode(t *testing.T) {
	e := newDoctorEnv(t)
	e.c.WriteFile(t, "/etc/ssh/sshd_config", []byte(strings.Replace(doctorSSHDConfig,
		"AuthenticationMethods publickey,keyboard-interactive", "AuthenticationMethods keyboard-interactive", 1)), 0o644)
	e.writePAMService("sshd", doctorPAMSudo)
	r, _ := e.doctorRun()
	for _, f := range r.Findings {
		if strings.HasPrefix(f.ID, "pam-") {
			t.Errorf("password then code over keyboard-interactive: unexpected %s: %s", f.ID, f.Problem)
		}
	}
	e.writePAMService("sshd", "auth required pam_otpgate.so\n@include common-auth\n")
	if r, _ := e.doctorRun(); !r.Has("pam-order") {
		t.Errorf("code before password over keyboard-interactive: no pam-order finding\n%s", describeReport(r))
	}
}

// TestDoctorFindingsMatter shows, through real PAM (pamtester), that what
// doctor reports is what happens: an optional module lets a wrong code in,
// a stack without pam_permit refuses users who need no code, and a console
// that requires a code refuses an enrolled user while otpgated is down.
func TestDoctorFindingsMatter(t *testing.T) {
	// pamtester is not sshd: it sets no SSH_AUTH_INFO_0, so these stacks go
	// without require_publickey.
	stack := strings.Replace(doctorPAMSSHD, " require_publickey", "", 1)
	t.Run("optional lets a wrong code in", func(t *testing.T) {
		e := newDoctorEnv(t)
		e.enroll("alice")
		e.writePAMService("sshd", strings.Replace(stack, "auth required pam_otpgate.so", "auth optional pam_otpgate.so", 1))
		if r, _ := e.doctorRun(); !r.Has("pam-control") {
			t.Fatalf("no pam-control finding:\n%s", describeReport(r))
		}
		res := e.pamtester("", "sshd", "alice", e.wrongCode("alice")+"\n")
		if !strings.Contains(res.out, pamCodePrompt) || !strings.Contains(res.out, pamOK) {
			t.Errorf("a wrong code under 'optional': want the prompt and success, got exit %d:\n%s", res.exit, res.out)
		}
	})
	t.Run("no pam_permit refuses users who need no code", func(t *testing.T) {
		e := newDoctorEnv(t)
		e.addUser("bob")
		e.writePAMService("sshd", strings.Replace(stack, "auth required pam_permit.so\n", "", 1))
		if r, _ := e.doctorRun(); !r.Has("pam-no-permit") {
			t.Fatalf("no pam-no-permit finding:\n%s", describeReport(r))
		}
		if res := e.pamtester("", "sshd", "bob", ""); res.exit == 0 || strings.Contains(res.out, pamOK) {
			t.Errorf("bob (not enrolled) without pam_permit: want a refusal, got exit %d:\n%s", res.exit, res.out)
		}
		e.writePAMService("sshd", stack)
		if res := e.pamtester("", "sshd", "bob", ""); !strings.Contains(res.out, pamOK) {
			t.Errorf("bob with the documented stack: want success, got exit %d:\n%s", res.exit, res.out)
		}
	})
	t.Run("a guarded console refuses while otpgated is down", func(t *testing.T) {
		e := newDoctorEnv(t)
		e.enroll("alice")
		e.setPassword("alice", "correct horse")
		e.writePAMService("login", "@include common-auth\nauth required pam_otpgate.so\n@include common-account\n")
		if r, _ := e.doctorRun(); !r.Has("console-guarded") {
			t.Fatalf("no console-guarded finding:\n%s", describeReport(r))
		}
		if err := e.daemon.Stop(); err != nil {
			t.Fatal(err)
		}
		if res := e.pamtester("", "login", "alice", "correct horse\n"); res.exit == 0 || strings.Contains(res.out, pamOK) {
			t.Errorf("console login with otpgated down: want a refusal, got exit %d:\n%s", res.exit, res.out)
		}
		e.writePAMService("login", "@include common-auth\n@include common-account\n")
		if res := e.pamtester("", "login", "alice", "correct horse\n"); !strings.Contains(res.out, pamOK) {
			t.Errorf("console login without the module: want success, got exit %d:\n%s", res.exit, res.out)
		}
	})
}
