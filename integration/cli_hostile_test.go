//go:build integration

package integration

import (
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// TestCLIHostileHome: for the CLI, mallory's home is full of
// symlinks to /etc/shadow and /root, and otpgate runs with HOME=/root, with
// HOME unset, with a TERM holding escape sequences and an odd LANG. Nothing
// outside mallory's reach may change, and the escape sequences never reach
// the output.
func TestCLIHostileHome(t *testing.T) {
	e := newCLIEnv(t)
	e.c.AddUser(t, "mallory")
	for link, target := range map[string]string{
		".otpgate": "/etc/shadow", ".google_authenticator": "/etc/shadow", "codes.txt": "/etc/shadow",
		"qr.png": "/etc/shadow", ".config": "/root",
	} {
		e.c.RunAs(t, "mallory", "ln", "-s", target, "/home/mallory/"+link)
	}
	fingerprint := func() string {
		return e.c.Run(t, "sha256sum", "/etc/shadow") + e.c.Run(t, "ls", "-la", "--time-style=full-iso", "/root")
	}
	before := fingerprint()
	hostileTerm := "xterm\x1b]0;owned\x07\x1b[2J"
	envs := [][]string{
		{"HOME=/root", "TERM=" + hostileTerm, "LANG=xx_YY.ISO-8859-99"},
		{"HOME", "TERM=" + hostileTerm},
		{"HOME=/home/mallory/.config", "USER=root", "LOGNAME=root"},
	}
	for _, env := range envs {
		out, code := e.otpgate("mallory", "", env, "status")
		if code != 0 || !strings.Contains(out, "User:             mallory") {
			t.Errorf("status with %q: exit %d\n%s", env, code, out)
		}
		if strings.Contains(out, "\x1b") {
			t.Errorf("an escape sequence reached the output with %q", env)
		}
	}

	// The PNG path is a symlink to /etc/shadow: refused, nothing begun.
	out, code := e.otpgate("mallory", "", envs[0], "enroll", "--qr=png", "~/qr.png")
	if code != 1 || !strings.Contains(out, "/home/mallory/qr.png is a symbolic link (to /etc/shadow)") {
		t.Errorf("enroll --qr=png onto a symlink: exit %d\n%s", code, out)
	}

	// A full enrollment with the hostile environment; saving the recovery
	// codes onto the symlink is refused, then skipped.
	s := e.start("mallory", envs[0], "enroll")
	screen := s.waitFor("Enter the code shown in your app to finish:")
	if strings.Contains(screen, "\x1b") {
		t.Errorf("escape sequences in a non-terminal enroll output")
	}
	key, err := otp.ParseURI(field(t, screen, "URI"))
	if err != nil {
		t.Fatal(err)
	}
	s.send(e.oathtool(otp.EncodeSecret(key.Secret)))
	s.waitFor("Save them to a file?")
	s.send("~/codes.txt")
	s.waitFor("is a symbolic link")
	s.send("")
	out, code = s.wait()
	if code != 0 || !strings.Contains(out, "/home/mallory/codes.txt is a symbolic link (to /etc/shadow): otpgate never writes through a symbolic link") {
		t.Errorf("enroll: exit %d\n%s", code, out)
	}
	if st := e.status("mallory"); st.State != protocol.StateActive {
		t.Errorf("mallory not active: %q", st.State)
	}
	// disable as mallory with HOME unset, wrong codes: refused.
	out, code = e.otpgate("mallory", "000000\n000001\n000002\n", envs[1], "disable")
	if code != 1 {
		t.Errorf("disable with wrong codes: exit %d\n%s", code, out)
	}
	// Root importing mallory's symlinked file does not follow it.
	out, code = e.otpgate("root", "", nil, "admin", "import", "--from", "google-authenticator", "--all-users", "--dry-run")
	if code != 1 || !strings.Contains(out, "/home/mallory/.google_authenticator is a symbolic link") || strings.Contains(out, "root:") {
		t.Errorf("import of a symlinked file: exit %d\n%s", code, out)
	}

	if after := fingerprint(); after != before {
		t.Errorf("/etc/shadow or /root changed:\nbefore %s\nafter %s", before, after)
	}
	if found := strings.TrimSpace(e.c.Run(t, "find", "/home", "-user", "root", "-not", "-path", "/home")); found != "" {
		t.Errorf("root-owned files under /home: %s", found)
	}
}
