//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/qrterm/qrtermtest"
	"github.com/otpgate/otpgate/internal/testutil"
	"github.com/otpgate/otpgate/otp"
)

// What the demo prints: the container's pid in the nsenter commands, the
// manual key, and the recovery codes.
var (
	demoPIDRE      = regexp.MustCompile(`nsenter -t ([0-9]+) -a ssh `)
	demoKeyRE      = regexp.MustCompile(`(?m)^  Key:  ([A-Z2-7 ]+)$`)
	demoRecoveryRE = regexp.MustCompile(`(?m)^    [0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$`)
)

// TestDemoCheck runs `otpgate-demo -check` (what `sudo make demo` starts,
// non-interactively): the QR code it prints must decode to the enrolled
// secret, the printed ssh commands must log in through both servers, and
// the container must be gone when it exits.
func TestDemoCheck(t *testing.T) {
	container.Require(t, "zbarimg", "oathtool", "/usr/sbin/sshd", "ssh", "nsenter")
	demo := container.Bin(t, "otpgate-demo")
	cmd := exec.Command(demo, "-check", "-bin", filepath.Dir(demo))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := runWithin(t, cmd, 3*time.Minute); err != nil {
		t.Fatalf("otpgate-demo -check: %v\n%s", err, out.String())
	}
	t.Logf("otpgate-demo -check took %v", time.Since(start).Round(time.Millisecond))
	text := out.String()

	if n := strings.Count(text, "logged in as demo on otpgate-demo"); n != 2 {
		t.Errorf("%d successful logins reported, want 2 (OpenSSH and otpgate-sshd):\n%s", n, text)
	}
	uri := qrtermtest.DecodeTerminal(t, text)
	key, err := otp.ParseURI(uri)
	if err != nil {
		t.Fatalf("QR code %q: %v", uri, err)
	}
	if key.Issuer != "otpgate-demo" || key.Account != "demo@otpgate-demo" {
		t.Errorf("QR code issuer %q account %q, want otpgate-demo and demo@otpgate-demo", key.Issuer, key.Account)
	}
	grouped := demoKeyRE.FindStringSubmatch(text)
	if grouped == nil || strings.ReplaceAll(grouped[1], " ", "") != otp.EncodeSecret(key.Secret) {
		t.Errorf("printed key %q is not the QR code's secret", grouped)
	}
	if codes := demoRecoveryRE.FindAllString(text, -1); len(codes) != 10 {
		t.Errorf("%d recovery codes printed, want 10:\n%s", len(codes), text)
	}
	for _, want := range []string{"-p 2222 demo@127.0.0.1", "-p 2223 demo@127.0.0.1", "SSH_ASKPASS=/root/otpgate-demo/askpass"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks the command part %q", want)
		}
	}
	assertGone(t, text)
}

// TestDemoInterrupt starts the demo as `make demo` does and presses Ctrl-C
// (SIGINT): it must exit 0 and leave no container behind.
func TestDemoInterrupt(t *testing.T) {
	cmd, out, done := startDemo(t)
	interruptDemo(t, cmd, out, done)
}

// startDemo starts the demo as `make demo` does and waits until it says
// it runs until Ctrl-C. The demo is killed if the test ends first.
func startDemo(t *testing.T) (*exec.Cmd, *testutil.SyncBuffer, <-chan error) {
	t.Helper()
	container.Require(t, "oathtool", "/usr/sbin/sshd", "ssh", "nsenter")
	demo := container.Bin(t, "otpgate-demo")
	cmd := exec.Command(demo, "-bin", filepath.Dir(demo))
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Ctrl-C if the test fails before it does (an error if it has exited).
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGINT) })
	deadline := time.After(2 * time.Minute)
	for !strings.Contains(out.String(), "until you press Ctrl-C") {
		select {
		case err := <-done:
			t.Fatalf("otpgate-demo exited before it was ready (%v):\n%s", err, out.String())
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("otpgate-demo not ready after 2 minutes:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return cmd, out, done
}

// interruptDemo presses Ctrl-C (SIGINT): the demo must exit 0 and leave
// no container behind.
func interruptDemo(t *testing.T, cmd *exec.Cmd, out *testutil.SyncBuffer, done <-chan error) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("otpgate-demo after Ctrl-C: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("otpgate-demo still running 30 s after SIGINT:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "Tearing down the container") {
		t.Errorf("no teardown message:\n%s", out.String())
	}
	assertGone(t, out.String())
}

// demoCommandRE matches the command lines the demo prints for a person to
// paste into a shell on the host.
var demoCommandRE = regexp.MustCompile(`(?m)^(?:  |Logs: |Status: )(nsenter -t [0-9]+ -a .*)$`)

// demoAskpass answers the code prompt with the recovery code in
// $DEMO_RECOVERY_CODE: the demo's own helper hands out at most two codes a
// minute, and the test logs in more often than that.
const demoAskpass = "#!/bin/sh\nprintf '%s\\n' \"$DEMO_RECOVERY_CODE\"\n"

// TestDemoCommands runs every command line the running demo prints, as a
// person would paste it into a shell on the host, and copies files with
// scp (which speaks SFTP by default) and sftp through both servers with the
// demo's client configuration.
func TestDemoCommands(t *testing.T) {
	container.Require(t, "scp", "sftp", "sh")
	cmd, out, done := startDemo(t)
	text := out.String()
	pid := demoPIDRE.FindStringSubmatch(text)
	if pid == nil {
		t.Fatalf("no nsenter command with the container's pid:\n%s", text)
	}
	recovery := demoRecoveryRE.FindAllString(text, -1)
	if len(recovery) != 10 {
		t.Fatalf("%d recovery codes printed, want 10:\n%s", len(recovery), text)
	}
	nextCode := func(t *testing.T) string {
		t.Helper()
		if len(recovery) == 0 {
			t.Fatal("out of recovery codes")
		}
		code := strings.TrimSpace(recovery[0])
		recovery = recovery[1:]
		return code
	}
	inside := func(argv ...string) []string {
		return append([]string{"nsenter", "-t", pid[1], "-a"}, argv...)
	}
	// host runs a shell line on the host with the given environment and
	// stdin, and returns its output.
	host := func(t *testing.T, line, stdin string, env ...string) string {
		t.Helper()
		c := exec.Command("sh", "-c", line)
		c.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}, env...)
		c.Stdin = strings.NewReader(stdin)
		var b bytes.Buffer
		c.Stdout, c.Stderr = &b, &b
		if err := runWithin(t, c, 90*time.Second); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, b.String())
		}
		return b.String()
	}
	write := func(t *testing.T, p, mode, data string) {
		t.Helper()
		host(t, shellJoin(inside("sh", "-c", `cat > "$1" && chmod "$2" "$1"`, "sh", p, mode)), data)
	}
	write(t, "/root/otpgate-demo/test-askpass", "0755", demoAskpass)
	withRecovery := func(t *testing.T) []string {
		return []string{"SSH_ASKPASS=/root/otpgate-demo/test-askpass", "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0", "DEMO_RECOVERY_CODE=" + nextCode(t)}
	}

	var lines []string
	for _, m := range demoCommandRE.FindAllStringSubmatch(text, -1) {
		lines = append(lines, m[1])
	}
	if len(lines) != 6 {
		t.Fatalf("%d command lines printed, want 6 (two interactive, two with oathtool, logs, status):\n%s", len(lines), text)
	}
	want := "logged in as demo on otpgate-demo"
	for i, line := range lines {
		t.Run(fmt.Sprintf("printed command %d", i+1), func(t *testing.T) {
			t.Log(line)
			switch {
			case strings.Contains(line, " tail -f "):
				// tail -f runs until stopped: it must show the three logs.
				c := exec.Command("sh", "-c", line)
				var b testutil.SyncBuffer
				c.Stdout, c.Stderr = &b, &b
				c.WaitDelay = time.Second
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				defer func() { c.Process.Kill(); c.Wait() }()
				deadline := time.Now().Add(30 * time.Second)
				for _, log := range []string{"otpgated", "sshd", "otpgate-sshd"} {
					for !strings.Contains(b.String(), "==> /var/log/otpgate-demo/"+log+".log <==") {
						if time.Now().After(deadline) {
							t.Fatalf("%s did not show %s.log:\n%s", line, log, b.String())
						}
						time.Sleep(50 * time.Millisecond)
					}
				}
			case strings.Contains(line, " admin show "):
				if got := host(t, line, ""); !strings.Contains(got, "demo") {
					t.Errorf("status:\n%s", got)
				}
			case strings.Contains(line, "SSH_ASKPASS="):
				if got := host(t, line, ""); !strings.Contains(got, want) {
					t.Errorf("got:\n%s", got)
				}
			default:
				// The interactive login, with the code typed by the
				// test's askpass and a shell command on stdin.
				if got := host(t, line, "echo "+want+"-interactively\n", withRecovery(t)...); !strings.Contains(got, want+"-interactively") {
					t.Errorf("got:\n%s", got)
				}
			}
		})
	}

	for _, port := range []string{"2222", "2223"} {
		t.Run("scp and sftp to port "+port, func(t *testing.T) {
			payload := "payload for port " + port + "\n"
			write(t, "/root/otpgate-demo/upload.txt", "0644", payload)
			cfg := []string{"-F", "/root/otpgate-demo/ssh_config", "-P", port}
			scp := append(append([]string{"scp"}, cfg...), "/root/otpgate-demo/upload.txt", "demo@127.0.0.1:up-"+port+".txt")
			host(t, shellJoin(inside(scp...)), "", withRecovery(t)...)
			// Commands on stdin: sftp -b would set BatchMode, which
			// forbids the code prompt.
			sftp := append(append([]string{"sftp"}, cfg...), "demo@127.0.0.1")
			get := "get up-" + port + ".txt /root/otpgate-demo/down-" + port + ".txt\n"
			host(t, shellJoin(inside(sftp...)), get, withRecovery(t)...)
			if got := host(t, shellJoin(inside("cat", "/root/otpgate-demo/down-"+port+".txt")), ""); got != payload {
				t.Errorf("scp up and sftp back gave %q, want %q", got, payload)
			}
		})
	}
	interruptDemo(t, cmd, out, done)
}

// shellJoin quotes argv for a POSIX shell.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// assertGone checks that the container whose pid the demo printed no
// longer exists.
func assertGone(t *testing.T, out string) {
	t.Helper()
	m := demoPIDRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no nsenter command with the container's pid in the output:\n%s", out)
	}
	if _, err := os.Stat("/proc/" + m[1]); !os.IsNotExist(err) {
		t.Errorf("the container's pid 1 (%s) still exists after the demo exited (stat: %v)", m[1], err)
	}
}

// runWithin runs cmd and kills it after limit.
func runWithin(t *testing.T, cmd *exec.Cmd, limit time.Duration) error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		return err
	}
	timer := time.AfterFunc(limit, func() { cmd.Process.Kill() })
	defer timer.Stop()
	return cmd.Wait()
}
