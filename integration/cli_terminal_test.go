//go:build integration

package integration

import (
	"strconv"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/qrterm/qrtermtest"
	"github.com/otpgate/otpgate/otp"
)

// tmuxConf turns tmux's status line off, so that a pane is the whole
// window: an 80×24 session is an 80×24 terminal.
const tmuxConf = "/etc/otpgate-test-tmux.conf"

// newPane starts cmd as user in a detached tmux session of cols×rows
// (status line off) and checks the terminal has that size.
func newPane(e *cliEnv, user string, cols, rows int, cmd string) *tmuxPane {
	e.t.Helper()
	e.c.WriteFile(e.t, tmuxConf, []byte("set -g status off\n"), 0o644)
	p := &tmuxPane{e: e, user: user}
	p.tmux("-f", tmuxConf, "new-session", "-d", "-s", "cli", "-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows), cmd)
	if got, want := strings.TrimSpace(p.tmux("display-message", "-p", "-t", "cli", "#{pane_width}x#{pane_height}")), strconv.Itoa(cols)+"x"+strconv.Itoa(rows); got != want {
		e.t.Fatalf("the tmux pane is %s, want %s", got, want)
	}
	return p
}

// screen returns what the pane shows now: its visible rows only, as they
// are wrapped on the screen.
func (p *tmuxPane) screen() string {
	p.e.t.Helper()
	return p.tmux("capture-pane", "-p", "-t", "cli")
}

// TestCLIEnrollFitsTheTerminal: `otpgate enroll` in an 80×24 terminal shows
// the intro, the whole QR code, the key and the prompt at once: the visible
// screen alone decodes (zbarimg) to the new key, whose secret is the key
// printed under it; oathtool's code for it then activates it. For a short
// and a long account name (the container's hostname is "web1").
func TestCLIEnrollFitsTheTerminal(t *testing.T) {
	e := newCLIEnv(t, container.WithHostname("web1"))
	for _, user := range []string{"alice", "deploy-automation-01"} {
		t.Run(user, func(t *testing.T) {
			e.c.AddUser(t, user)
			pane := newPane(e, user, 80, 24, e.bin+" enroll; echo EXIT=$?; sleep 600")
			defer pane.tmux("kill-server")
			pane.waitFor("Enter the code shown in your app to finish:")
			screen := pane.screen()
			rows := strings.Split(strings.TrimRight(screen, "\n"), "\n")
			if first := strings.TrimSpace(rows[0]); first != "Scan this QR code with your authenticator app:" {
				t.Errorf("the intro scrolled off; the screen begins with %q:\n%s", first, screen)
			}
			if last := strings.TrimSpace(rows[len(rows)-1]); last != "Enter the code shown in your app to finish:" {
				t.Errorf("the screen does not end with the prompt but %q", last)
			}
			uri := qrtermtest.DecodeTerminal(t, screen)
			key, err := otp.ParseURI(uri)
			if err != nil {
				t.Fatalf("the QR code on the screen decodes to %q: %v", uri, err)
			}
			if key.Issuer != "otpgate-test" || key.Account != user+"@web1" || key.Params != otp.DefaultParams() || len(key.Secret) != 20 {
				t.Errorf("QR code key: issuer %q, account %q, %+v, %d-byte secret", key.Issuer, key.Account, key.Params, len(key.Secret))
			}
			secret := otp.EncodeSecret(key.Secret)
			var typed string
			for _, r := range rows {
				if v, ok := strings.CutPrefix(r, "Or type the key (time-based): "); ok {
					typed = strings.ReplaceAll(strings.TrimSpace(v), " ", "")
				}
			}
			if typed != secret {
				t.Errorf("the key on the screen is %q, the QR code's secret %q:\n%s", typed, secret, screen)
			}
			pane.typeLine(e.oathtool(secret))
			pane.waitFor("Save them to a file?")
			pane.typeLine("")
			if out := pane.waitFor("EXIT="); !strings.Contains(out, "EXIT=0") {
				t.Fatalf("enroll did not exit 0:\n%s", out)
			}
			if st := e.status(user); st.State != protocol.StateActive {
				t.Errorf("state %q after enrolling, want active", st.State)
			}
		})
	}
}

// TestCLIInterrupt: Ctrl-C at a prompt of otpgate in a real terminal ends
// the command at once, with exit status 130, nothing said about otpgated,
// and the terminal echoing again: at the hidden code prompt of enroll (the
// new secret stays pending) and at the question that follows the
// recovery codes (the enrollment is already active).
func TestCLIInterrupt(t *testing.T) {
	e := newCLIEnv(t)
	e.c.AddUser(t, "alice")
	const cmd = "; echo EXIT=$?; if stty -a | grep -qw -- -echo; then echo ECHO=off; else echo ECHO=on; fi; sleep 600"

	pane := newPane(e, "alice", 80, 24, e.bin+" enroll --no-qr"+cmd)
	screen := pane.waitFor("Enter the code shown in your app to finish:")
	field(t, screen, "Key") // fails the test unless the key was shown
	pane.tmux("send-keys", "-t", "cli", "C-c")
	after := interrupted(t, pane, "Enter the code shown in your app to finish:")
	if strings.Contains(after, "otpgated") {
		t.Errorf("Ctrl-C at the code prompt claimed something about otpgated:\n%s", after)
	}
	if st := e.status("alice"); st.State != protocol.StatePending || st.Failures != 0 {
		t.Errorf("after Ctrl-C at the code prompt: state %q, %d failures; want pending, 0", st.State, st.Failures)
	}
	pane.tmux("kill-server")

	pane = newPane(e, "alice", 80, 24, e.bin+" enroll --no-qr"+cmd)
	screen = pane.waitFor("Enter the code shown in your app to finish:")
	secret := strings.ReplaceAll(field(t, screen, "Key"), " ", "")
	pane.typeLine(e.oathtool(secret))
	pane.waitFor("Save them to a file?")
	pane.tmux("send-keys", "-t", "cli", "C-c")
	interrupted(t, pane, "Save them to a file? Enter a path, or press Enter to skip:")
	if st := e.status("alice"); st.State != protocol.StateActive {
		t.Errorf("after Ctrl-C at the save question: state %q, want active", st.State)
	}
	pane.tmux("kill-server")
}

// interrupted waits for the command in pane to end after Ctrl-C and checks
// its exit status and the terminal's echo; it returns what was printed
// after prompt.
func interrupted(t *testing.T, pane *tmuxPane, prompt string) string {
	t.Helper()
	out := pane.waitFor("ECHO=")
	after := out[strings.LastIndex(out, prompt)+len(prompt):]
	if !strings.Contains(after, "EXIT=130") {
		t.Errorf("exit status after Ctrl-C is not 130:\n%s", out)
	}
	if !strings.Contains(after, "ECHO=on") {
		t.Errorf("the terminal does not echo after Ctrl-C:\n%s", out)
	}
	if strings.Contains(after, "otpgate:") {
		t.Errorf("an error was printed after Ctrl-C:\n%s", after)
	}
	return after
}

// TestCLICodesAsTyped: with the real otpgated, a code typed as apps show it
// ("512 397") confirms an enrollment, and a long paste is answered by
// otpgated in words.
func TestCLICodesAsTyped(t *testing.T) {
	e := newCLIEnv(t)
	e.c.AddUser(t, "alice")
	s := e.start("alice", nil, "enroll", "--no-qr")
	screen := s.waitFor("Enter the code shown in your app to finish:")
	secret := strings.ReplaceAll(field(t, screen, "Key"), " ", "")
	s.send(strings.Repeat("0123456789", 300))
	s.waitFor("A code is 6 digits.")
	code := e.oathtool(secret)
	s.send(" " + code[:3] + " " + code[3:] + " ")
	s.waitFor("Save them to a file?")
	out, exit := s.wait()
	if exit != 0 || strings.Contains(out, "invalid request") {
		t.Errorf("enroll exit %d:\n%s", exit, out)
	}
	if st := e.status("alice"); st.State != protocol.StateActive || st.Failures != 0 {
		t.Errorf("state %q with %d failures, want active with none (a paste is not a guess)", st.State, st.Failures)
	}
}
