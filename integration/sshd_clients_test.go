//go:build integration

package integration

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/integration/container"
)

// TestSSHDClients logs in to otpgate-sshd with the clients the other suites
// do not cover, each answering the code prompt its own way: PuTTY's pscp
// (at the terminal) and Python's asyncssh (its keyboard-interactive
// handler). OpenSSH's ssh, scp (both modes), sftp, rsync and git are in
// TestWorkflowsOtpgateSSHD, plink and dropbear's dbclient in
// sshd_dialogue_test.go, paramiko in TestSSHDParamiko.
func TestSSHDClients(t *testing.T) {
	container.Require(t, "pscp", "puttygen", "tmux", "/usr/bin/python3")
	e := newSSHDEnv(t, "")
	if out, exit, _ := e.c.Exec(context.Background(), "/usr/bin/python3", "-c", "import asyncssh"); exit != 0 {
		t.Fatalf("python3 cannot import asyncssh (apt-get install python3-asyncssh; scripts/install-deps.sh does):\n%s", out)
	}
	for _, u := range []string{"pscpok", "pscpbad", "asyncok", "asyncbad"} {
		e.addUser(u)
		e.enroll(u)
	}
	e.c.Run(t, "puttygen", sshdWorkDir+"/id_ed25519", "-O", "private", "-o", sshdWorkDir+"/id.ppk")
	fp := strings.Fields(e.c.Run(t, "sh", "-c", "ssh-keygen -y -f /etc/otpgate/sshd/ssh_host_ed25519_key | ssh-keygen -l -f -"))[1]
	e.c.WriteFile(t, sshdWorkDir+"/payload", []byte("sent by pscp\n"), 0o644)
	pscp := func(user string) string {
		return "pscp -P " + strconv.Itoa(sshdPort) + " -hostkey " + fp + " -i " + sshdWorkDir + "/id.ppk " +
			sshdWorkDir + "/payload " + user + "@127.0.0.1:copied"
	}

	t.Run("pscp copies a file after the code", func(t *testing.T) {
		term := e.sshdTerminal(t, pscp("pscpok"))
		term.waitCount(sshdPrompt, 1)
		term.typeLine(e.code("pscpok"))
		if screen := term.waitCount("EXIT=", 1); !strings.Contains(screen, "EXIT=0") {
			t.Fatalf("pscp failed:\n%s", screen)
		}
		if got := string(e.c.ReadFile(t, "/home/pscpok/copied")); got != "sent by pscp\n" {
			t.Fatalf("copied file holds %q", got)
		}
	})
	t.Run("pscp with a wrong code copies nothing and says why", func(t *testing.T) {
		term := e.sshdTerminal(t, pscp("pscpbad"))
		term.waitCount(sshdPrompt, 1)
		term.typeLine(e.wrongCode("pscpbad"))
		screen := term.waitCount(sshdPrompt, 2)
		if !strings.Contains(screen, "Wrong code.") {
			t.Fatalf("pscp did not show the refusal:\n%s", screen)
		}
		if _, exit, _ := e.c.Exec(context.Background(), "test", "-e", "/home/pscpbad/copied"); exit == 0 {
			t.Fatal("a file was copied after a wrong code")
		}
	})

	e.c.WriteFile(t, sshdWorkDir+"/asyncssh_login.py", readRepoFile(t, "integration/testdata/asyncssh_login.py"), 0o755)
	asyncssh := func(user, code string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), sshdCmdLimit)
		defer cancel()
		out, exit, err := e.c.Exec(ctx, "timeout", "-k", "5", "40", "/usr/bin/python3", "-W", "ignore", sshdWorkDir+"/asyncssh_login.py",
			"127.0.0.1", strconv.Itoa(sshdPort), user, sshdWorkDir+"/id_ed25519", code, "echo IN; id -un")
		if ctx.Err() != nil || exit == 124 || exit == 137 {
			t.Fatalf("asyncssh %s hung (%v, exit %d):\n%s", user, err, exit, out)
		}
		return out, exit
	}
	t.Run("asyncssh logs in with key and code", func(t *testing.T) {
		out, exit := asyncssh("asyncok", e.code("asyncok"))
		if exit != 0 || !strings.Contains(out, "PROMPT: "+strings.TrimSpace(sshdPrompt)) || !strings.Contains(out, "IN\nasyncok\nEXIT 0") {
			t.Fatalf("exit %d:\n%s", exit, out)
		}
	})
	t.Run("asyncssh with a wrong code is refused and told why", func(t *testing.T) {
		out, exit := asyncssh("asyncbad", e.wrongCode("asyncbad"))
		if exit != 3 || strings.Contains(out, "IN\n") || !strings.Contains(out, "Wrong code.") {
			t.Fatalf("exit %d:\n%s", exit, out)
		}
	})
}
