//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"
)

// passwordOpts make the ssh client log in with a password alone (answered
// through SSH_ASKPASS like a code): no key is offered.
var passwordOpts = []string{"-T", "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no"}

// TestSetupSSHDRunning runs otpgate setup sshd --apply while the system
// sshd runs with Debian 12's stock sshd_config (PasswordAuthentication
// yes by default) on port 22, as on a fresh server. Right after the
// command, before any manual step, a password alone must not log anyone
// in: not a wrong password for a user who is not enrolled, not an
// enrolled user's current code typed as the password. Then the key and a
// code log in.
func TestSetupSSHDRunning(t *testing.T) {
	e := newSetupEnv(t)
	e.port = 22
	e.addAdmin("admin1")
	e.enroll("admin1")
	e.addSSHUser("carol") // never enrolled
	e.setPassword("carol", "carol-password")

	// Debian's sshd as its unit starts it: its own configuration, PidFile
	// /run/sshd.pid, port 22.
	e.c.Background(t, "/usr/sbin/sshd", "-D", "-e")
	e.c.WaitForPort(t, 22, 15*time.Second)
	if r := e.loginOpts("carol", "stranger", "carol-password", passwordOpts); !r.loggedIn("carol") {
		t.Fatalf("before setup, the stock sshd refuses carol's password (exit %d): the test does not start from Debian's defaults:\n%s", r.exit, r.out)
	}

	out, code := e.setup("admin1", "sshd", "--apply")
	if code != 0 {
		t.Fatalf("setup sshd --apply: exit %d:\n%s", code, out)
	}
	for _, w := range []string{"wrote /etc/ssh/sshd_config.d/00-otpgate.conf (new file)", "reloaded sshd (kill -HUP ",
		"127.0.0.1:22 offers publickey to admin1", "wrote /etc/pam.d/sshd (backup: "} {
		if !strings.Contains(out, w) {
			t.Errorf("setup does not say %q:\n%s", w, out)
		}
	}
	if cfg, pam := strings.Index(out, "wrote /etc/ssh/sshd_config.d/"), strings.Index(out, "wrote /etc/pam.d/sshd"); cfg < 0 || pam < cfg {
		t.Errorf("setup did not write sshd_config before the PAM stack:\n%s", out)
	}
	if s := string(e.c.ReadFile(t, "/etc/pam.d/sshd")); !strings.Contains(s, "pam_otpgate.so require_publickey\n") {
		t.Errorf("/etc/pam.d/sshd has no require_publickey:\n%s", s)
	}

	t.Run("before any manual step: a wrong password for a user who is not enrolled is refused", func(t *testing.T) {
		if r := e.loginOpts("carol", "stranger", "not-carols-password", passwordOpts); r.loggedIn("carol") || r.exit == 0 {
			t.Fatalf("carol logged in with a wrong password:\n%s", r.out)
		}
		if r := e.loginOpts("carol", "stranger", "carol-password", passwordOpts); r.loggedIn("carol") || r.exit == 0 {
			t.Fatalf("carol logged in with her password alone:\n%s", r.out)
		}
	})
	t.Run("before any manual step: an enrolled user's current code as the password is refused", func(t *testing.T) {
		if r := e.loginOpts("admin1", "stranger", e.code("admin1"), passwordOpts); r.loggedIn("admin1") || r.exit == 0 {
			t.Fatalf("admin1 logged in with a code as the password, without the key:\n%s", r.out)
		}
	})
	t.Run("key and code log in", func(t *testing.T) {
		r := e.login("admin1", "id_ed25519", e.code("admin1"))
		if !r.loggedIn("admin1") {
			t.Fatalf("key and code refused (exit %d):\n%s", r.exit, r.out)
		}
		if !strings.Contains(r.prompts, pamCodePrompt) {
			t.Errorf("no code prompt: %q", r.prompts)
		}
	})
}

// TestPAMSSHDRequirePublickey runs pam_otpgate with and without
// require_publickey under an sshd that still takes passwords and
// keyboard-interactive alone (the stack written by hand before
// sshd_config): with the argument, a login for which sshd verified no key
// is refused, whatever otpgated would answer; with a key, the code is
// asked as usual.
func TestPAMSSHDRequirePublickey(t *testing.T) {
	e := newPAMEnv(t)
	s := startSSHDOpts(t, e, "require_publickey", "-o", "PasswordAuthentication=yes", "-o", "AuthenticationMethods=any")
	s.addSSHUser("alice")
	s.enroll("alice")
	s.addSSHUser("bob") // never enrolled
	s.setPassword("bob", "bob-password")
	kbdint := []string{"-T", "-o", "PreferredAuthentications=keyboard-interactive", "-o", "PubkeyAuthentication=no"}

	t.Run("without the argument a password alone gets a user who is not enrolled in", func(t *testing.T) {
		s.setStack("")
		defer s.setStack("require_publickey")
		if r := s.loginOpts("bob", "stranger", "wrong", passwordOpts); !r.loggedIn("bob") {
			t.Fatalf("the hazard this argument closes did not show (exit %d):\n%s", r.exit, r.out)
		}
	})
	t.Run("a password alone is refused", func(t *testing.T) {
		if r := s.loginOpts("bob", "stranger", "wrong", passwordOpts); r.loggedIn("bob") || r.exit == 0 {
			t.Fatalf("bob logged in with a wrong password:\n%s", r.out)
		}
		if r := s.loginOpts("alice", "stranger", s.code("alice"), passwordOpts); r.loggedIn("alice") || r.exit == 0 {
			t.Fatalf("alice logged in with her code as the password:\n%s", r.out)
		}
	})
	t.Run("keyboard-interactive alone is refused", func(t *testing.T) {
		r := s.loginOpts("alice", "stranger", s.code("alice"), kbdint)
		if r.loggedIn("alice") || r.exit == 0 {
			t.Fatalf("alice logged in with keyboard-interactive alone:\n%s", r.out)
		}
		if r.prompts != "" {
			t.Errorf("asked %q without a key", r.prompts)
		}
		if r := s.loginOpts("bob", "stranger", "", kbdint); r.loggedIn("bob") || r.exit == 0 {
			t.Fatalf("bob logged in with keyboard-interactive alone:\n%s", r.out)
		}
	})
	t.Run("the key, then the code", func(t *testing.T) {
		if r := s.login("alice", "id_ed25519", s.code("alice")); !r.loggedIn("alice") {
			t.Fatalf("refused (exit %d):\n%s", r.exit, r.out)
		}
	})
}

// TestSetupSSHDCannotReload runs otpgate setup sshd --apply while an sshd
// that the PidFile of sshd -T does not name answers on port 22 with
// Debian's stock configuration: setup cannot reload it, sees from outside
// that it still takes passwords, and restores sshd_config without ever
// writing /etc/pam.d/sshd.
func TestSetupSSHDCannotReload(t *testing.T) {
	e := newSetupEnv(t)
	e.addAdmin("admin1")
	e.enroll("admin1")
	e.c.Background(t, "/usr/sbin/sshd", "-D", "-e", "-o", "PidFile="+pamWorkDir+"/elsewhere.pid")
	e.c.WaitForPort(t, 22, 15*time.Second)
	before := e.snapshot()
	out, code := e.setup("admin1", "sshd", "--apply")
	if code != 1 {
		t.Errorf("exit %d, want 1:\n%s", code, out)
	}
	for _, w := range []string{"wrote /etc/ssh/sshd_config.d/00-otpgate.conf (new file)",
		"on 127.0.0.1:22 sshd offers publickey,password to admin1", "setup cannot reload it", "restored every file as it was"} {
		if !strings.Contains(out, w) {
			t.Errorf("setup does not say %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "wrote /etc/pam.d/sshd") {
		t.Errorf("setup wrote the PAM stack under an sshd that takes passwords:\n%s", out)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("files changed although setup failed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
