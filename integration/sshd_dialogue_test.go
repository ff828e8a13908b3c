//go:build integration

package integration

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
)

// TestSSHDDialogue: otpgate-sshd relays otpgated's login dialogue to the
// real OpenSSH client, askpass answering (codes from oathtool).
func TestSSHDDialogue(t *testing.T) {
	const prompt = "Password (verification code): "
	e := newSSHDEnv(t, "")
	for _, u := range []string{"alice", "bob"} {
		e.addUser(u)
		e.enroll(u)
	}

	t.Run("a code typed as apps show it is accepted", func(t *testing.T) {
		code := e.code("alice")
		r := e.ssh("alice", "id_ed25519", code[:3]+" "+code[3:], nil, "echo IN")
		if r.exit != 0 || !strings.Contains(r.out, "IN") {
			t.Fatalf("%q refused (exit %d):\n%s", code[:3]+" "+code[3:], r.exit, r.out)
		}
	})
	t.Run("a wrong code is said in otpgated's words", func(t *testing.T) {
		r := e.ssh("bob", "id_ed25519", e.wrongCode("bob"), nil, "echo IN")
		if r.exit != 255 || strings.Contains(r.out, "IN") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
		if !strings.Contains(r.out, "Wrong code.") {
			t.Errorf("ssh did not show %q:\n%s", "Wrong code.", r.out)
		}
	})
	t.Run("sshd.prompt is the prompt", func(t *testing.T) {
		e.reload("prompt = \"" + prompt + "\"\n")
		defer e.reload("")
		r := e.ssh("alice", "id_ed25519", e.nextCode("alice"), nil, "echo IN")
		if r.exit != 0 || !strings.Contains(r.out, "IN") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
		if !strings.Contains(r.prompts, prompt) || strings.Contains(r.prompts, sshdPrompt) {
			t.Errorf("askpass was asked %q, want %q", r.prompts, prompt)
		}
	})
	t.Run("otpgated down: the relay's one text, then the refusal", func(t *testing.T) {
		e.stopOtpgated()
		r := e.ssh("alice", "id_ed25519", "123456", nil, "echo IN")
		if r.exit != 255 || strings.Contains(r.out, "IN") || r.prompts != "" {
			t.Fatalf("exit %d, prompts %q, output:\n%s", r.exit, r.prompts, r.out)
		}
		if !strings.Contains(r.out, protocol.UnavailableText) {
			t.Errorf("ssh did not show %q:\n%s", protocol.UnavailableText, r.out)
		}
		if !strings.Contains(e.server.Output(), "otpgated unavailable") {
			t.Errorf("otpgate-sshd did not log the reason:\n%s", e.server.Output())
		}
	})
}

// nextCode is user's code for the next time step, which otpgated's ±1
// window accepts, for a second login within the same step.
func (e *sshdEnv) nextCode(user string) string {
	e.t.Helper()
	at := strconv.FormatInt(time.Now().Add(30*time.Second).Unix(), 10)
	code := e.oathtool(e.secrets[user], "--now=@"+at)
	if len(code) != 6 {
		e.t.Fatalf("oathtool printed %q", code)
	}
	return code
}

// stopOtpgated stops otpgated and waits until it is gone.
func (e *sshdEnv) stopOtpgated() {
	e.t.Helper()
	if err := e.daemon.Signal(syscall.SIGTERM); err != nil {
		e.t.Fatal(err)
	}
	select {
	case <-e.daemon.Done():
	case <-time.After(15 * time.Second):
		e.t.Fatal("otpgated did not stop")
	}
}

// sshdTerminal starts cmd in a real terminal (a tmux pane, as root).
func (e *sshdEnv) sshdTerminal(t *testing.T, cmd string) *wfTerminal {
	term := &wfTerminal{t: t, c: e.c, user: "root"}
	term.tmux("new-session", "-d", "-s", "wf", "-x", "200", "-y", "50", cmd+"; echo EXIT=$?; sleep 600")
	t.Cleanup(func() {
		e.c.Run(t, "tmux", "kill-server")
		// kill-server returns before the server is gone; a new session
		// started meanwhile meets a dying server ("server exited
		// unexpectedly"). Wait until no server answers.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if _, code, _ := e.c.Exec(context.Background(), "tmux", "list-sessions"); code != 0 {
				return
			}
		}
		t.Error("the tmux server did not stop")
	})
	return term
}

// TestSSHDDropbearClient: dropbear's dbclient prints what otpgated says
// and its prompt as they come, with no newline of its own: each must
// start a line of its own, not run into the prompt.
func TestSSHDDropbearClient(t *testing.T) {
	container.Require(t, "dbclient", "dropbearconvert", "tmux")
	e := newSSHDEnv(t, "")
	e.addUser("alice")
	e.enroll("alice")
	e.c.Run(t, "dropbearconvert", "openssh", "dropbear", sshdWorkDir+"/id_ed25519", sshdWorkDir+"/id_dropbear")
	term := e.sshdTerminal(t, "dbclient -y -y -i "+sshdWorkDir+"/id_dropbear -p "+strconv.Itoa(sshdPort)+" alice@127.0.0.1 'echo IN'")

	term.waitCount(sshdPrompt, 1)
	term.typeLine(e.wrongCode("alice"))
	screen := term.waitCount(sshdPrompt, 2)
	if !strings.Contains(screen, "Wrong code.") {
		t.Fatalf("dbclient did not show %q:\n%s", "Wrong code.", screen)
	}
	for _, line := range strings.Split(screen, "\n") {
		if strings.Contains(line, sshdPrompt) && !strings.HasPrefix(line, sshdPrompt) {
			t.Errorf("the prompt does not start its line: %q\n%s", line, screen)
		}
	}
	term.typeLine(e.code("alice"))
	if screen := term.waitCount("EXIT=", 1); !strings.Contains(screen, "IN\n") || !strings.Contains(screen, "EXIT=0") {
		t.Fatalf("dbclient did not log in:\n%s", screen)
	}
}

// TestSSHDPuTTYLastWords: PuTTY's plink shows otpgated's last words, and
// the relay's own, before the connection closes: they come in a challenge
// it acknowledges, not in a banner it drops when the connection ends.
func TestSSHDPuTTYLastWords(t *testing.T) {
	container.Require(t, "plink", "puttygen", "tmux")
	e := newSSHDEnv(t, "")
	e.addUser("alice")
	e.enroll("alice")
	e.c.Run(t, "puttygen", sshdWorkDir+"/id_ed25519", "-O", "private", "-o", sshdWorkDir+"/id.ppk")
	fp := strings.Fields(e.c.Run(t, "sh", "-c", "ssh-keygen -y -f /etc/otpgate/sshd/ssh_host_ed25519_key | ssh-keygen -l -f -"))[1]
	plink := "plink -ssh -no-antispoof -P " + strconv.Itoa(sshdPort) + " -hostkey " + fp + " -i " + sshdWorkDir + "/id.ppk alice@127.0.0.1 'echo IN'"

	t.Run("a lockout after wrong codes", func(t *testing.T) {
		term := e.sshdTerminal(t, plink)
		for n := 1; n <= sshdMaxFailed; n++ {
			term.waitCount(sshdPrompt, n)
			term.typeLine(e.wrongCode("alice"))
		}
		screen := term.waitCount("EXIT=", 1)
		if st := e.login(protocol.Request{User: "alice", Service: "sshdtest"}, ""); stepOutcome(st) != protocol.OutcomeLocked {
			t.Fatalf("alice not locked after %d wrong codes: %+v\n%s", sshdMaxFailed, st, screen)
		}
		if !strings.Contains(screen, "Wrong code.") || strings.Contains(screen, "EXIT=0") {
			t.Errorf("plink's screen:\n%s", screen)
		}
		if !strings.Contains(screen, "Too many failed attempts") {
			t.Errorf("plink did not show the lockout:\n%s", screen)
		}
	})
	t.Run("otpgated down", func(t *testing.T) {
		e.stopOtpgated()
		term := e.sshdTerminal(t, plink)
		screen := term.waitCount("EXIT=", 1)
		if !strings.Contains(screen, protocol.UnavailableText) || strings.Contains(screen, "EXIT=0") {
			t.Errorf("plink did not show %q:\n%s", protocol.UnavailableText, screen)
		}
	})
}
