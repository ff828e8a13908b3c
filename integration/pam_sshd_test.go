//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
)

// pamSSHDConfig is the sshd_config of the suite: docs/pam.md's settings.
const pamSSHDConfig = `ListenAddress 127.0.0.1
Port %d
HostKey %s/hostkey
PidFile %s/sshd.pid
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
AuthenticationMethods publickey,keyboard-interactive
PermitRootLogin no
LogLevel DEBUG1
`

// pamSSHDStack is /etc/pam.d/sshd from docs/pam.md: common-auth replaced by
// the module and pam_permit; account and session as Debian ships them.
const pamSSHDStack = `auth required pam_otpgate.so %s
auth required pam_permit.so
@include common-account
@include common-session
`

// pamAskpass answers the keyboard-interactive prompt for ssh: it logs the
// prompt and prints the code from the environment.
const pamAskpass = `#!/bin/sh
printf '%s\n' "$1" >> "$ASKPASS_LOG"
printf '%s\n' "$ASKPASS_CODE"
`

// pamSSHD is a real OpenSSH sshd in a pamEnv.
type pamSSHD struct {
	*pamEnv
	logins int
	port   int // sshd's port; 0 is pamSSHDPort
}

// startSSHD writes the sshd configuration, a client key and the askpass
// helper, and starts /usr/sbin/sshd in the foreground.
func startSSHD(t testing.TB, e *pamEnv, moduleArgs string) *pamSSHD {
	t.Helper()
	return startSSHDOpts(t, e, moduleArgs)
}

// startSSHDOpts is startSSHD with extra sshd command-line arguments, such
// as "-o", "AuthenticationMethods=keyboard-interactive" (the command line
// wins over the configuration file).
func startSSHDOpts(t testing.TB, e *pamEnv, moduleArgs string, sshdArgs ...string) *pamSSHD {
	t.Helper()
	container.Require(t, "/usr/sbin/sshd", "ssh", "ssh-keygen")
	c := e.c
	c.MkdirAll(t, "/run/sshd", 0o755)
	c.Run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", pamWorkDir+"/hostkey")
	c.Run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", pamWorkDir+"/id_ed25519")
	c.Run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", pamWorkDir+"/stranger")
	c.WriteFile(t, pamWorkDir+"/askpass", []byte(pamAskpass), 0o755)
	c.WriteFile(t, pamWorkDir+"/sshd_config", []byte(fmt.Sprintf(pamSSHDConfig, pamSSHDPort, pamWorkDir, pamWorkDir)), 0o644)
	s := &pamSSHD{pamEnv: e}
	s.setStack(moduleArgs)
	c.Background(t, "/usr/sbin/sshd", append([]string{"-D", "-e", "-f", pamWorkDir + "/sshd_config"}, sshdArgs...)...)
	c.WaitForPort(t, pamSSHDPort, 15*time.Second)
	return s
}

// setStack rewrites /etc/pam.d/sshd; sshd reads it at each connection.
func (s *pamSSHD) setStack(moduleArgs string) {
	s.t.Helper()
	s.writePAMService("sshd", fmt.Sprintf(pamSSHDStack, moduleArgs))
}

// addSSHUser creates user with the suite's public key authorized.
func (s *pamSSHD) addSSHUser(user string) {
	s.t.Helper()
	if _, err := s.c.LookupUser(user); err != nil {
		s.addUser(user)
	}
	u, err := s.c.LookupUser(user)
	if err != nil {
		s.t.Fatal(err)
	}
	pub := s.c.ReadFile(s.t, pamWorkDir+"/id_ed25519.pub")
	s.c.MkdirAll(s.t, u.Home+"/.ssh", 0o700)
	s.c.WriteFile(s.t, u.Home+"/.ssh/authorized_keys", pub, 0o600)
	s.c.Chown(s.t, u.Home+"/.ssh", user)
	s.c.Chown(s.t, u.Home+"/.ssh/authorized_keys", user)
}

// sshResult is one ssh login attempt.
type sshResult struct {
	out     string // ssh's stdout and stderr
	exit    int
	prompts string // what askpass was asked, one prompt per line
	elapsed time.Duration
}

// loggedIn reports whether the remote command ran.
func (r sshResult) loggedIn(user string) bool {
	return r.exit == 0 && strings.Contains(r.out, "LOGIN-OK-"+user)
}

// login runs the real ssh client against the suite's sshd as user with key
// (a file under pamWorkDir), answering any prompt with code through
// SSH_ASKPASS. It never takes longer than pamCmdLimit.
func (s *pamSSHD) login(user, key, code string) sshResult {
	s.t.Helper()
	return s.loginOpts(user, key, code, nil)
}

// loginOpts is login with extra ssh options (e.g. "-tt" for a terminal,
// which makes sshd print PAM's messages after a successful login).
func (s *pamSSHD) loginOpts(user, key, code string, opts []string) sshResult {
	s.t.Helper()
	s.logins++
	log := fmt.Sprintf("%s/askpass-%d.log", pamWorkDir, s.logins)
	ctx, cancel := context.WithTimeout(context.Background(), pamCmdLimit)
	defer cancel()
	start := time.Now()
	if opts == nil {
		opts = []string{"-T"}
	}
	args := []string{"ASKPASS_CODE=" + code, "ASKPASS_LOG=" + log,
		"SSH_ASKPASS=" + pamWorkDir + "/askpass", "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0",
		"timeout", "-k", "5", "40",
		"ssh", "-F", "/dev/null", "-p", fmt.Sprint(s.sshPort())}
	args = append(args, opts...)
	args = append(args, "-i", pamWorkDir+"/"+key, "-o", "IdentitiesOnly=yes",
		"-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=10", "-o", "LogLevel=INFO",
		user+"@127.0.0.1", "echo LOGIN-OK-"+user)
	out, exit, err := s.c.Exec(ctx, "env", args...)
	r := sshResult{out: out, exit: exit, prompts: s.readOptional(log), elapsed: time.Since(start)}
	if ctx.Err() != nil || exit == 124 || exit == 137 {
		s.t.Fatalf("ssh %s hung (%v, exit %d):\n%s", user, err, exit, out)
	}
	return r
}

// sshPort is the port the suite's ssh client connects to.
func (s *pamSSHD) sshPort() int {
	if s.port != 0 {
		return s.port
	}
	return pamSSHDPort
}

// TestPAMSSHD logs in with the real OpenSSH client through a real sshd
// (publickey, then keyboard-interactive through pam_otpgate).
func TestPAMSSHD(t *testing.T) {
	e := newPAMEnv(t)
	s := startSSHD(t, e, "debug")
	for _, u := range []string{"sshok", "sshbad", "sshreplay", "sshlocked", "sshstranger"} {
		s.addSSHUser(u)
		s.enroll(u)
	}
	s.addSSHUser("sshplain")
	s.addSSHUser(pamRequired)
	lockedMsg := s.lock("sshlocked")
	requiredMsg := s.checkMessage(pamRequired, "enroll_required")

	t.Run("right code logs in", func(t *testing.T) {
		r := s.login("sshok", "id_ed25519", s.code("sshok"))
		if !r.loggedIn("sshok") {
			t.Fatalf("login refused (exit %d):\n%s", r.exit, r.out)
		}
		if !strings.Contains(r.prompts, pamCodePrompt) {
			t.Errorf("askpass was not asked %q; prompts: %q", pamCodePrompt, r.prompts)
		}
	})
	t.Run("wrong code is denied", func(t *testing.T) {
		r := s.login("sshbad", "id_ed25519", s.wrongCode("sshbad"))
		if r.loggedIn("sshbad") || r.exit == 0 {
			t.Fatalf("login with a wrong code succeeded:\n%s", r.out)
		}
		if !strings.Contains(r.prompts, pamCodePrompt) {
			t.Errorf("no code prompt; prompts: %q", r.prompts)
		}
	})
	t.Run("replayed code is denied", func(t *testing.T) {
		code := s.code("sshreplay")
		if r := s.login("sshreplay", "id_ed25519", code); !r.loggedIn("sshreplay") {
			t.Fatalf("first use of the code refused (exit %d):\n%s", r.exit, r.out)
		}
		if r := s.login("sshreplay", "id_ed25519", code); r.loggedIn("sshreplay") || r.exit == 0 {
			t.Fatalf("replayed code accepted:\n%s", r.out)
		}
	})
	t.Run("locked user is denied with the message", func(t *testing.T) {
		r := s.login("sshlocked", "id_ed25519", s.code("sshlocked"))
		if r.loggedIn("sshlocked") || r.exit == 0 {
			t.Fatalf("locked user logged in:\n%s", r.out)
		}
		if !containsMessage(r.out, lockedMsg) {
			t.Errorf("the client did not see the lockout message %q:\n%s", lockedMsg, r.out)
		}
		if strings.Contains(r.prompts, pamCodePrompt) {
			t.Errorf("a locked user was asked for a code: %q\n%s", r.prompts, r.out)
		}
		// One keyboard-interactive attempt (NumberOfPasswordPrompts=1):
		// ssh stops there, as after a wrong code.
		if want := "sshlocked@127.0.0.1: Permission denied (keyboard-interactive)."; !strings.Contains(r.out, want) {
			t.Errorf("ssh did not end with %q:\n%s", want, r.out)
		}
	})
	// With ssh's default of 3 keyboard-interactive attempts, a lockout is
	// shown once and nothing is asked, not even the password the OpenSSH
	// client asks for when sshd has no method left to offer: the module's
	// PAM_ACCT_EXPIRED makes sshd refuse PAM for the rest of the connection
	// while still offering keyboard-interactive.
	t.Run("a lockout is shown once, not at every attempt", func(t *testing.T) {
		r := s.loginOpts("sshlocked", "id_ed25519", s.code("sshlocked"), []string{"-T", "-o", "NumberOfPasswordPrompts=3"})
		if r.loggedIn("sshlocked") || r.exit == 0 {
			t.Fatalf("locked user logged in:\n%s", r.out)
		}
		if n := strings.Count(r.out, strings.SplitN(lockedMsg, ":", 2)[0]); n != 1 {
			t.Errorf("the lockout message was shown %d times, want once:\n%s", n, r.out)
		}
		if r.prompts != "" {
			t.Errorf("a locked user was asked something: %q\n%s", r.prompts, r.out)
		}
	})
	t.Run("optional user without enrollment logs in without a prompt", func(t *testing.T) {
		r := s.login("sshplain", "id_ed25519", "")
		if !r.loggedIn("sshplain") {
			t.Fatalf("login refused (exit %d):\n%s", r.exit, r.out)
		}
		if r.prompts != "" {
			t.Errorf("asked for a code: %q", r.prompts)
		}
	})
	t.Run("required user without enrollment is denied with the hint", func(t *testing.T) {
		r := s.login(pamRequired, "id_ed25519", "123456")
		if r.loggedIn(pamRequired) || r.exit == 0 {
			t.Fatalf("unenrolled required user logged in:\n%s", r.out)
		}
		if !containsMessage(r.out, requiredMsg) {
			t.Errorf("the client did not see the enrollment hint %q:\n%s", requiredMsg, r.out)
		}
	})
	t.Run("without the key there is no code prompt", func(t *testing.T) {
		r := s.login("sshstranger", "stranger", s.code("sshstranger"))
		if r.loggedIn("sshstranger") || r.exit == 0 {
			t.Fatalf("login without an authorized key:\n%s", r.out)
		}
		if r.prompts != "" {
			t.Errorf("asked for a code before the key was proved: %q", r.prompts)
		}
		// The code was never sent, so it still works with the key.
		if r := s.login("sshstranger", "id_ed25519", s.code("sshstranger")); !r.loggedIn("sshstranger") {
			t.Fatalf("login with the key refused afterwards (exit %d):\n%s", r.exit, r.out)
		}
	})
	t.Run("gc stress library in the [pam] child", func(t *testing.T) {
		stress, err := os.ReadFile(buildGCStressLib(t))
		if err != nil {
			t.Fatal(err)
		}
		dst := pamGoLibDir + "/libpam_otpgate_go_gcstress.so"
		s.c.WriteFile(t, dst, stress, 0o644)
		s.setStack("golib=" + dst)
		defer s.setStack("debug")
		for i := 0; i < 3; i++ {
			user := fmt.Sprintf("sshgc%d", i)
			s.addSSHUser(user)
			s.enroll(user)
			r := s.login(user, "id_ed25519", s.code(user))
			if !r.loggedIn(user) {
				t.Fatalf("login %d with the GC stress library refused (exit %d, %v):\n%s", i, r.exit, r.elapsed, r.out)
			}
		}
	})
}

// TestPAMSSHDDaemonDown stops otpgated: every login through the module is
// refused, for enrolled users and for users who would need no code, without
// hanging; once it is back, logins work again.
func TestPAMSSHDDaemonDown(t *testing.T) {
	e := newPAMEnv(t)
	s := startSSHD(t, e, "timeout=3")
	s.addSSHUser("downenrolled")
	s.enroll("downenrolled")
	s.addSSHUser("downplain")
	if err := e.daemon.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"downenrolled", "downplain"} {
		r := s.login(user, "id_ed25519", s.code("downenrolled"))
		if r.loggedIn(user) || r.exit == 0 {
			t.Fatalf("%s logged in with otpgated stopped:\n%s", user, r.out)
		}
		if r.elapsed > 30*time.Second {
			t.Errorf("%s: denial took %v", user, r.elapsed)
		}
		if !strings.Contains(r.out, protocol.UnavailableText) {
			t.Errorf("%s: the client was not told %q:\n%s", user, protocol.UnavailableText, r.out)
		}
		if strings.Contains(r.prompts, pamCodePrompt) {
			t.Errorf("%s: asked for a code with otpgated stopped: %q", user, r.prompts)
		}
	}
	e.restartDaemon()
	if r := s.login("downenrolled", "id_ed25519", s.code("downenrolled")); !r.loggedIn("downenrolled") {
		t.Fatalf("login refused after otpgated restarted (exit %d):\n%s", r.exit, r.out)
	}
}

// buildGCStressLib builds the test-only Go library (tag otpgate_gcstress)
// with pam/Makefile into a temporary directory and returns its path.
func buildGCStressLib(t *testing.T) string {
	t.Helper()
	container.Require(t, "make", "go", "gcc")
	repo := container.RepoRoot()
	if repo == "" {
		t.Fatal("repository root not found")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "-C", filepath.Join(repo, "pam"), "gcstress", "BIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make -C pam gcstress: %v\n%s", err, out)
	}
	return filepath.Join(dir, "libpam_otpgate_go_gcstress.so")
}
