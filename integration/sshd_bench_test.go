//go:build integration

package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// opensshBenchPort is the port of the reference OpenSSH sshd.
const opensshBenchPort = 2223

// opensshBenchConfig is OpenSSH with public keys only and no PAM: the
// floor a second factor is measured against.
const opensshBenchConfig = `ListenAddress 127.0.0.1
Port %d
HostKey %s/openssh_hostkey
PidFile %s/openssh.pid
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthenticationMethods publickey
LogLevel ERROR
`

// BenchmarkSSHDLogin measures a full login, from starting ssh(1) to the
// remote command's exit (ssh -T user@127.0.0.1 true), inside one
// container:
//
//   - otpgate-sshd/key+code: publickey, then a TOTP code checked by
//     otpgated (each iteration is a different enrolled user, so no code is
//     a replay; the codes are computed with oathtool before the timer);
//   - otpgate-sshd/key-only: an exempt user (publickey, one check);
//   - openssh/publickey: /usr/sbin/sshd with UsePAM no, publickey only
//     (OpenSSH 9.2 picks the sntrup761x25519 key exchange);
//   - openssh/publickey-curve25519: the same with curve25519-sha256, the
//     key exchange the ssh client and otpgate-sshd agree on;
//   - nsenter-floor: entering the container to run true, the overhead
//     included in every other figure.
//
// Run: go test -tags integration -run '^$' -bench SSHDLogin -benchtime 40x ./integration
func BenchmarkSSHDLogin(b *testing.B) {
	e := newSSHDEnv(b, "log_level = \"info\"\nmax_startups = \"100:30:1000\"\nper_source_max_startups = 0\n")
	e.addUser(sshdExempt)
	c := e.c
	c.MkdirAll(b, "/run/sshd", 0o755)
	c.Run(b, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", sshdWorkDir+"/openssh_hostkey")
	c.WriteFile(b, sshdWorkDir+"/openssh_config", []byte(fmt.Sprintf(opensshBenchConfig, opensshBenchPort, sshdWorkDir, sshdWorkDir)), 0o644)
	c.Background(b, "/usr/sbin/sshd", "-D", "-e", "-f", sshdWorkDir+"/openssh_config")
	c.WaitForPort(b, opensshBenchPort, 15*time.Second)

	login := func(b *testing.B, port int, user, code string, opts ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), sshdCmdLimit)
		defer cancel()
		args := []string{
			"ASKPASS_CODE=" + code, "ASKPASS_LOG=/dev/null",
			"SSH_ASKPASS=" + sshdWorkDir + "/askpass", "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0",
			"ssh", "-F", sshdWorkDir + "/ssh_config", "-p", strconv.Itoa(port), "-T",
			"-o", "IdentityFile=" + sshdWorkDir + "/id_ed25519", "-o", "LogLevel=ERROR",
		}
		args = append(append(args, opts...), user+"@127.0.0.1", "true")
		out, exit, err := c.Exec(ctx, "env", args...)
		if err != nil || exit != 0 {
			b.Fatalf("login %s on port %d: exit %d, %v\n%s", user, port, exit, err, out)
		}
	}

	created := 0
	b.Run("otpgate-sshd/key+code", func(b *testing.B) {
		b.StopTimer()
		users := make([]string, b.N)
		codes := make([]string, b.N)
		for i := range users {
			created++
			users[i] = fmt.Sprintf("bench%d", created)
			e.addUser(users[i])
			e.enroll(users[i])
		}
		for i := range users {
			codes[i] = e.code(users[i])
		}
		b.StartTimer()
		for i := 0; i < b.N; i++ {
			login(b, sshdPort, users[i], codes[i])
		}
	})
	b.Run("otpgate-sshd/key-only", func(b *testing.B) {
		for range b.N {
			login(b, sshdPort, sshdExempt, "")
		}
	})
	b.Run("openssh/publickey", func(b *testing.B) {
		for range b.N {
			login(b, opensshBenchPort, sshdExempt, "")
		}
	})
	b.Run("openssh/publickey-curve25519", func(b *testing.B) {
		for range b.N {
			login(b, opensshBenchPort, sshdExempt, "", "-o", "KexAlgorithms=curve25519-sha256")
		}
	})
	b.Run("nsenter-floor", func(b *testing.B) {
		for range b.N {
			if out, exit, err := c.Exec(context.Background(), "true"); err != nil || exit != 0 {
				b.Fatalf("true: %d %v %s", exit, err, out)
			}
		}
	})
	if n := strings.Count(e.server.Output(), "second_factor=success"); n == 0 {
		b.Error("no login with a code was measured")
	}
}
