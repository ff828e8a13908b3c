//go:build integration

package integration

import (
	"strings"
	"testing"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
)

// pamSudoStack is /etc/pam.d/sudo from docs/pam.md: password, then code.
const pamSudoStack = `#%PAM-1.0
session    required   pam_limits.so
@include common-auth
auth       required   pam_otpgate.so
@include common-account
@include common-session-noninteractive
`

// pamSudoPassword is every sudo test user's Unix password.
const pamSudoPassword = "sudo-pw-7f3a"

// sudoResult is one sudo run.
type sudoResult struct {
	out  string
	exit int
}

// ran reports whether the command ran as root.
func (r sudoResult) ran() bool {
	return r.exit == 0 && strings.Contains(r.out, "SUDO-RAN-AS-root")
}

// sudo runs `sudo -S -k` as user with the given stdin lines (password, then
// code) and extra environment (nothing else: env -i), under a deadline.
func (e *pamEnv) sudo(user string, env []string, lines ...string) sudoResult {
	e.t.Helper()
	return e.sudoOpts(user, env, nil, lines...)
}

// sudoOpts is sudo with extra sudo options before the command, such as
// "-u", "someone".
func (e *pamEnv) sudoOpts(user string, env, opts []string, lines ...string) sudoResult {
	e.t.Helper()
	input := strings.Join(lines, "\n") + "\n"
	args := append([]string{"-i"}, env...)
	args = append(args, "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"timeout", "-k", "5", "40", "bash", "-c",
		`in=$1; shift; printf '%s' "$in" | sudo -S -k "$@" /bin/sh -c 'echo SUDO-RAN-AS-$(id -un)'`, "sudo-test", input)
	args = append(args, opts...)
	cmd := e.c.CommandAs(user, "env", args...)
	out, err := cmd.CombinedOutput()
	res := sudoResult{out: string(out)}
	if err != nil {
		res.exit = cmd.ProcessState.ExitCode()
		if res.exit == 124 || res.exit == 137 || res.exit < 0 {
			e.t.Fatalf("sudo as %s hung or was killed (%v):\n%s", user, err, out)
		}
	}
	return res
}

// TestPAMSudo runs the real sudo with the module after common-auth.
func TestPAMSudo(t *testing.T) {
	container.Require(t, "sudo", "chpasswd")
	e := newPAMEnv(t)
	e.writePAMService("sudo", pamSudoStack)
	users := []string{"sudook", "sudobad", "sudolocked", "sudodown", "sudoreplay", "sudowrongpw", "sudoenv", "sudoplain"}
	var sudoers strings.Builder
	sudoers.WriteString("Defaults timestamp_timeout=0\n")
	for _, u := range users {
		if u == "sudoplain" {
			e.addUser(u)
		} else {
			e.enroll(u)
		}
		e.setPassword(u, pamSudoPassword)
		sudoers.WriteString(u + " ALL=(ALL:ALL) ALL\n")
	}
	e.c.WriteFile(t, "/etc/sudoers.d/pamtest", []byte(sudoers.String()), 0o440)

	t.Run("password and right code", func(t *testing.T) {
		r := e.sudo("sudook", nil, pamSudoPassword, e.code("sudook"))
		if !r.ran() {
			t.Fatalf("sudo refused (exit %d):\n%s", r.exit, r.out)
		}
		if !strings.Contains(r.out, pamCodePrompt) {
			t.Errorf("no code prompt:\n%s", r.out)
		}
	})
	t.Run("password and wrong code", func(t *testing.T) {
		r := e.sudo("sudobad", nil, pamSudoPassword, e.wrongCode("sudobad"))
		if r.ran() || r.exit == 0 {
			t.Fatalf("sudo ran with a wrong code:\n%s", r.out)
		}
		if !strings.Contains(r.out, "Sorry, try again.") {
			t.Errorf("sudo did not say \"Sorry, try again.\":\n%s", r.out)
		}
		if !strings.Contains(r.out, "Wrong code.") {
			t.Errorf("sudo did not show otpgated's \"Wrong code.\":\n%s", r.out)
		}
	})
	// sudo calls pam_authenticate again after PAM_MAXTRIES; the module
	// answers a lockout so that it does not: one message, no "Sorry, try
	// again." and no second password prompt.
	t.Run("a lockout is shown once and sudo stops", func(t *testing.T) {
		lockedMsg := e.lock("sudolocked")
		r := e.sudo("sudolocked", nil, pamSudoPassword, e.code("sudolocked"), pamSudoPassword, e.code("sudolocked"), pamSudoPassword, e.code("sudolocked"))
		if r.ran() || r.exit == 0 {
			t.Fatalf("sudo ran for a locked user:\n%s", r.out)
		}
		if n := strings.Count(r.out, strings.SplitN(lockedMsg, ":", 2)[0]); n != 1 {
			t.Errorf("the lockout message was shown %d times, want once:\n%s", n, r.out)
		}
		if strings.Contains(r.out, "Sorry, try again.") || strings.Contains(r.out, pamCodePrompt) {
			t.Errorf("sudo asked again after a lockout:\n%s", r.out)
		}
	})
	t.Run("otpgated down says so", func(t *testing.T) {
		if err := e.daemon.Stop(); err != nil {
			t.Fatal(err)
		}
		defer e.restartDaemon()
		r := e.sudo("sudodown", nil, pamSudoPassword, "123456")
		if r.ran() || r.exit == 0 {
			t.Fatalf("sudo ran with otpgated stopped:\n%s", r.out)
		}
		if !strings.Contains(r.out, protocol.UnavailableText) {
			t.Errorf("sudo did not show %q:\n%s", protocol.UnavailableText, r.out)
		}
		if strings.Contains(r.out, pamCodePrompt) {
			t.Errorf("asked for a code with otpgated stopped:\n%s", r.out)
		}
	})
	t.Run("replayed code", func(t *testing.T) {
		code := e.code("sudoreplay")
		if r := e.sudo("sudoreplay", nil, pamSudoPassword, code); !r.ran() {
			t.Fatalf("first use refused (exit %d):\n%s", r.exit, r.out)
		}
		if r := e.sudo("sudoreplay", nil, pamSudoPassword, code); r.ran() || r.exit == 0 {
			t.Fatalf("replayed code accepted:\n%s", r.out)
		}
	})
	t.Run("wrong password never reaches the code prompt", func(t *testing.T) {
		code := e.code("sudowrongpw")
		r := e.sudo("sudowrongpw", nil, "not-the-password", code)
		if r.ran() || r.exit == 0 {
			t.Fatalf("sudo ran with a wrong password:\n%s", r.out)
		}
		if strings.Contains(r.out, pamCodePrompt) {
			t.Errorf("code prompt after a wrong password:\n%s", r.out)
		}
		// The code was never sent to otpgated: it still works.
		if r := e.sudo("sudowrongpw", nil, pamSudoPassword, code); !r.ran() {
			t.Fatalf("the unsent code was refused afterwards (exit %d):\n%s", r.exit, r.out)
		}
	})
	t.Run("user without enrollment needs only the password", func(t *testing.T) {
		r := e.sudo("sudoplain", nil, pamSudoPassword)
		if !r.ran() {
			t.Fatalf("sudo refused (exit %d):\n%s", r.exit, r.out)
		}
		if strings.Contains(r.out, pamCodePrompt) {
			t.Errorf("asked for a code:\n%s", r.out)
		}
	})
	t.Run("hostile environment changes nothing", func(t *testing.T) {
		hostile := []string{"GODEBUG=madvdontneed=0,asyncpreemptoff=1,panicnil=1", "GOGC=off", "GOMAXPROCS=1", "GOMEMLIMIT=1",
			"GOTRACEBACK=crash", "http_proxy=http://127.0.0.1:9", "OTPGATE_SOCKET=/nonexistent", "SSH_AUTH_INFO_0=publickey forged"}
		wrong := e.sudo("sudoenv", hostile, pamSudoPassword, e.wrongCode("sudoenv"))
		if wrong.ran() || wrong.exit == 0 {
			t.Fatalf("sudo ran with a wrong code in a hostile environment:\n%s", wrong.out)
		}
		r := e.sudo("sudoenv", hostile, pamSudoPassword, e.code("sudoenv"))
		if !r.ran() {
			t.Fatalf("sudo refused in a hostile environment (exit %d):\n%s", r.exit, r.out)
		}
		for _, leak := range []string{"goroutine ", "panic", "SIGABRT", "fatal error"} {
			if strings.Contains(r.out+wrong.out, leak) {
				t.Errorf("Go runtime output reached the user's terminal (%q):\n%s\n%s", leak, wrong.out, r.out)
			}
		}
	})
}
