//go:build integration

package integration

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

func randomSecret(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCLIImportGoogleAuthenticator imports a real ~/.google_authenticator
// (0400, owned by its user), refuses a symlinked one without importing
// anybody, and checks that oathtool's code and a scratch code for the
// imported secret are accepted.
func TestCLIImportGoogleAuthenticator(t *testing.T) {
	e := newCLIEnv(t)
	e.c.AddUser(t, "bob")
	e.c.AddUser(t, "carol")
	secret := otp.EncodeSecret(randomSecret(t, 20))
	scratch := []string{"48213579", "90412776", "31337001", "77123400", "10293847"}
	file := secret + "\n\" RATE_LIMIT 3 30 1700000000\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n" + strings.Join(scratch, "\n") + "\n"
	e.c.WriteFile(t, "/home/bob/.google_authenticator", []byte(file), 0o400)
	e.c.Chown(t, "/home/bob/.google_authenticator", "bob")
	// carol points hers at /etc/shadow, as an attacker would.
	e.c.RunAs(t, "carol", "ln", "-s", "/etc/shadow", "/home/carol/.google_authenticator")

	out, code := e.otpgate("root", "", nil, "admin", "import", "--from", "google-authenticator", "--user", "bob,carol")
	if code != 1 || !strings.Contains(out, "/home/carol/.google_authenticator: carol: /home/carol/.google_authenticator is a symbolic link: refusing to follow it") ||
		!strings.Contains(out, "nothing imported: 1 problem(s)") {
		t.Fatalf("import with a symlinked file: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "root:") || strings.Contains(out, secret[:8]) {
		t.Errorf("shadow or secret content reached the output:\n%s", out)
	}
	if st := e.status("bob"); st.State != protocol.StateNone {
		t.Fatalf("bob was imported although the import failed: %q", st.State)
	}

	out, code = e.otpgate("root", "", nil, "admin", "import", "--from", "google-authenticator", "--user", "bob", "--dry-run")
	if code != 0 || !strings.Contains(out, "Would import bob from /home/bob/.google_authenticator: SHA1, 6 digits, 30 s, 5 recovery code(s)") ||
		!strings.Contains(out, "note: WINDOW_SIZE 17 (±8 steps) is not honoured") || !strings.Contains(out, "note: RATE_LIMIT 3 logins per 30 s") {
		t.Errorf("dry run: exit %d\n%s", code, out)
	}
	if st := e.status("bob"); st.State != protocol.StateNone {
		t.Fatalf("--dry-run imported bob: %q", st.State)
	}

	out, code = e.otpgate("root", "", nil, "admin", "import", "--from", "google-authenticator", "--user", "bob")
	if code != 0 || !strings.Contains(out, "Imported 1 user(s).") {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("the secret was printed:\n%s", out)
	}
	if st := e.status("bob"); st.State != protocol.StateActive || st.RecoveryRemaining != 5 {
		t.Fatalf("after import: %+v", st)
	}
	// Importing again is refused without --replace, and allowed with it.
	out, code = e.otpgate("root", "", nil, "admin", "import", "--from", "google-authenticator", "--user", "bob")
	if code != 1 || !strings.Contains(out, "bob is already enrolled in otpgate (use --replace to overwrite)") {
		t.Errorf("second import: exit %d\n%s", code, out)
	}

	// A scratch code works once, as a recovery code.
	if v := e.verify("bob", scratch[2]); stepOutcome(v) != protocol.OutcomeAccept || recoveryLeft(v) < 0 || recoveryLeft(v) != 4 {
		t.Errorf("scratch code: %+v", v)
	}
	// oathtool's code for the imported secret is accepted by otpgated,
	// through otpgate itself: bob makes new recovery codes with it.
	out, code = e.otpgate("bob", e.oathtool(secret)+"\n\n", nil, "recovery-codes")
	if code != 0 || len(recoveryCodes(out)) != 10 {
		t.Errorf("recovery-codes with oathtool's code: exit %d\n%s", code, out)
	}
	if v := e.verify("bob", scratch[3]); stepOutcome(v) == protocol.OutcomeAccept {
		t.Errorf("an old scratch code still works after regeneration")
	}
}

// TestCLIImportOATH imports a pam_oath usersfile, all or nothing.
func TestCLIImportOATH(t *testing.T) {
	e := newCLIEnv(t)
	e.c.AddUser(t, "dave")
	e.c.AddUser(t, "erin")
	key := randomSecret(t, 20)
	good := "# usersfile\nHOTP/T30/8 dave - " + hex.EncodeToString(key) + "\n"
	e.c.WriteFile(t, "/etc/users.oath", []byte(good+"HOTP erin - "+hex.EncodeToString(randomSecret(t, 20))+" 0\n"), 0o600)

	out, code := e.otpgate("root", "", nil, "admin", "import", "--from", "oath", "/etc/users.oath")
	if code != 1 || !strings.Contains(out, "/etc/users.oath:3: token type HOTP is counter-based") {
		t.Fatalf("usersfile with an HOTP line: exit %d\n%s", code, out)
	}
	if st := e.status("dave"); st.State != protocol.StateNone {
		t.Fatalf("dave imported from a rejected file: %q", st.State)
	}

	e.c.WriteFile(t, "/etc/users.oath", []byte(good), 0o600)
	out, code = e.otpgate("root", "", nil, "admin", "import", "--from", "oath", "/etc/users.oath")
	if code != 0 || !strings.Contains(out, "Imported dave from /etc/users.oath:2: SHA1, 8 digits, 30 s") {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	code8 := e.oathtool(otp.EncodeSecret(key), "--digits=8")
	if v := e.verify("dave", code8); stepOutcome(v) != protocol.OutcomeAccept {
		t.Errorf("oathtool's 8-digit code for the imported secret: %+v", v)
	}
	out, code = e.otpgate("dave", "", nil, "admin", "import", "--from", "oath", "/etc/users.oath")
	if code != 4 {
		t.Errorf("import as dave: exit %d\n%s", code, out)
	}
}
