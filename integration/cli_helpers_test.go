//go:build integration

package integration

// Helpers of the otpgate CLI suites (cli_*_test.go): a container running the
// real otpgated, the real otpgate binary run as a user with piped stdio or
// inside tmux, and oathtool as the independent code generator.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
	"github.com/otpgate/otpgate/otp"
)

// In-container paths of the CLI suites.
const (
	cliSocket = otpgatedSocket // the default: otpgate finds it without flags
	cliConfig = otpgatedConfig
	// cliMaxFailures is high so that the wrong codes these tests type do not
	// lock users; the counter itself is asserted.
	cliMaxFailures = 50
)

var cliDaemonConfig = fmt.Sprintf(`issuer = "otpgate-test"

[daemon]
socket = %q
state_dir = "/var/lib/otpgate"

[rate_limit]
max_failures = %d

[enroll]
recovery_codes = 10
`, cliSocket, cliMaxFailures)

// cliEnv is a container with otpgated running and the otpgate binary.
type cliEnv struct {
	*otpgatedFixture
}

func newCLIEnv(t testing.TB, opts ...container.Option) *cliEnv {
	t.Helper()
	container.Require(t, "tmux", "zbarimg", "oathtool", "timeout", "sha256sum", "find", "ln", "stty")
	return &cliEnv{startOtpgated(t, container.Start(t, opts...), cliDaemonConfig)}
}

// status asks otpgated (as root, through the protocol) for user's status.
func (e *cliEnv) status(user string) protocol.UserStatus {
	e.t.Helper()
	resp, err := e.client.Do(context.Background(), &protocol.Request{Op: protocol.OpStatus, User: user})
	if err != nil {
		e.t.Fatalf("status %s: %v", user, err)
	}
	return *resp.Status
}

// verify logs user in with code, as the PAM module does, and returns the
// login's last step.
func (e *cliEnv) verify(user, code string) *protocol.LoginStep {
	e.t.Helper()
	st, err := testutil.Login(e.client, protocol.Request{User: user, Service: "cli-test"}, code)
	if err != nil {
		e.t.Fatalf("login of %s: %v", user, err)
	}
	return st
}

// wrongCode returns a 6-digit code that is not the code of secret for any
// step within ±10 of now.
func wrongCode(t testing.TB, secret string) string {
	t.Helper()
	key, err := otp.DecodeSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	near := map[string]bool{}
	now := time.Now()
	for i := -10; i <= 10; i++ {
		near[otp.TOTP(key, now.Add(time.Duration(i)*30*time.Second), otp.DefaultParams())] = true
	}
	for n := 0; ; n++ {
		c := fmt.Sprintf("%06d", (n*7919+123457)%1000000)
		if !near[c] {
			return c
		}
	}
}

// session is otpgate running with piped stdin, for dialogues whose answers
// depend on what it printed (the code of a new secret).
type session struct {
	t     testing.TB
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   testutil.SyncBuffer
	done  chan struct{}
	err   error
}

func (s *session) Write(p []byte) (int, error) {
	return s.out.Write(p)
}

func (s *session) output() string {
	return s.out.String()
}

// start runs otpgate as user and returns the running session.
func (e *cliEnv) start(user string, env []string, args ...string) *session {
	e.t.Helper()
	s := &session{t: e.t, cmd: e.otpgateCmd(user, env, args...), done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = s, s
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		e.t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	e.t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL) // fails only once the group is gone
			<-s.done
		}
	})
	return s
}

// waitFor waits until the output contains want and returns the output.
func (s *session) waitFor(want string) string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := s.output()
		if strings.Contains(out, want) {
			return out
		}
		select {
		case <-s.done:
			s.t.Fatalf("otpgate exited (%v) before printing %q:\n%s", s.err, want, s.output())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %q:\n%s", want, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *session) send(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		s.t.Fatalf("write to otpgate: %v", err)
	}
}

// wait closes stdin and waits for the exit code.
func (s *session) wait() (string, int) {
	s.t.Helper()
	s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Fatalf("otpgate did not exit:\n%s", s.output())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(s.err, &ee) {
		code = ee.ExitCode()
	} else if s.err != nil {
		s.t.Fatalf("otpgate: %v", s.err)
	}
	return s.output(), code
}

// field returns the value of the first "  Name:  value" line in out.
func field(t testing.TB, out, name string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %q line in:\n%s", name, out)
	return ""
}

// recoveryCodes returns the indented recovery codes printed in out.
func recoveryCodes(out string) []string {
	var codes []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "    ") {
			c := strings.TrimSpace(line)
			if len(c) == 14 && c[4] == '-' && c[9] == '-' {
				codes = append(codes, c)
			}
		}
	}
	return codes
}

// nextStep is an oathtool flag for the code of the next 30-second step,
// which otpgated accepts (skew 1) even when the current step's code was
// just used.
func nextStep() string {
	return "--now=@" + strconv.FormatInt(time.Now().Unix()+30, 10)
}
