//go:build integration

package integration

import (
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/qrterm/qrtermtest"
	"github.com/otpgate/otpgate/otp"
)

// TestCLIAdminEnrollPlantedSymlinks: root runs admin enroll for victim, who
// planted symbolic links to /etc/sudoers.d (a root-only directory that sudo
// reads) in their home: ~/d and ~/real/deeper. Whether root types "~/…"
// (now its own home, as a shell would expand it) or the victim's path, the
// QR code PNG and the recovery codes are never written through a link:
// each attempt is refused with a message naming the link, the PNG refusal
// begins no enrollment, and in the end /etc/sudoers.d is unchanged and no
// root-owned file lies in victim's home.
func TestCLIAdminEnrollPlantedSymlinks(t *testing.T) {
	e := newCLIEnv(t)
	e.c.AddUser(t, "victim")
	e.c.MkdirAll(t, "/etc/sudoers.d", 0o750)
	e.c.RunAs(t, "victim", "ln", "-s", "/etc/sudoers.d", "/home/victim/d")
	e.c.RunAs(t, "victim", "mkdir", "/home/victim/real")
	e.c.RunAs(t, "victim", "ln", "-s", "/etc/sudoers.d", "/home/victim/real/deeper")
	listing := func() string {
		return e.c.Run(t, "find", "/etc/sudoers.d", "-mindepth", "1", "-printf", "%p %u %m\n")
	}
	before := listing()
	// Checked even when an assertion below stops the test early.
	t.Cleanup(func() {
		if after := listing(); after != before {
			t.Errorf("/etc/sudoers.d changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if found := strings.TrimSpace(e.c.Run(t, "find", "/home/victim", "-user", "root")); found != "" {
			t.Errorf("root-owned files in victim's home:\n%s", found)
		}
	})

	// --qr=png: each refusal comes before anything is asked of otpgated.
	for _, tt := range []struct{ path, want string }{
		{"~/d/x", "open /root/d: no such file or directory"},
		{"/home/victim/d/x", "/home/victim/d is a symbolic link (to /etc/sudoers.d): otpgate writes files only through real directories"},
		{"/home/victim/real/deeper/x", "/home/victim/real/deeper is a symbolic link (to /etc/sudoers.d)"},
	} {
		out, code := e.otpgate("root", "", nil, "admin", "enroll", "victim", "--qr=png", tt.path)
		if code != 1 || !strings.Contains(out, tt.want) {
			t.Errorf("admin enroll victim --qr=png %s: exit %d, want 1 and %q:\n%s", tt.path, code, tt.want, out)
		}
		if st := e.status("victim"); st.State != protocol.StateNone {
			t.Errorf("a refused PNG path %s still began an enrollment: %q", tt.path, st.State)
		}
	}

	// A full admin enrollment: "~" is root's home for the PNG and for the
	// recovery codes; the victim's links are refused at the save prompt
	// and the question is asked again.
	s := e.start("root", nil, "admin", "enroll", "victim", "--qr=png", "~/victim-qr.png")
	screen := s.waitFor("Enter the code shown in your app to finish:")
	if !strings.Contains(screen, "QR code written to /root/victim-qr.png (mode 0600)") {
		t.Errorf("PNG not written to root's home:\n%s", screen)
	}
	uri := field(t, screen, "URI")
	if got := qrtermtest.Zbarimg(t, e.c.Path("/root/victim-qr.png")); got != uri {
		t.Errorf("PNG decodes to %q, URI is %q", got, uri)
	}
	key, err := otp.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	s.send(e.oathtool(otp.EncodeSecret(key.Secret)))
	s.waitFor("Save them to a file?")
	for _, tt := range []struct{ answer, want string }{
		{"/home/victim/d/codes", "/home/victim/d is a symbolic link (to /etc/sudoers.d)"},
		{"/home/victim/real/deeper/codes", "/home/victim/real/deeper is a symbolic link (to /etc/sudoers.d)"},
		{"~/victim-codes", "Saved to /root/victim-codes (mode 0600)."},
	} {
		s.send(tt.answer)
		s.waitFor(tt.want)
	}
	out, code := s.wait()
	if code != 0 {
		t.Errorf("admin enroll: exit %d\n%s", code, out)
	}
	if st := e.status("victim"); st.State != protocol.StateActive {
		t.Errorf("victim not active after the enrollment: %q", st.State)
	}
	saved := string(e.c.ReadFile(t, "/root/victim-codes"))
	codes := recoveryCodes(out)
	if len(codes) == 0 {
		t.Fatalf("no recovery codes printed:\n%s", out)
	}
	for _, c := range codes {
		if !strings.Contains(saved, c+"\n") {
			t.Errorf("recovery code %s not in /root/victim-codes:\n%s", c, saved)
		}
	}
	for _, f := range []string{"/root/victim-qr.png", "/root/victim-codes"} {
		if got := strings.TrimSpace(e.c.Run(t, "stat", "-c", "%U %a %F", f)); got != "root 600 regular file" {
			t.Errorf("%s: %s, want root 600 regular file", f, got)
		}
	}

	// "~" at the save prompt of a forced re-enrollment: root's home again.
	s = e.start("root", nil, "admin", "enroll", "victim", "--force", "--no-qr")
	screen = s.waitFor("Enter the code shown in your app to finish:")
	key, err = otp.ParseURI(field(t, screen, "URI"))
	if err != nil {
		t.Fatal(err)
	}
	s.send(e.oathtool(otp.EncodeSecret(key.Secret)))
	s.waitFor("Save them to a file?")
	s.send("~/d/codes")
	s.waitFor("open /root/d: no such file or directory")
	s.send("")
	if out, code := s.wait(); code != 0 || !strings.Contains(out, "Not saved.") {
		t.Errorf("forced re-enrollment: exit %d\n%s", code, out)
	}
}
