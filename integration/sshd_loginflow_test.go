//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/qrterm/qrtermtest"
	"github.com/otpgate/otpgate/otp"
)

// TestSSHDEnrollOnLogin: with policy.enroll_on_login, a required user
// without enrollment who proved a key to otpgate-sshd sees a QR code
// (decoded with zbarimg from what the client was shown) and the key,
// confirms the first code (oathtool), sees the recovery codes and is logged
// in; the next login needs a code of the new key; a wrong first code
// enrolls nothing.
func TestSSHDEnrollOnLogin(t *testing.T) {
	container.Require(t, "zbarimg")
	e := newSSHDEnvPolicy(t, "enroll_on_login = true\n", "")
	e.c.WriteFile(t, sshdWorkDir+"/askpass", []byte(enrollAskpass), 0o755)
	e.addUser(sshdRequired)

	r := e.ssh(sshdRequired, "id_ed25519", "", nil, "id -un")
	if r.exit != 0 || !strings.Contains(r.out, sshdRequired) {
		t.Fatalf("enrollment at login refused (exit %d):\n%s\nprompts:\n%s", r.exit, r.out, r.prompts)
	}
	uri := qrtermtest.DecodeTerminal(t, r.prompts)
	key, err := otp.ParseURI(strings.TrimPrefix(uri, "QR-Code:"))
	if err != nil {
		t.Fatalf("zbarimg read %q: %v", uri, err)
	}
	shown := otp.EncodeSecret(key.Secret)
	if !strings.Contains(r.prompts, "Or enter this key in the app: "+shown) {
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
	st := e.do(&protocol.Request{Op: protocol.OpAdminShow, User: sshdRequired}).Status
	if st.State != protocol.StateActive || st.RecoveryRemaining != 10 {
		t.Fatalf("after enrollment at login: %+v", st)
	}
	if st.EnrolledVia != "login" || st.EnrolledFrom != "127.0.0.1" || !strings.HasPrefix(st.EnrolledKey, "SHA256:") {
		t.Errorf("admin show after enrollment at login: via %q from %q key %q", st.EnrolledVia, st.EnrolledFrom, st.EnrolledKey)
	}

	// The next login asks for a code of the new key, and shows no QR code.
	// The confirming code is used up: answer with the next step's code,
	// which the ±1 window accepts.
	next := otp.TOTP(key.Secret, time.Now().Add(30*time.Second), key.Params)
	r = e.ssh(sshdRequired, "id_ed25519", next, nil, "id -un")
	if r.exit != 0 || !strings.Contains(r.out, sshdRequired) {
		t.Fatalf("second login with the new key's code (exit %d):\n%s", r.exit, r.out)
	}
	if !strings.Contains(r.prompts, "Verification code: ") || strings.Contains(r.prompts, "QR code") {
		t.Fatalf("second login prompts: %q", r.prompts)
	}
	// otpgated audits how; otpgate-sshd logs its verdict.
	if log := e.auditLog(); !strings.Contains(log, "reason=enrolled_at_login") {
		t.Errorf("otpgated did not audit the enrollment at login:\n%s", log)
	}
	if log := e.server.Output(); !strings.Contains(log, "second_factor=success") {
		t.Errorf("otpgate-sshd did not log the login:\n%s", log)
	}

	t.Run("a wrong first code enrolls nothing", func(t *testing.T) {
		e.do(&protocol.Request{Op: protocol.OpAdminReset, User: sshdRequired})
		// An askpass that answers every prompt, the key's too, with a wrong code.
		e.c.WriteFile(t, sshdWorkDir+"/askpass", []byte(sshdAskpass), 0o755)
		r := e.ssh(sshdRequired, "id_ed25519", "000000", nil, "id -un")
		if r.exit == 0 || !strings.Contains(r.out, "two-factor authentication was not set up") {
			t.Fatalf("wrong first code (exit %d):\n%s", r.exit, r.out)
		}
		if st := e.do(&protocol.Request{Op: protocol.OpAdminShow, User: sshdRequired}).Status; st.State == protocol.StateActive {
			t.Fatalf("a wrong first code activated the enrollment: %+v", st)
		}
	})
}
