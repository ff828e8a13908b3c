//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
)

// sshdPAMLog is where the test's pam_exec line records each session hook.
const sshdPAMLog = sshdWorkDir + "/pam-hooks.log"

// sshdPAMHook is run by pam_exec for open_session and close_session.
const sshdPAMHook = `#!/bin/sh
echo "$PAM_TYPE user=$PAM_USER tty=$PAM_TTY rhost=$PAM_RHOST ruser=$PAM_RUSER" >> ` + sshdPAMLog + `
`

// sshdPAMCloseFail is run by a required pam_exec line: it fails
// close_session for the user closefail and passes everything else.
const sshdPAMCloseFail = `#!/bin/sh
if [ "$PAM_USER" = closefail ] && [ "$PAM_TYPE" = close_session ]; then exit 1; fi
exit 0
`

// readRepoFile reads a file of the repository under test.
func readRepoFile(t testing.TB, rel string) []byte {
	t.Helper()
	repo := container.RepoRoot()
	if repo == "" {
		t.Fatal("repository root not found from the working directory")
	}
	data, err := os.ReadFile(filepath.Join(repo, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// installSSHDPAMService writes the packaged /etc/pam.d/otpgate-sshd into
// the container, with its pam_access line enabled and a pam_exec line
// that records the session hooks.
func installSSHDPAMService(t *testing.T, e *sshdEnv) {
	t.Helper()
	svc := string(readRepoFile(t, "packaging/pam.d/otpgate-sshd"))
	const access = "# account  required     pam_access.so\n"
	if !strings.Contains(svc, access) {
		t.Fatalf("packaging/pam.d/otpgate-sshd has no commented pam_access line %q", access)
	}
	svc = strings.Replace(svc, access, "account required pam_access.so\n", 1)
	svc += "session optional pam_exec.so quiet " + sshdWorkDir + "/pam-hook\n"
	// The session stack refuses one user: the session must not start.
	svc += "session requisite pam_succeed_if.so quiet user != nosession\n"
	// The session stack fails to close one user's session.
	svc += "session required pam_exec.so quiet " + sshdWorkDir + "/pam-close-fail\n"
	e.c.WriteFile(t, sshdWorkDir+"/pam-hook", []byte(sshdPAMHook), 0o755)
	e.c.WriteFile(t, sshdWorkDir+"/pam-close-fail", []byte(sshdPAMCloseFail), 0o755)
	e.c.WriteFile(t, "/etc/pam.d/otpgate-sshd", []byte(svc), 0o644)
}

// TestSSHDPAMAccountAndSession runs otpgate-sshd with the packaged PAM
// service and the real modules: pam_nologin, pam_unix's account checks,
// pam_access, pam_limits, pam_env, and pam_exec watching open_session and
// close_session.
func TestSSHDPAMAccountAndSession(t *testing.T) {
	container.Require(t, "chage")
	e := newSSHDEnv(t, "permit_root_login = true\n")
	installSSHDPAMService(t, e)
	for _, u := range []string{"plain", "pwchange", "inactive", "denied", "limited", "nosession", "closefail"} {
		e.addUser(u)
	}
	// root, for /etc/nologin (not enrolled: the key alone logs in).
	e.c.MkdirAll(t, "/root/.ssh", 0o700)
	e.c.WriteFile(t, "/root/.ssh/authorized_keys", e.c.ReadFile(t, sshdWorkDir+"/id_ed25519.pub"), 0o600)

	t.Run("a plain login passes the account and session stacks", func(t *testing.T) {
		r := e.ssh("plain", "id_ed25519", "", nil, "echo IN")
		if r.exit != 0 || !strings.Contains(r.out, "IN") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
	})
	t.Run("/etc/nologin refuses other users and shows its text", func(t *testing.T) {
		e.c.WriteFile(t, "/etc/nologin", []byte("Down for maintenance until 14:00.\n"), 0o644)
		defer os.Remove(e.c.Path("/etc/nologin"))
		r := e.ssh("plain", "id_ed25519", "", nil, "echo IN")
		if r.exit == 0 || strings.Contains(r.out, "IN") || !strings.Contains(r.out, "Down for maintenance until 14:00.") {
			t.Fatalf("user during nologin: exit %d, output:\n%s", r.exit, r.out)
		}
		r = e.ssh("root", "id_ed25519", "", nil, "echo IN")
		if r.exit != 0 || !strings.Contains(r.out, "IN") {
			t.Fatalf("root during nologin: exit %d, output:\n%s", r.exit, r.out)
		}
	})
	t.Run("an account whose password must be changed is refused", func(t *testing.T) {
		e.c.Run(t, "chage", "-d", "0", "pwchange")
		r := e.ssh("pwchange", "id_ed25519", "", nil, "echo IN")
		if r.exit == 0 || strings.Contains(r.out, "IN") || !strings.Contains(r.out, "change your password") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
	})
	t.Run("an account locked by password inactivity is refused", func(t *testing.T) {
		// Password changed on day 1, valid 1 day, then 1 day of grace:
		// pam_unix counts the account as expired since 1970.
		e.c.Run(t, "chage", "-d", "1", "-M", "1", "-I", "1", "inactive")
		r := e.ssh("inactive", "id_ed25519", "", nil, "echo IN")
		if r.exit == 0 || strings.Contains(r.out, "IN") || !strings.Contains(r.out, "account has expired") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
	})
	t.Run("a pam_access deny rule on the origin is honoured", func(t *testing.T) {
		e.c.WriteFile(t, "/etc/security/access.conf", []byte("-:denied:127.0.0.1\n"), 0o644)
		r := e.ssh("denied", "id_ed25519", "", nil, "echo IN")
		if r.exit == 0 || strings.Contains(r.out, "IN") || !strings.Contains(r.out, "Access denied") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
		if !e.waitLog("PAM account management refused the login", 5*time.Second) {
			t.Errorf("no refusal in the server log:\n%s", e.server.Output())
		}
		if r := e.ssh("plain", "id_ed25519", "", nil, "echo IN"); r.exit != 0 || !strings.Contains(r.out, "IN") {
			t.Fatalf("another user refused: exit %d, output:\n%s", r.exit, r.out)
		}
	})
	t.Run("pam_limits sets the session's open-file limit", func(t *testing.T) {
		e.c.WriteFile(t, "/etc/security/limits.d/otpgate-test.conf", []byte("limited soft nofile 1234\nlimited hard nofile 2345\n"), 0o644)
		r := e.ssh("limited", "id_ed25519", "", nil, "ulimit -n; ulimit -Hn")
		if r.exit != 0 || !strings.Contains(r.out, "1234\n2345\n") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
	})
	t.Run("pam_env's variables reach the session", func(t *testing.T) {
		e.c.WriteFile(t, "/etc/security/pam_env.conf", []byte("OTPGATE_PAM_TEST DEFAULT=from-pam-env\n"), 0o644)
		r := e.ssh("plain", "id_ed25519", "", nil, "echo VAR=$OTPGATE_PAM_TEST")
		if r.exit != 0 || !strings.Contains(r.out, "VAR=from-pam-env") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
	})
	t.Run("a session the session stack refuses does not start", func(t *testing.T) {
		r := e.ssh("nosession", "id_ed25519", "", nil, "echo IN")
		if r.exit == 0 || strings.Contains(r.out, "IN") || !strings.Contains(r.out, "PAM refused to open the session.") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
	})
	t.Run("a failed close_session reaches the server log", func(t *testing.T) {
		r := e.ssh("closefail", "id_ed25519", "", nil, "echo IN")
		if r.exit != 0 || !strings.Contains(r.out, "IN") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
		if !e.waitLog("closing the PAM session failed", 5*time.Second) || !e.waitLog("pam_close_session", 5*time.Second) {
			t.Errorf("no close_session failure in the server log:\n%s", e.server.Output())
		}
	})
	t.Run("open_session and close_session run with the session's items", func(t *testing.T) {
		os.Remove(e.c.Path(sshdPAMLog))
		r := e.ssh("plain", "id_ed25519", "", nil, "echo IN")
		if r.exit != 0 {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
		want := "open_session user=plain tty=ssh rhost=127.0.0.1 ruser=plain\nclose_session user=plain tty=ssh rhost=127.0.0.1 ruser=plain\n"
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, _ := os.ReadFile(e.c.Path(sshdPAMLog))
			if string(got) == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("session hooks:\n%s\nwant:\n%s", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// A terminal session names its terminal.
		os.Remove(e.c.Path(sshdPAMLog))
		r = e.ssh("plain", "id_ed25519", "", []string{"-tt"}, "tty")
		if r.exit != 0 {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
		deadline = time.Now().Add(5 * time.Second)
		for {
			got, _ := os.ReadFile(e.c.Path(sshdPAMLog))
			if strings.Count(string(got), "tty=/dev/pts/") == 2 && strings.HasPrefix(string(got), "open_session") &&
				strings.Contains(string(got), "\nclose_session") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("session hooks of a terminal session:\n%s", got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
