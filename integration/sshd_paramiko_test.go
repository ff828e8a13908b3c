//go:build integration

package integration

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
)

// paramikoRun runs integration/testdata/paramiko_login.py in the container.
func (e *sshdEnv) paramikoRun(mode, user, code, command string) (string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sshdCmdLimit)
	defer cancel()
	out, exit, err := e.c.Exec(ctx, "timeout", "-k", "5", "40", "/usr/bin/python3", sshdWorkDir+"/paramiko_login.py",
		mode, "127.0.0.1", strconv.Itoa(sshdPort), user, sshdWorkDir+"/id_ed25519", code, command)
	if ctx.Err() != nil || exit == 124 || exit == 137 {
		e.t.Fatalf("paramiko %s %s hung (%v, exit %d):\n%s", mode, user, err, exit, out)
	}
	return out, exit
}

// TestSSHDParamiko logs in with Python's paramiko. A key-only login works
// as with any client. With a second factor, paramiko's
// Transport.auth_interactive sends a second ssh-userauth service request,
// which golang.org/x/crypto/ssh answers by closing the connection (OpenSSH
// accepts it): this test pins that limitation, and the workaround of
// docs/sshd.md, which asks for keyboard-interactive on the service already
// granted, logs in.
func TestSSHDParamiko(t *testing.T) {
	container.Require(t, "/usr/bin/python3")
	e := newSSHDEnv(t, "")
	if out, exit, _ := e.c.Exec(context.Background(), "/usr/bin/python3", "-c", "import paramiko"); exit != 0 {
		t.Fatalf("python3 cannot import paramiko (apt-get install python3-paramiko; scripts/install-deps.sh does):\n%s", out)
	}
	e.c.WriteFile(t, sshdWorkDir+"/paramiko_login.py", readRepoFile(t, "integration/testdata/paramiko_login.py"), 0o755)
	e.addUser(sshdExempt)
	e.addUser("twofactor")
	e.enroll("twofactor")

	t.Run("a key-only login works with SSHClient.connect", func(t *testing.T) {
		out, exit := e.paramikoRun("client", sshdExempt, "", "echo IN; id -un")
		if exit != 0 || !strings.Contains(out, "IN\n"+sshdExempt+"\nEXIT 0") {
			t.Fatalf("exit %d:\n%s", exit, out)
		}
	})
	t.Run("auth_interactive after the key is refused (second service request)", func(t *testing.T) {
		out, exit := e.paramikoRun("two-step", "twofactor", e.code("twofactor"), "echo IN")
		if exit != 3 || !strings.Contains(out, "AUTH-FAILED") || strings.Contains(out, "IN") ||
			!e.waitLog("unexpected message type 5", 5*time.Second) {
			t.Fatalf("exit %d (if this login now works, x/crypto accepts a repeated service request: "+
				"update docs/sshd.md and this test):\n%s", exit, out)
		}
	})
	t.Run("the documented workaround logs in with key and code", func(t *testing.T) {
		out, exit := e.paramikoRun("same-service", "twofactor", e.code("twofactor"), "echo IN; id -un")
		if exit != 0 || !strings.Contains(out, "IN\ntwofactor\nEXIT 0") {
			t.Fatalf("exit %d:\n%s", exit, out)
		}
	})
}
