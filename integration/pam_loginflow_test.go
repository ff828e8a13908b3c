//go:build integration

package integration

import (
	"strings"
	"testing"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
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
