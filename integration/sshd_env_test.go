//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
)

// In-container paths and settings of the otpgate-sshd suites.
const (
	sshdSocket     = otpgatedSocket
	sshdDaemonConf = otpgatedConfig
	sshdConf       = "/etc/otpgate/sshd.toml"
	sshdWorkDir    = "/tmp/sshdtest"
	sshdPort       = 2222
	sshdCmdLimit   = 60 * time.Second
	sshdExempt     = "sshexempt" // in policy.exempt_users
	sshdRequired   = "sshreq"    // in policy.required_users, never enrolled
	sshdMaxFailed  = 3           // rate_limit.max_failures
	sshdPrompt     = "Verification code: "
)

// sshdDaemonConfig is otpgated's configuration for the suites.
var sshdDaemonConfig = sshdDaemonConfigWith("")

// sshdDaemonConfigWith is sshdDaemonConfig with extra lines in [policy].
func sshdDaemonConfigWith(policyExtra string) string {
	return fmt.Sprintf(`[daemon]
socket = %q
state_dir = "/var/lib/otpgate"

[policy]
default = "optional"
exempt_users = [%q]
required_users = [%q]
%s
[rate_limit]
max_failures = %d
lockout = "1h"
max_lockout = "1h"
# The suites count failures per user across entry points, all from one
# address; the per-address limit is tested in daemon/source_test.go.
per_source_max_failures = 0
`, sshdSocket, sshdExempt, sshdRequired, policyExtra, sshdMaxFailed)
}

// sshdServerConfig renders otpgate-sshd's configuration file: the
// daemon's settings (otpgate-sshd reaches otpgated on daemon.socket) and
// the [sshd] section, to which extra lines are appended.
func sshdServerConfig(extra string) string {
	base := sshdDaemonConfig + fmt.Sprintf(`
[sshd]
listen = "127.0.0.1:%d"
host_key_dir = "/etc/otpgate/sshd"
`, sshdPort)
	if !strings.Contains(extra, "log_level") {
		base += "log_level = \"debug\"\n"
	}
	return base + extra
}

// sshdAskpass answers keyboard-interactive prompts for ssh: it logs the
// prompt and prints the code from the environment.
const sshdAskpass = `#!/bin/sh
printf '%s\n' "$1" >> "$ASKPASS_LOG"
printf '%s\n' "$ASKPASS_CODE"
`

// sshdClientConfig is the client configuration (-F) for every ssh run; a
// jump host (-J) reads it too, which command-line options do not reach.
var sshdClientConfig = `Host localhost
  IdentityFile ` + sshdWorkDir + `/id_ed25519
Host *
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  IdentitiesOnly yes
  BatchMode no
  NumberOfPasswordPrompts 1
  ConnectTimeout 10
  LogLevel INFO
`

// sshdEnv is a container running the real otpgated and otpgate-sshd.
type sshdEnv struct {
	*otpgatedFixture
	server *container.Process
	n      int
}

// newSSHDEnv starts a container with otpgated and otpgate-sshd (whose
// [sshd] section gets extra), a client key pair (id_ed25519) and a second,
// unauthorized one (stranger).
func newSSHDEnv(t testing.TB, extra string) *sshdEnv {
	t.Helper()
	return newSSHDEnvPolicy(t, "", extra)
}

// newSSHDEnvPolicy is newSSHDEnv with extra lines in otpgated's [policy].
func newSSHDEnvPolicy(t testing.TB, policyExtra, extra string) *sshdEnv {
	t.Helper()
	return newSSHDEnvDaemon(t, sshdDaemonConfigWith(policyExtra), extra)
}

// newSSHDEnvDaemon is newSSHDEnv with otpgated's whole configuration file.
func newSSHDEnvDaemon(t testing.TB, daemonConfig, extra string) *sshdEnv {
	t.Helper()
	container.Require(t, "ssh", "ssh-keygen", "sftp", "oathtool", "timeout", "/usr/lib/openssh/sftp-server")
	c := container.Start(t)
	c.MkdirAll(t, sshdWorkDir, 0o755)
	e := &sshdEnv{otpgatedFixture: startOtpgated(t, c, daemonConfig)}
	c.Run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", sshdWorkDir+"/id_ed25519")
	c.Run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", sshdWorkDir+"/stranger")
	c.WriteFile(t, sshdWorkDir+"/askpass", []byte(sshdAskpass), 0o755)
	c.WriteFile(t, sshdWorkDir+"/ssh_config", []byte(sshdClientConfig), 0o644)
	e.writeConfig(extra)
	e.server = c.Background(t, container.Bin(t, "otpgate-sshd"), "-config", sshdConf)
	c.WaitForPort(t, sshdPort, 15*time.Second)
	return e
}

// writeConfig rewrites otpgate-sshd's configuration file.
func (e *sshdEnv) writeConfig(extra string) {
	e.t.Helper()
	e.c.WriteFile(e.t, sshdConf, []byte(sshdServerConfig(extra)), 0o644)
}

// reload rewrites the configuration and sends SIGHUP, then waits for the
// server to log the reload.
func (e *sshdEnv) reload(extra string) {
	e.t.Helper()
	before := strings.Count(e.server.Output(), "configuration reloaded")
	e.writeConfig(extra)
	if err := e.server.Signal(syscall.SIGHUP); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(e.server.Output(), "configuration reloaded") == before {
		if time.Now().After(deadline) {
			e.t.Fatalf("otpgate-sshd did not reload:\n%s", e.server.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog waits for text to appear in otpgate-sshd's output (which
// arrives through a pipe, a little after the event).
func (e *sshdEnv) waitLog(text string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(e.server.Output(), text) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// addUser creates user with the suite's public key authorized.
func (e *sshdEnv) addUser(user string) {
	e.t.Helper()
	e.c.AddUser(e.t, user)
	u, err := e.c.LookupUser(user)
	if err != nil {
		e.t.Fatal(err)
	}
	pub := e.c.ReadFile(e.t, sshdWorkDir+"/id_ed25519.pub")
	e.c.MkdirAll(e.t, u.Home+"/.ssh", 0o700)
	e.c.WriteFile(e.t, u.Home+"/.ssh/authorized_keys", pub, 0o600)
	e.c.Chown(e.t, u.Home+"/.ssh", user)
	e.c.Chown(e.t, u.Home+"/.ssh/authorized_keys", user)
}

// sshRun is one run of the real ssh client.
type sshRun struct {
	out     string
	exit    int
	prompts string
}

// ssh runs the OpenSSH client inside the container as root against
// otpgate-sshd, answering prompts with code, with extra options before the
// destination and the remote command after it.
func (e *sshdEnv) ssh(user, key, code string, opts []string, remote ...string) sshRun {
	e.t.Helper()
	return e.sshTool("ssh", user, key, code, opts, remote...)
}

// sshTool runs ssh or sftp; for sftp, remote is empty and the batch file
// is in opts.
func (e *sshdEnv) sshTool(tool, user, key, code string, opts []string, remote ...string) sshRun {
	e.t.Helper()
	e.n++
	log := fmt.Sprintf("%s/askpass-%d.log", sshdWorkDir, e.n)
	ctx, cancel := context.WithTimeout(context.Background(), sshdCmdLimit)
	defer cancel()
	port := "-p"
	if tool == "sftp" {
		port = "-P"
	}
	args := []string{
		"ASKPASS_CODE=" + code, "ASKPASS_LOG=" + log,
		"SSH_ASKPASS=" + sshdWorkDir + "/askpass", "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0",
		"timeout", "-k", "5", "40",
		tool, "-F", sshdWorkDir + "/ssh_config", port, strconv.Itoa(sshdPort),
		"-o", "IdentityFile=" + sshdWorkDir + "/" + key,
	}
	args = append(args, opts...)
	args = append(args, user+"@127.0.0.1")
	args = append(args, remote...)
	out, exit, err := e.c.Exec(ctx, "env", args...)
	if ctx.Err() != nil || exit == 124 || exit == 137 {
		e.t.Fatalf("%s %s hung (%v, exit %d):\n%s", tool, user, err, exit, out)
	}
	prompts, rerr := os.ReadFile(e.c.Path(log))
	if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		e.t.Fatal(rerr)
	}
	return sshRun{out: out, exit: exit, prompts: string(prompts)}
}
