//go:build integration

package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/qrterm/qrtermtest"
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
	container.Require(t, "oathtool", "/usr/sbin/sshd", "ssh", "nsenter")
	demo := container.Bin(t, "otpgate-demo")
	cmd := exec.Command(demo, "-bin", filepath.Dir(demo))
	out := &demoOutput{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
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

// demoOutput is a bytes.Buffer written by a process and read by the test.
type demoOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *demoOutput) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *demoOutput) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
