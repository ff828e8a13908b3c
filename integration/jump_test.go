//go:build integration

package integration

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
)

// "ssh -J bastion target" in one container, on one otpgated: the bastion is
// OpenSSH with pam_otpgate (the PAM suite's sshd), the targets are a second
// OpenSSH with pam_otpgate and otpgate-sshd. The client binds to
// jumpClientAddr, so the bastion sees that address; the bastion's forwarded
// connections come from 127.0.0.1, the jump host the targets know.
const (
	jumpClientAddr = "127.0.0.5"
	jumpBastionIP  = "127.0.0.1"
	jumpTargetPort = 2223 // OpenSSH + pam_otpgate behind the bastion
	jumpGoPort     = 2224 // otpgate-sshd behind the bastion
	jumpSSHDConf   = "/etc/otpgate/sshd.toml"
	jumpDir        = pamWorkDir + "/target"
	// jumpPolicy is what the tests add to otpgated's [policy].
	jumpPolicy = `jump_hosts = ["` + jumpBastionIP + `"]
jump_window = "60s"
`
)

// jumpClientConfig names the hosts for the client (-F; the ssh that -J
// starts for the bastion reads it too): the bastion, the two targets, and
// "other-key", the OpenSSH target logged in to with a second authorized
// key.
var jumpClientConfig = fmt.Sprintf(`Host bastion
    HostName 127.0.0.1
    Port %d
    BindAddress %s
Host target
    HostName 127.0.0.1
    Port %d
Host go-target
    HostName 127.0.0.1
    Port %d
Host other-key
    HostName 127.0.0.1
    Port %d
    IdentityFile %s/second
Host direct
    HostName 127.0.0.1
    Port %d
    BindAddress %s
Host *
    IdentityFile %s/id_ed25519
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    BatchMode no
    NumberOfPasswordPrompts 1
    ConnectTimeout 10
    LogLevel INFO
`, pamSSHDPort, jumpClientAddr, jumpTargetPort, jumpGoPort, jumpTargetPort, pamWorkDir, jumpTargetPort, jumpClientAddr, pamWorkDir)

// jumpEnv is the container with the bastion and the two targets.
type jumpEnv struct {
	*pamSSHD
	goTarget *container.Process
	runs     int
}

// newJumpEnv starts otpgated (with policyExtra in [policy]), the bastion,
// the OpenSSH target and the otpgate-sshd target.
func newJumpEnv(t *testing.T, policyExtra string) *jumpEnv {
	t.Helper()
	e := newPAMEnv(t)
	daemonConfig := strings.Replace(pamDaemonConfig, "[policy]\n", "[policy]\n"+policyExtra, 1)
	e.writeDaemonConfig(daemonConfig)
	e.restartDaemon()
	bastion := startSSHD(t, e, "")
	c := e.c
	// The OpenSSH target: the bastion's configuration on its own port,
	// the same PAM service (sshd), so the same module and otpgated.
	c.MkdirAll(t, jumpDir, 0o755)
	c.Run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", pamWorkDir+"/second")
	c.WriteFile(t, jumpDir+"/sshd_config", []byte(fmt.Sprintf(pamSSHDConfig, jumpTargetPort, pamWorkDir, jumpDir)), 0o644)
	c.Background(t, "/usr/sbin/sshd", "-D", "-e", "-f", jumpDir+"/sshd_config")
	c.WaitForPort(t, jumpTargetPort, 15*time.Second)
	// otpgate-sshd reads otpgated's file for the socket, plus [sshd].
	c.WriteFile(t, jumpSSHDConf, []byte(daemonConfig+fmt.Sprintf(`
[sshd]
listen = "127.0.0.1:%d"
host_key_dir = "/etc/otpgate/sshd"
log_level = "debug"
`, jumpGoPort)), 0o644)
	j := &jumpEnv{pamSSHD: bastion}
	j.goTarget = c.Background(t, container.Bin(t, "otpgate-sshd"), "-config", jumpSSHDConf)
	c.WaitForPort(t, jumpGoPort, 15*time.Second)
	c.WriteFile(t, pamWorkDir+"/jump_config", []byte(jumpClientConfig), 0o644)
	return j
}

// addJumpUser creates user, authorizes both client keys and enrolls it.
func (j *jumpEnv) addJumpUser(user string) {
	j.t.Helper()
	j.addSSHUser(user)
	u, err := j.c.LookupUser(user)
	if err != nil {
		j.t.Fatal(err)
	}
	keys := append(j.c.ReadFile(j.t, pamWorkDir+"/id_ed25519.pub"), j.c.ReadFile(j.t, pamWorkDir+"/second.pub")...)
	j.c.WriteFile(j.t, u.Home+"/.ssh/authorized_keys", keys, 0o600)
	j.c.Chown(j.t, u.Home+"/.ssh/authorized_keys", user)
	j.enroll(user)
}

// ssh runs the client as root to host of jumpClientConfig as user,
// through the bastion unless direct, answering every prompt with code.
func (j *jumpEnv) ssh(user, code, host string, direct bool) sshResult {
	j.t.Helper()
	j.runs++
	log := fmt.Sprintf("%s/jump-askpass-%d.log", pamWorkDir, j.runs)
	ctx, cancel := context.WithTimeout(context.Background(), pamCmdLimit)
	defer cancel()
	cmd := []string{"ASKPASS_CODE=" + code, "ASKPASS_LOG=" + log,
		"SSH_ASKPASS=" + pamWorkDir + "/askpass", "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0",
		"timeout", "-k", "5", "40", "ssh", "-F", pamWorkDir + "/jump_config", "-T"}
	if !direct {
		cmd = append(cmd, "-J", user+"@bastion")
	}
	cmd = append(cmd, user+"@"+host, "echo LOGIN-OK-"+user)
	start := time.Now()
	out, exit, err := j.c.Exec(ctx, "env", cmd...)
	if ctx.Err() != nil || exit == 124 || exit == 137 {
		j.t.Fatalf("ssh %s hung (%v, exit %d):\n%s", host, err, exit, out)
	}
	return sshResult{out: out, exit: exit, prompts: j.readOptional(log), elapsed: time.Since(start)}
}

// audited waits for otpgated's log to have a line for user containing
// every one of what.
func (j *jumpEnv) audited(user string, what ...string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(j.daemon.Output(), "\n") {
			if !strings.Contains(line, "user="+user+" ") {
				continue
			}
			all := true
			for _, w := range what {
				all = all && strings.Contains(line, w)
			}
			if all {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// codePrompts counts the code prompts askpass was asked.
func (r sshResult) codePrompts() int {
	return strings.Count(r.prompts, pamCodePrompt)
}

// TestJumpHostReplayMessage: without policy.jump_hosts, the code typed at
// the bastion is refused at the target, which says where and when it was
// used: on this otpgated's host, by sshd, from the client's address.
func TestJumpHostReplayMessage(t *testing.T) {
	j := newJumpEnv(t, "")
	j.addJumpUser("jumpa")
	r := j.ssh("jumpa", j.code("jumpa"), "target", false)
	if r.loggedIn("jumpa") || r.codePrompts() != 2 {
		t.Fatalf("ssh -J bastion target with one code: exit %d, prompts %q; want two prompts and a refusal:\n%s", r.exit, r.prompts, r.out)
	}
	// Near the end of the code's 30 seconds the next code may already be
	// showing when the target answers: both endings say what to do.
	where := regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("on %s (sshd from %s): ", j.c.Hostname(), jumpClientAddr)) +
		`(the next code comes in [0-9]+ seconds?|a new code is showing now)\.`)
	if !j.audited("jumpa", "outcome=replay", "rhost="+jumpBastionIP) {
		t.Fatalf("no replay audited for the target:\n%s", j.daemon.Output())
	}
	if !strings.Contains(r.out, "This code was already used at ") || !where.MatchString(r.out) {
		t.Errorf("the client was not told where the code was used (%s):\n%s", where, r.out)
	}
}

// TestJumpHost: with the bastion's address in policy.jump_hosts, ssh -J
// asks for one code, at the bastion, for an OpenSSH and an otpgate-sshd
// target alike; the target still asks when the key differs, and a login
// from the client's own address is no jump.
func TestJumpHost(t *testing.T) {
	j := newJumpEnv(t, jumpPolicy)
	for _, tt := range []struct{ name, user, target string }{
		{"OpenSSH target", "jumpb", "target"},
		{"otpgate-sshd target", "jumpc", "go-target"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j.t = t
			j.addJumpUser(tt.user)
			r := j.ssh(tt.user, j.code(tt.user), tt.target, false)
			if !r.loggedIn(tt.user) || r.codePrompts() != 1 {
				t.Fatalf("ssh -J bastion %s: exit %d, prompts %q; want a login after one prompt:\n%s", tt.target, r.exit, r.prompts, r.out)
			}
			if !j.audited(tt.user, "outcome=remembered", "reason=jump_host", "rhost="+jumpBastionIP) {
				t.Errorf("the target's pass is not audited as jump_host:\n%s", j.daemon.Output())
			}
		})
	}
	t.Run("another key at the target needs a code", func(t *testing.T) {
		j.t = t
		j.addJumpUser("jumpd")
		code := j.code("jumpd")
		r := j.ssh("jumpd", code, "other-key", false)
		if r.loggedIn("jumpd") || r.codePrompts() != 2 {
			t.Fatalf("ssh -J bastion with another key at the target: exit %d, prompts %q; want two prompts, the code refused:\n%s", r.exit, r.prompts, r.out)
		}
		if !j.audited("jumpd", "outcome=replay", "rhost="+jumpBastionIP) {
			t.Errorf("no replay audited at the target:\n%s", j.daemon.Output())
		}
	})
	t.Run("not through the bastion: a code", func(t *testing.T) {
		j.t = t
		j.addJumpUser("jumpe")
		code := j.code("jumpe")
		if r := j.ssh("jumpe", code, "bastion", true); !r.loggedIn("jumpe") || r.codePrompts() != 1 {
			t.Fatalf("ssh bastion: exit %d, prompts %q:\n%s", r.exit, r.prompts, r.out)
		}
		// Straight to the target from the client's address, with the
		// same key, within the window: asked, and the used code refused.
		r := j.ssh("jumpe", code, "direct", true)
		if r.loggedIn("jumpe") || r.codePrompts() != 1 {
			t.Fatalf("ssh direct: exit %d, prompts %q; want one prompt and a refusal:\n%s", r.exit, r.prompts, r.out)
		}
	})
	t.Run("turning it off asks at the target again", func(t *testing.T) {
		j.t = t
		if err := j.daemon.Stop(); err != nil {
			t.Fatal(err)
		}
		j.c.WriteFile(t, pamConfig, []byte(pamDaemonConfig), 0o644)
		j.restartDaemon()
		j.addJumpUser("jumpf")
		if r := j.ssh("jumpf", j.code("jumpf"), "target", false); r.loggedIn("jumpf") || r.codePrompts() != 2 {
			t.Fatalf("ssh -J bastion target without jump_hosts: exit %d, prompts %q:\n%s", r.exit, r.prompts, r.out)
		}
	})
}
