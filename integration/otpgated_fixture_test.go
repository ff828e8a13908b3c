//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
)

// Where otpgated lives in every container of the suites: the default
// socket (otpgate finds it without flags) and configuration file.
const (
	otpgatedSocket   = "/run/otpgate/otpgated.sock"
	otpgatedConfig   = "/etc/otpgate/config.toml"
	otpgatedStateDir = "/var/lib/otpgate"
)

// otpgatedFixture is the real otpgated in a container, driven as root
// through its socket, and the otpgate CLI beside it: what the suites'
// environments (pamEnv, sshdEnv, relEnv, cliEnv and those built on them)
// share by embedding it.
type otpgatedFixture struct {
	t testing.TB
	c *container.Container
	// otpgatedBin and bin are the built otpgated and otpgate, valid inside
	// the container.
	otpgatedBin string
	bin         string
	// daemon is the running otpgated; its output is the audit log.
	daemon *container.Process
	// client talks to otpgated as root.
	client *protocol.Client
	// secrets maps each user enrolled by the test to its base32 secret.
	secrets map[string]string
}

// newOtpgatedFixture writes otpgated's configuration file (config) into c
// and makes its state directory private, without starting otpgated.
func newOtpgatedFixture(t testing.TB, c *container.Container, config string) *otpgatedFixture {
	t.Helper()
	f := &otpgatedFixture{
		t: t, c: c, otpgatedBin: container.Bin(t, "otpgated"), bin: container.Bin(t, "otpgate"),
		client:  &protocol.Client{Socket: c.Path(otpgatedSocket), Timeout: 10 * time.Second},
		secrets: map[string]string{},
	}
	f.writeDaemonConfig(config)
	c.Run(t, "chmod", "0700", otpgatedStateDir)
	return f
}

// startOtpgated is newOtpgatedFixture, then serve.
func startOtpgated(t testing.TB, c *container.Container, config string) *otpgatedFixture {
	t.Helper()
	f := newOtpgatedFixture(t, c, config)
	f.serve()
	return f
}

// writeDaemonConfig replaces otpgated's configuration file; a running
// otpgated reads it when restarted.
func (f *otpgatedFixture) writeDaemonConfig(config string) {
	f.t.Helper()
	f.c.MkdirAll(f.t, path.Dir(otpgatedConfig), 0o755)
	f.c.WriteFile(f.t, otpgatedConfig, []byte(config), 0o644)
}

// launch starts otpgated under the wrapper command line (strace ...,
// prlimit ...; none for otpgated alone) without waiting for it.
func (f *otpgatedFixture) launch(wrapper ...string) *container.Process {
	f.t.Helper()
	args := append(append([]string(nil), wrapper...), f.otpgatedBin, "-config", otpgatedConfig)
	f.daemon = f.c.Background(f.t, args[0], args[1:]...)
	return f.daemon
}

// serve starts otpgated and waits until its socket listens.
func (f *otpgatedFixture) serve() {
	f.t.Helper()
	f.launch()
	f.c.WaitForSocket(f.t, otpgatedSocket, 15*time.Second)
}

// restartDaemon stops otpgated if it still runs (a test may have stopped
// it), starts it again and waits until its socket listens.
func (f *otpgatedFixture) restartDaemon() {
	f.t.Helper()
	if f.daemon != nil {
		if err := f.daemon.Stop(); err != nil {
			f.t.Fatalf("stop otpgated: %v", err)
		}
	}
	f.serve()
}

// auditLog is what otpgated has logged so far, its audit lines included.
func (f *otpgatedFixture) auditLog() string { return f.daemon.Output() }

// do sends req to otpgated as root and fails the test on an error reply.
func (f *otpgatedFixture) do(req *protocol.Request) *protocol.Response {
	f.t.Helper()
	resp, err := f.client.Do(context.Background(), req)
	if err != nil {
		f.t.Fatalf("otpgated %s %s: %v", req.Op, req.User, err)
	}
	return resp
}

// importSecret stores a fresh random 20-byte secret for user through
// admin_import (SHA1, 6 digits, period in seconds, and the recovery codes
// given), records it in secrets, and returns it raw.
func (f *otpgatedFixture) importSecret(user string, period int, recovery ...string) []byte {
	f.t.Helper()
	raw := make([]byte, 20)
	if _, err := rand.Read(raw); err != nil {
		f.t.Fatal(err)
	}
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
	f.do(&protocol.Request{Op: protocol.OpAdminImport, User: user, Import: &protocol.Import{
		Secret: secret, Algorithm: "SHA1", Digits: 6, Period: period, RecoveryCodes: recovery,
	}})
	f.secrets[user] = secret
	return raw
}

// enroll enrolls user with a fresh 30-second secret (see importSecret).
// The user must exist for otpgated (in the container's /etc/passwd or
// through NSS); pamEnv.enroll creates it.
func (f *otpgatedFixture) enroll(user string, recovery ...string) {
	f.t.Helper()
	f.importSecret(user, 30, recovery...)
}

// oathtool computes the TOTP code of a base32 secret inside the container
// with oathtool (an independent implementation), with extra flags
// (--now=@T); the secret goes through stdin, never argv.
func (f *otpgatedFixture) oathtool(secret string, flags ...string) string {
	f.t.Helper()
	cmd := f.c.Command("oathtool", append(append([]string{"--totp", "-b"}, flags...), "-")...)
	cmd.Stdin = strings.NewReader(secret + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("oathtool: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// code is user's current code, from oathtool.
func (f *otpgatedFixture) code(user string) string {
	f.t.Helper()
	secret, ok := f.secrets[user]
	if !ok {
		f.t.Fatalf("user %s is not enrolled", user)
	}
	code := f.oathtool(secret)
	if len(code) != 6 {
		f.t.Fatalf("oathtool printed %q", code)
	}
	return code
}

// wrongCode is a code that is not user's for any step near now.
func (f *otpgatedFixture) wrongCode(user string) string {
	f.t.Helper()
	n, err := strconv.Atoi(f.code(user))
	if err != nil {
		f.t.Fatal(err)
	}
	return fmt.Sprintf("%06d", (n+500000)%1000000)
}

// otpgateCmd builds the command line of otpgate run as user ("root" for
// root) under timeout(1), with extra environment (see mergeEnv).
func (f *otpgatedFixture) otpgateCmd(user string, env []string, args ...string) *exec.Cmd {
	argv := append([]string{"60", f.bin}, args...)
	var cmd *exec.Cmd
	if user == "root" {
		cmd = f.c.Command("timeout", argv...)
	} else {
		cmd = f.c.CommandAs(user, "timeout", argv...)
	}
	cmd.Env = mergeEnv(cmd.Env, env)
	return cmd
}

// otpgate runs otpgate as user ("root" for root) with stdin and extra
// environment, and returns the combined output and exit code.
func (f *otpgatedFixture) otpgate(user, stdin string, env []string, args ...string) (string, int) {
	f.t.Helper()
	cmd := f.otpgateCmd(user, env, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			f.t.Fatalf("otpgate %v as %s: %v\n%s", args, user, err, out.String())
		}
		code = ee.ExitCode()
	}
	if code == 124 {
		f.t.Fatalf("otpgate %v as %s timed out\n%s", args, user, out.String())
	}
	return out.String(), code
}

// mergeEnv overrides base with extra ("K=V" sets, "K" alone removes).
func mergeEnv(base, extra []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		kept := out[:0]
		for _, b := range out {
			if bk, _, _ := strings.Cut(b, "="); bk != k {
				kept = append(kept, b)
			}
		}
		out = kept
		if strings.Contains(kv, "=") {
			out = append(out, kv)
		}
	}
	return out
}

// login is testutil.Login through the fixture's client (as root), failing the
// test on an error reply. A step that asks for no code gets none: code ""
// opens the login and returns its first step.
func (f *otpgatedFixture) login(req protocol.Request, code string) *protocol.LoginStep {
	f.t.Helper()
	var st *protocol.LoginStep
	var err error
	if code == "" {
		st, err = f.startLogin(req)
	} else {
		st, err = testutil.Login(f.client, req, code)
	}
	if err != nil {
		f.t.Fatalf("login of %s: %v", req.User, err)
	}
	return st
}

// startLogin opens a login dialogue for req and returns its first step.
func (f *otpgatedFixture) startLogin(req protocol.Request) (*protocol.LoginStep, error) {
	req.Op = protocol.OpLoginStart
	if req.Login == nil {
		req.Login = &protocol.LoginStart{}
	}
	dlg, step, err := f.client.StartDialogue(&req)
	if err != nil {
		return nil, err
	}
	return step, dlg.Close()
}

// stepText joins a login step's messages, one a line.
func stepText(st *protocol.LoginStep) string {
	texts := make([]string, len(st.Messages))
	for i, m := range st.Messages {
		texts[i] = m.Text
	}
	return strings.Join(texts, "\n")
}

// stepOutcome names the decision a login step shows, from its verdict and
// its words: accept (success), not_enrolled (skip: no code applies), a
// failure told apart by its first words (replay, reject, locked,
// enroll_required), or, for a step that asks, code_required or
// enroll_offered.
func stepOutcome(st *protocol.LoginStep) protocol.Outcome {
	text := stepText(st)
	switch st.Verdict {
	case protocol.VerdictSuccess:
		return protocol.OutcomeAccept
	case protocol.VerdictSkip:
		return protocol.OutcomeNotEnrolled
	case protocol.VerdictDeny, protocol.VerdictRefused:
		switch {
		case strings.HasPrefix(text, "This code was already used"):
			return protocol.OutcomeReplay
		case strings.HasPrefix(text, "Wrong code."), strings.HasPrefix(text, "This code can no longer be used"):
			return protocol.OutcomeReject
		case strings.HasPrefix(text, "Too many failed attempts"):
			return protocol.OutcomeLocked
		case strings.Contains(text, "two-factor authentication is not set up"):
			return protocol.OutcomeEnrollRequired
		}
	case "":
		if strings.Contains(text, "Or enter this key in the app: ") {
			return protocol.OutcomeEnrollOffered
		}
		if len(st.Prompts) > 0 && text == "" {
			return protocol.OutcomeCodeRequired
		}
	}
	return protocol.Outcome(fmt.Sprintf("%s: %q", st.Verdict, text))
}

// recoveryLeft is how many recovery codes a login that took one says are
// left, -1 when it took none.
func recoveryLeft(st *protocol.LoginStep) int {
	text := stepText(st)
	if st.Verdict != protocol.VerdictSuccess || !strings.HasPrefix(text, "Recovery code accepted; ") {
		return -1
	}
	var n int
	switch {
	case strings.HasPrefix(text, "Recovery code accepted; none left"):
		return 0
	case strings.HasPrefix(text, "Recovery code accepted; only "):
		_, err := fmt.Sscanf(text, "Recovery code accepted; only %d left", &n)
		if err != nil {
			return -1
		}
	default:
		if _, err := fmt.Sscanf(text, "Recovery code accepted; %d left", &n); err != nil {
			return -1
		}
	}
	return n
}
