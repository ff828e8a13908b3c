//go:build integration

package integration

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/qrterm/qrtermtest"
	"github.com/otpgate/otpgate/otp"
)

// Recovery-code notes otpgated sends with an accepted recovery code.
const (
	recoveryNoteLow  = "Recovery code accepted; only 2 left: run 'otpgate recovery-codes' to make new ones."
	recoveryNoteMany = "Recovery code accepted; 3 left."
)

// TestPAMSSHDRecoveryCode types a recovery code at OpenSSH's
// keyboard-interactive prompt (pam_otpgate): it logs in once, the client
// is told how many are left and to make new ones, and the same code is
// refused the second time.
func TestPAMSSHDRecoveryCode(t *testing.T) {
	e := newPAMEnv(t)
	s := startSSHD(t, e, "")
	s.addSSHUser("sshrecover")
	s.enroll("sshrecover", "rcva-1111-aaaa", "rcvb-2222-bbbb", "rcvc-3333-cccc")

	// With a terminal, sshd prints PAM's messages of a successful
	// authentication after login.
	r := s.loginOpts("sshrecover", "id_ed25519", "RCVA-1111-AAAA", []string{"-tt"})
	if !r.loggedIn("sshrecover") {
		t.Fatalf("recovery code refused (exit %d):\n%s", r.exit, r.out)
	}
	if !strings.Contains(r.prompts, pamCodePrompt) {
		t.Errorf("no code prompt; prompts: %q", r.prompts)
	}
	if !containsMessage(r.out, recoveryNoteLow) {
		t.Errorf("the client was not told %q:\n%s", recoveryNoteLow, r.out)
	}
	if st := s.do(&protocol.Request{Op: protocol.OpAdminShow, User: "sshrecover"}).Status; st.RecoveryRemaining != 2 {
		t.Errorf("recovery codes left after one use: %d, want 2", st.RecoveryRemaining)
	}
	if r := s.login("sshrecover", "id_ed25519", "rcva-1111-aaaa"); r.loggedIn("sshrecover") || r.exit == 0 {
		t.Fatalf("a used recovery code logged in again:\n%s", r.out)
	}
}

// TestPAMSudoRecoveryCode types a recovery code at sudo's code prompt: the
// command runs once, sudo shows how many codes are left, and the same code
// is refused afterwards.
func TestPAMSudoRecoveryCode(t *testing.T) {
	container.Require(t, "sudo", "chpasswd")
	e := newPAMEnv(t)
	e.writePAMService("sudo", pamSudoStack)
	e.enroll("sudorecover", "sdra-1111-aaaa", "sdrb-2222-bbbb", "sdrc-3333-cccc", "sdrd-4444-dddd")
	e.setPassword("sudorecover", pamSudoPassword)
	e.c.WriteFile(t, "/etc/sudoers.d/pamtest", []byte("Defaults timestamp_timeout=0\nsudorecover ALL=(ALL:ALL) ALL\n"), 0o440)

	r := e.sudo("sudorecover", nil, pamSudoPassword, "sdrb2222bbbb")
	if !r.ran() {
		t.Fatalf("sudo refused the recovery code (exit %d):\n%s", r.exit, r.out)
	}
	if !strings.Contains(r.out, recoveryNoteMany) {
		t.Errorf("sudo did not show %q:\n%s", recoveryNoteMany, r.out)
	}
	r = e.sudo("sudorecover", nil, pamSudoPassword, "sdrc-3333-cccc")
	if !r.ran() || !strings.Contains(r.out, recoveryNoteLow) {
		t.Errorf("second recovery code: want the command to run and %q (exit %d):\n%s", recoveryNoteLow, r.exit, r.out)
	}
	if r := e.sudo("sudorecover", nil, pamSudoPassword, "sdrb-2222-bbbb"); r.ran() || r.exit == 0 {
		t.Fatalf("a used recovery code ran sudo again:\n%s", r.out)
	}
}

// useDaemonConfig rewrites otpgated's configuration with extra appended to
// the suite's and restarts it.
func (e *pamEnv) useDaemonConfig(policyExtra string) {
	e.t.Helper()
	e.writeDaemonConfig(strings.Replace(pamDaemonConfig, "[policy]\n", "[policy]\n"+policyExtra, 1))
	e.restartDaemon()
}

// TestPAMSSHDRememberDevice: with policy.remember, a second OpenSSH login
// with the same key from the same address asks nothing; another address or
// another (authorized) key is asked again; otpgate forget and an admin
// reset end it.
func TestPAMSSHDRememberDevice(t *testing.T) {
	e := newPAMEnv(t)
	e.useDaemonConfig("remember = \"1h\"\n")
	s := startSSHD(t, e, "debug")
	otpgate := container.Bin(t, "otpgate")
	for _, u := range []string{"remember1", "remember2"} {
		s.addSSHUser(u)
		s.enroll(u)
	}
	// A second key that is also authorized for remember1.
	u, err := s.c.LookupUser("remember1")
	if err != nil {
		t.Fatal(err)
	}
	keys := append(s.c.ReadFile(t, u.Home+"/.ssh/authorized_keys"), s.c.ReadFile(t, pamWorkDir+"/stranger.pub")...)
	s.c.WriteFile(t, u.Home+"/.ssh/authorized_keys", keys, 0o600)
	s.c.Chown(t, u.Home+"/.ssh/authorized_keys", "remember1")

	otherAddress := []string{"-T", "-o", "BindAddress=127.0.0.2"}
	steps := []struct {
		name       string
		user, key  string
		opts       []string
		code       func() string
		wantLogin  bool
		wantPrompt bool
	}{
		{"first login gives a code", "remember1", "id_ed25519", nil, func() string { return s.code("remember1") }, true, true},
		{"same key and address: no prompt", "remember1", "id_ed25519", nil, func() string { return "" }, true, false},
		{"another address is asked again", "remember1", "id_ed25519", otherAddress, func() string { return "" }, false, true},
		{"another key is asked again", "remember1", "stranger", nil, func() string { return "" }, false, true},
		{"the remembered device still needs nothing", "remember1", "id_ed25519", nil, func() string { return "" }, true, false},
	}
	for _, st := range steps {
		r := s.loginOpts(st.user, st.key, st.code(), st.opts)
		if r.loggedIn(st.user) != st.wantLogin {
			t.Fatalf("%s: logged in %v, want %v (exit %d):\n%s", st.name, r.loggedIn(st.user), st.wantLogin, r.exit, r.out)
		}
		if got := strings.Contains(r.prompts, pamCodePrompt); got != st.wantPrompt {
			t.Fatalf("%s: prompted %v, want %v; prompts %q", st.name, got, st.wantPrompt, r.prompts)
		}
	}
	if log := e.daemon.Output(); !strings.Contains(log, "outcome=remembered reason=remembered_device") {
		t.Errorf("otpgated did not audit the remembered login:\n%s", log)
	}

	t.Run("otpgate forget by the user ends it", func(t *testing.T) {
		out := s.c.RunAs(t, "remember1", otpgate, "forget")
		if !strings.Contains(out, "Forgot 1 remembered device of remember1") {
			t.Errorf("otpgate forget printed %q", out)
		}
		r := s.login("remember1", "id_ed25519", "")
		if r.loggedIn("remember1") || !strings.Contains(r.prompts, pamCodePrompt) {
			t.Fatalf("after forget: logged in %v, prompts %q:\n%s", r.loggedIn("remember1"), r.prompts, r.out)
		}
	})
	t.Run("admin reset ends it", func(t *testing.T) {
		if r := s.login("remember2", "id_ed25519", s.code("remember2")); !r.loggedIn("remember2") {
			t.Fatalf("first login refused (exit %d):\n%s", r.exit, r.out)
		}
		if r := s.login("remember2", "id_ed25519", ""); !r.loggedIn("remember2") || r.prompts != "" {
			t.Fatalf("remembered login: logged in %v, prompts %q:\n%s", r.loggedIn("remember2"), r.prompts, r.out)
		}
		s.c.Run(t, otpgate, "admin", "reset", "remember2")
		s.enroll("remember2")
		r := s.login("remember2", "id_ed25519", "")
		if r.loggedIn("remember2") || !strings.Contains(r.prompts, pamCodePrompt) {
			t.Fatalf("after reset: logged in %v, prompts %q:\n%s", r.loggedIn("remember2"), r.prompts, r.out)
		}
	})
}

// enrollAskpass answers OpenSSH's prompts like a user at enrollment: it
// logs every prompt, and answers the one that shows the key with the
// key's current code (oathtool), any other with ASKPASS_CODE.
const enrollAskpass = `#!/bin/sh
printf '%s\n' "$1" >> "$ASKPASS_LOG"
key=$(printf '%s\n' "$1" | sed -n 's/^Or enter this key in the app: //p')
if [ -n "$key" ]; then oathtool --totp -b "$key"; else printf '%s\n' "$ASKPASS_CODE"; fi
`

// TestPAMSSHDEnrollOnLogin: with policy.enroll_on_login, a required user
// without enrollment sees a QR code (decoded with zbarimg from what the
// client was shown) and a key after the public key step, activates it with
// the first code, sees the recovery codes and logs in; the next login
// needs a code. Without a verified public key nothing is offered.
func TestPAMSSHDEnrollOnLogin(t *testing.T) {
	container.Require(t, "zbarimg")
	e := newPAMEnv(t)
	e.useDaemonConfig("enroll_on_login = true\n")
	s := startSSHD(t, e, "debug")
	s.c.WriteFile(t, pamWorkDir+"/askpass", []byte(enrollAskpass), 0o755)
	s.addSSHUser(pamRequired)

	r := s.login(pamRequired, "id_ed25519", "")
	if !r.loggedIn(pamRequired) {
		t.Fatalf("enrollment at login refused (exit %d):\n%s\nprompts:\n%s", r.exit, r.out, r.prompts)
	}
	// sshd has no terminal yet during keyboard-interactive: the module
	// reports no size and otpgated draws for 80×24.
	uri := qrtermtest.DecodeTerminal(t, r.prompts)
	key, err := otp.ParseURI(strings.TrimPrefix(uri, "QR-Code:"))
	if err != nil {
		t.Fatalf("zbarimg read %q: %v", uri, err)
	}
	shown := otp.EncodeSecret(key.Secret)
	if enrollKeyShown(t, r.prompts) != shown {
		t.Errorf("the QR code's key %s is not the key shown:\n%s", shown, r.prompts)
	}
	if !strings.Contains(r.prompts, "Your recovery codes") || !strings.Contains(r.prompts, "Press Enter once you have saved them") {
		t.Errorf("recovery codes not shown:\n%s", r.prompts)
	}
	for _, line := range strings.Split(r.prompts, "\n") {
		if n := utf8.RuneCountInString(line); n > 80 {
			t.Errorf("a line of %d columns does not fit an 80-column terminal: %q", n, line)
		}
	}
	if log := e.daemon.Output(); !strings.Contains(log, "reason=enrolled_at_login") || !strings.Contains(log, "rhost=127.0.0.1") {
		t.Errorf("otpgated did not audit the enrollment at login with the source:\n%s", log)
	}

	// The admin sees who enrolled how: at a login, from where, with which key.
	st := e.do(&protocol.Request{Op: protocol.OpAdminShow, User: pamRequired}).Status
	if st.EnrolledVia != "login" || st.EnrolledFrom != "127.0.0.1" || !strings.HasPrefix(st.EnrolledKey, "SHA256:") ||
		!strings.Contains(e.daemon.Output(), "fingerprint="+st.EnrolledKey) {
		t.Errorf("admin show after enrollment at login: via %q from %q key %q", st.EnrolledVia, st.EnrolledFrom, st.EnrolledKey)
	}

	// The second login needs a fresh code of the new key.
	e.secrets[pamRequired] = shown
	r = s.login(pamRequired, "id_ed25519", "")
	if r.loggedIn(pamRequired) || !strings.Contains(r.prompts, pamCodePrompt) || strings.Contains(r.prompts, "QR code") {
		t.Fatalf("second login without a code: logged in %v, prompts %q", r.loggedIn(pamRequired), r.prompts)
	}

	t.Run("refused when publickey did not happen first", func(t *testing.T) {
		e.do(&protocol.Request{Op: protocol.OpAdminReset, User: pamRequired})
		e.writePAMService("otp-nokey", "auth required pam_otpgate.so debug\n")
		res := e.pamtester("", "otp-nokey", pamRequired, "123456\n")
		if res.exit == 0 || strings.Contains(res.out, "QR code") {
			t.Fatalf("pamtester without SSH_AUTH_INFO_0 (exit %d):\n%s", res.exit, res.out)
		}
	})
}

// TestPAMSSHDEnrollOnLoginAfterPassword: with keyboard-interactive alone
// (no public key) and a stack whose requisite pam_unix comes before
// pam_otpgate enroll_after_password, the right password leads to the QR
// code and enrollment; a wrong password ends the stack before any QR code;
// without enroll_after_password the password is not counted.
func TestPAMSSHDEnrollOnLoginAfterPassword(t *testing.T) {
	container.Require(t, "zbarimg")
	const password = "correct horse 42"
	e := newPAMEnv(t)
	e.useDaemonConfig("enroll_on_login = true\n")
	s := startSSHDOpts(t, e, "debug", "-o", "AuthenticationMethods=keyboard-interactive")
	stack := func(args string) {
		s.writePAMService("sshd", "auth requisite pam_unix.so\nauth required pam_otpgate.so debug "+args+"\nauth required pam_permit.so\n@include common-account\n@include common-session\n")
	}
	s.c.WriteFile(t, pamWorkDir+"/askpass", []byte(enrollAskpass), 0o755)
	s.addSSHUser(pamRequired)
	e.setPassword(pamRequired, password)

	stack("enroll_after_password")
	r := s.login(pamRequired, "id_ed25519", "wrong password")
	if r.loggedIn(pamRequired) || strings.Contains(r.prompts, "QR code") || strings.Contains(e.daemon.Output(), "enroll_offered") {
		t.Fatalf("a wrong password reached the enrollment (exit %d):\n%s\nprompts:\n%s", r.exit, r.out, r.prompts)
	}

	stack("")
	r = s.login(pamRequired, "id_ed25519", password)
	if r.loggedIn(pamRequired) || strings.Contains(r.prompts, "QR code") {
		t.Fatalf("without enroll_after_password the password counted (exit %d):\nprompts:\n%s", r.exit, r.prompts)
	}

	stack("enroll_after_password")
	r = s.login(pamRequired, "id_ed25519", password)
	if !r.loggedIn(pamRequired) {
		t.Fatalf("enrollment after the password refused (exit %d):\n%s\nprompts:\n%s", r.exit, r.out, r.prompts)
	}
	if !strings.Contains(r.prompts, "Password") {
		t.Errorf("no password prompt came first:\n%s", r.prompts)
	}
	uri := qrtermtest.DecodeTerminal(t, r.prompts)
	key, err := otp.ParseURI(strings.TrimPrefix(uri, "QR-Code:"))
	if err != nil {
		t.Fatalf("zbarimg read %q: %v", uri, err)
	}
	secret := key.Secret
	st := e.do(&protocol.Request{Op: protocol.OpAdminShow, User: pamRequired}).Status
	if st.State != protocol.StateActive || st.EnrolledVia != "login" || st.EnrolledKey != "" || st.EnrolledFrom != "127.0.0.1" {
		t.Errorf("after enrolling at a password login: %+v", st)
	}
	if log := e.daemon.Output(); !regexp.MustCompile(`(?m)reason=enrolled_at_login .*factor=password$`).MatchString(log) {
		t.Errorf("otpgated did not audit the enrollment with factor=password:\n%s", log)
	}

	// The next login needs the password and a fresh code of the new key.
	e.secrets[pamRequired] = otp.EncodeSecret(secret)
	s.c.WriteFile(t, pamWorkDir+"/askpass", []byte(passwordThenCodeAskpass), 0o755)
	next := otp.TOTP(secret, time.Now().Add(30*time.Second), otp.DefaultParams())
	r = s.login(pamRequired, "id_ed25519", password+"\n"+next)
	if !r.loggedIn(pamRequired) || strings.Contains(r.prompts, "QR code") {
		t.Fatalf("second login with password and code (exit %d):\n%s\nprompts:\n%s", r.exit, r.out, r.prompts)
	}
}

// passwordThenCodeAskpass answers a prompt containing "Password" with the
// first line of ASKPASS_CODE and any other with the second.
const passwordThenCodeAskpass = `#!/bin/sh
printf '%s\n' "$1" >> "$ASKPASS_LOG"
case "$1" in
*Password*) printf '%s\n' "$ASKPASS_CODE" | sed -n 1p ;;
*) printf '%s\n' "$ASKPASS_CODE" | sed -n 2p ;;
esac
`

// enrollKeyShown returns the key that enrollment at login showed in
// prompts, in base32.
func enrollKeyShown(t *testing.T, prompts string) string {
	t.Helper()
	m := regexp.MustCompile(`Or enter this key in the app: ([A-Z2-7]+)`).FindStringSubmatch(prompts)
	if m == nil {
		t.Fatalf("no key shown:\n%s", prompts)
	}
	return m[1]
}

// TestPAMEnrollQRFitsTerminal runs pamtester on terminals of two sizes,
// with PAM_TTY naming the terminal as login and sudo do: the module
// reports the size to otpgated, which draws the QR code (read back with
// zbarimg) on the large one and shows only the key on one too small (a
// size it would draw for were the size unknown).
func TestPAMEnrollQRFitsTerminal(t *testing.T) {
	container.Require(t, "zbarimg", "script", "stty")
	const password = "correct horse 42"
	e := newPAMEnv(t)
	e.useDaemonConfig("enroll_on_login = true\n")
	e.writePAMService("otp-tty", "auth requisite pam_unix.so\nauth required pam_otpgate.so enroll_after_password\n")
	e.addUser(pamRequired)
	e.setPassword(pamRequired, password)
	onTerminal := func(cols, rows int) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), pamCmdLimit)
		defer cancel()
		// pamtester reads the answers from a file (a terminal would flush
		// what was typed ahead when echo goes off) and writes to the
		// terminal PAM_TTY names. The code typed is wrong: the enrollment
		// is not completed.
		e.c.WriteFile(t, pamWorkDir+"/tty-input", []byte(password+"\n000000\n"), 0o600)
		inner := fmt.Sprintf("stty cols %d rows %d; pamtester -I tty=$(tty) otp-tty %s authenticate < %s/tty-input",
			cols, rows, pamRequired, pamWorkDir)
		out, _ := e.c.CommandContext(ctx, "script", "-q", "-e", "-c", inner, "/dev/null").CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("pamtester on a %d×%d terminal hung:\n%s", cols, rows, out)
		}
		return strings.ReplaceAll(string(out), "\r", "")
	}

	large := onTerminal(120, 60)
	uri := qrtermtest.DecodeTerminal(t, large)
	key, err := otp.ParseURI(strings.TrimPrefix(uri, "QR-Code:"))
	if err != nil {
		t.Fatalf("zbarimg read %q: %v", uri, err)
	}
	if shown := enrollKeyShown(t, large); shown != otp.EncodeSecret(key.Secret) {
		t.Errorf("the QR code's key is not the key shown (%s):\n%s", shown, large)
	}

	small := onTerminal(40, 16)
	if _, err := qrtermtest.ExtractGrid(small); err == nil {
		t.Errorf("a QR code was drawn on a 40×16 terminal:\n%s", small)
	}
	if !strings.Contains(small, "does not fit this terminal") {
		t.Errorf("no word that the QR code does not fit:\n%s", small)
	}
	enrollKeyShown(t, small)
}
