//go:build integration

package integration

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// Users of the alias suites: an enrolled account, and a second name for
// it made with `useradd -o` (same uid, primary group and home, so the same
// authorized_keys and the same Unix identity).
const (
	aliasOwner = "acctowner"
	aliasName  = "acctalias"
)

// addAlias gives user's account a second name with `useradd -o`: the
// same uid, primary group and home directory.
func addAlias(t testing.TB, c *container.Container, user, alias string) {
	t.Helper()
	container.Require(t, "useradd")
	u, err := c.LookupUser(user)
	if err != nil {
		t.Fatal(err)
	}
	c.Run(t, "useradd", "-o", "-u", strconv.Itoa(u.UID), "-g", strconv.Itoa(u.GID),
		"-d", u.Home, "-M", "-s", "/bin/bash", "-p", "*", alias)
	a, err := c.LookupUser(alias)
	if err != nil {
		t.Fatal(err)
	}
	if a.UID != u.UID || a.Home != u.Home {
		t.Fatalf("alias %s: uid %d home %s, want those of %s (%d, %s)", alias, a.UID, a.Home, user, u.UID, u.Home)
	}
}

// auditNamesAccount checks that otpgated's audit log has a decision of op
// with outcome for the account owner that names the alias as typed.
func auditNamesAccount(t *testing.T, log, op, outcome, owner, alias string) {
	t.Helper()
	re := regexp.MustCompile(`op=` + op + ` user=` + owner + ` [^\n]*outcome=` + outcome + `[^\n]*login_name=` + alias)
	if !re.MatchString(log) {
		t.Errorf("no audit line for op=%s user=%s outcome=%s login_name=%s in the daemon log:\n%s", op, owner, outcome, alias, log)
	}
	if strings.Contains(log, "user="+alias+" ") {
		t.Errorf("an audit line keys the decision by the alias %s instead of the account %s:\n%s", alias, owner, log)
	}
}

// TestAliasOpenSSHAndSudo logs in over OpenSSH + pam_otpgate and runs sudo
// under a second name (useradd -o) of an enrolled account: every name of
// the account needs the account's code, and the names share its replay
// state.
func TestAliasOpenSSHAndSudo(t *testing.T) {
	container.Require(t, "sudo", "chpasswd", "useradd")
	e := newPAMEnv(t)
	s := startSSHD(t, e, "")
	s.addSSHUser(aliasOwner)
	s.enroll(aliasOwner)
	addAlias(t, e.c, aliasOwner, aliasName)

	t.Run("OpenSSH: the alias without a code is refused", func(t *testing.T) {
		r := s.login(aliasName, "id_ed25519", "")
		if r.loggedIn(aliasName) || r.exit == 0 {
			t.Fatalf("the alias of an enrolled account logged in with the key alone:\n%s", r.out)
		}
		if !strings.Contains(r.prompts, pamCodePrompt) {
			t.Errorf("the alias was not asked for a code; prompts: %q", r.prompts)
		}
	})
	t.Run("OpenSSH: the alias with a wrong code is refused", func(t *testing.T) {
		r := s.login(aliasName, "id_ed25519", s.wrongCode(aliasOwner))
		if r.loggedIn(aliasName) || r.exit == 0 {
			t.Fatalf("the alias logged in with a wrong code:\n%s", r.out)
		}
	})
	t.Run("OpenSSH: the alias logs in with the account's code, which the account's name cannot reuse", func(t *testing.T) {
		// The two refusals above came from 127.0.0.1 and blocked that
		// address for the account (per_source_max_failures): clear it.
		e.do(&protocol.Request{Op: protocol.OpAdminUnlock, User: aliasOwner})
		code := s.code(aliasOwner)
		if r := s.login(aliasName, "id_ed25519", code); !r.loggedIn(aliasName) {
			t.Fatalf("the alias was refused with the account's code (exit %d):\n%s", r.exit, r.out)
		}
		if r := s.login(aliasOwner, "id_ed25519", code); r.loggedIn(aliasOwner) || r.exit == 0 {
			t.Fatalf("a code used through the alias was accepted again for the account's name:\n%s", r.out)
		}
		auditNamesAccount(t, e.daemon.Output(), "verify", "accept", aliasOwner, aliasName)
	})

	t.Run("sudo", func(t *testing.T) { testAliasSudo(t, e) })
}

// testAliasSudo runs sudo with a second name of an enrolled account on
// both sides of the authentication: sudo run by the alias (sudo names the
// invoking user by its uid), and `sudo -u alias` under targetpw, where
// sudo authenticates the target as named on its command line.
func testAliasSudo(t *testing.T, e *pamEnv) {
	const (
		invoker, invokerAlias = "sudoowner", "sudoalias"
		target, targetAlias   = "tgtowner", "tgtalias"
		caller                = "sudocaller"
	)
	e.writePAMService("sudo", pamSudoStack)
	for _, pair := range [][2]string{{invoker, invokerAlias}, {target, targetAlias}} {
		e.enroll(pair[0])
		addAlias(t, e.c, pair[0], pair[1])
		e.setPassword(pair[0], pamSudoPassword)
		e.setPassword(pair[1], pamSudoPassword)
	}
	e.addUser(caller)
	e.setPassword(caller, pamSudoPassword)
	e.c.WriteFile(t, "/etc/sudoers.d/aliastest", []byte("Defaults timestamp_timeout=0\n"+
		"Defaults:"+caller+" targetpw\n"+caller+" ALL=(ALL:ALL) ALL\n"+
		invoker+" ALL=(ALL:ALL) ALL\n"+invokerAlias+" ALL=(ALL:ALL) ALL\n"), 0o440)
	// What a login under the alias leaves: its uid, USER and LOGNAME.
	aliasEnv := []string{"USER=" + invokerAlias, "LOGNAME=" + invokerAlias}
	asTarget := []string{"-u", targetAlias}
	ranAs := func(r sudoResult, user string) bool {
		return r.exit == 0 && strings.Contains(r.out, "SUDO-RAN-AS-"+user)
	}

	t.Run("the alias with the password alone is refused", func(t *testing.T) {
		r := e.sudo(invokerAlias, aliasEnv, pamSudoPassword, "")
		if r.ran() || r.exit == 0 {
			t.Fatalf("sudo ran for the alias without a code:\n%s", r.out)
		}
		if !strings.Contains(r.out, pamCodePrompt) {
			t.Errorf("sudo did not ask the alias for a code:\n%s", r.out)
		}
	})
	t.Run("the alias with the account's code runs the command", func(t *testing.T) {
		if r := e.sudo(invokerAlias, aliasEnv, pamSudoPassword, e.code(invoker)); !r.ran() {
			t.Fatalf("sudo refused the alias with the account's code (exit %d):\n%s", r.exit, r.out)
		}
	})
	t.Run("targetpw: the alias's password alone is refused", func(t *testing.T) {
		r := e.sudoOpts(caller, nil, asTarget, pamSudoPassword, "")
		if ranAs(r, target) || r.exit == 0 {
			t.Fatalf("sudo -u %s ran on the alias's password alone:\n%s", targetAlias, r.out)
		}
		if !strings.Contains(r.out, pamCodePrompt) {
			t.Errorf("sudo -u %s did not ask for a code:\n%s", targetAlias, r.out)
		}
	})
	t.Run("targetpw: the alias's password and the account's code run the command", func(t *testing.T) {
		if r := e.sudoOpts(caller, nil, asTarget, pamSudoPassword, e.code(target)); !ranAs(r, target) {
			t.Fatalf("sudo -u %s refused with the account's code (exit %d):\n%s", targetAlias, r.exit, r.out)
		}
		auditNamesAccount(t, e.daemon.Output(), "verify", "accept", target, targetAlias)
	})
}

// TestAliasOtpgateSSHD logs in to otpgate-sshd under a second name
// (useradd -o) of an enrolled account: the key alone is not enough.
func TestAliasOtpgateSSHD(t *testing.T) {
	e := newSSHDEnv(t, "")
	e.addUser(aliasOwner)
	e.enroll(aliasOwner)
	addAlias(t, e.c, aliasOwner, aliasName)

	t.Run("the alias without a code is refused", func(t *testing.T) {
		r := e.ssh(aliasName, "id_ed25519", "", nil, "echo IN")
		if r.exit != 255 || strings.Contains(r.out, "IN") {
			t.Fatalf("the alias of an enrolled account logged in with the key alone: exit %d\n%s", r.exit, r.out)
		}
		if !strings.Contains(r.prompts, sshdPrompt) {
			t.Errorf("the alias was not asked for a code; prompts: %q", r.prompts)
		}
	})
	t.Run("the alias logs in with the account's code, which the account's name cannot reuse", func(t *testing.T) {
		code := e.code(aliasOwner)
		if r := e.ssh(aliasName, "id_ed25519", code, nil, "echo IN"); r.exit != 0 || !strings.Contains(r.out, "IN") {
			t.Fatalf("the alias was refused with the account's code: exit %d\n%s", r.exit, r.out)
		}
		if r := e.ssh(aliasOwner, "id_ed25519", code, nil, "echo IN"); r.exit != 255 || strings.Contains(r.out, "IN") {
			t.Fatalf("a code used through the alias was accepted again for the account's name: exit %d\n%s", r.exit, r.out)
		}
	})
}

// TestAliasImportAllUsers imports every user's google-authenticator file
// where a second name shares the enrolled account's home (so its file):
// both names import, as the one account, and the alias needs its code.
func TestAliasImportAllUsers(t *testing.T) {
	e := newCLIEnv(t)
	e.c.AddUser(t, aliasOwner)
	addAlias(t, e.c, aliasOwner, aliasName)
	secret := otp.EncodeSecret(randomSecret(t, 20))
	e.c.WriteFile(t, "/home/"+aliasOwner+"/.google_authenticator", []byte(secret+"\n\" TOTP_AUTH\n"), 0o400)
	e.c.Chown(t, "/home/"+aliasOwner+"/.google_authenticator", aliasOwner)

	out, code := e.otpgate("root", "", nil, "admin", "import", "--from", "google-authenticator", "--all-users")
	if code != 0 {
		t.Fatalf("import --all-users: exit %d\n%s", code, out)
	}
	for _, name := range []string{aliasOwner, aliasName} {
		if st := e.status(name); st.User != aliasOwner || st.State != protocol.StateActive {
			t.Errorf("status %s after the import: %+v, want %s's active enrollment", name, st, aliasOwner)
		}
	}
	if v := e.verify(aliasName, e.oathtool(secret)); stepOutcome(v) != protocol.OutcomeAccept {
		t.Errorf("the alias with the imported code: %+v", v)
	}
}
