//go:build integration

package integration

// Shared fixture of the reliability and security suite (crash loop, ack
// after fsync, disk faults, clock, local denial of service, leaks; see
// docs/SECURITY.md): a container with the real otpgated, users
// enrolled through admin_import with secrets the test knows, and a driver
// that talks to the daemon's real socket with protocol.Client as root.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
	"github.com/otpgate/otpgate/otp"
)

// In-container paths of the reliability suite.
const (
	relSocket     = otpgatedSocket
	relConfigPath = otpgatedConfig
	relStateDir   = otpgatedStateDir
	relDB         = relStateDir + "/otpgate.db"
	// relMaxFailures is rate_limit.max_failures; a lockout lasts an hour,
	// far longer than any test, so a lockout seen once must hold.
	relMaxFailures = 6
	// relConnCap is daemon.max_conns_per_uid.
	relConnCap = 16
)

// relConfig is otpgated's configuration in the reliability suite at the
// given log level: a short request timeout, a per-uid cap the DoS test can
// reach, and a lockout that outlasts every test.
func relConfig(logLevel string) string {
	return fmt.Sprintf(`[daemon]
socket = %q
state_dir = %q
log_level = %q
max_conns_per_uid = %d
request_timeout = "3s"

[rate_limit]
max_failures = %d
lockout = "1h"
max_lockout = "2h"
# These suites drive one user's failures from one address and count them
# per user; the per-address limit is tested in daemon/source_test.go.
per_source_max_failures = 0
`, relSocket, relStateDir, logLevel, relConnCap, relMaxFailures)
}

// soak reports whether the long variants run (`make test-soak` sets
// OTPGATE_SOAK=1).
func soak() bool { return os.Getenv("OTPGATE_SOAK") == "1" }

// relUser is an enrolled user whose secret the test knows.
type relUser struct {
	name   string
	secret []byte
	b32    string
	params otp.Params
}

// code returns u's code for step.
func (u *relUser) code(step uint64) string {
	return otp.HOTP(u.secret, step, u.params.Algorithm, u.params.Digits)
}

// step returns u's current step.
func (u *relUser) step() uint64 { return otp.Step(time.Now(), u.params.Period) }

// awaitRoomInStep returns at once if at least room is left of the current
// TOTP step of period, else after the next step has begun. A sequence that
// uses the codes of the steps around one center (center-1 for one request,
// center for a later one) then runs inside the ±1 window even when the
// machine is slow; it is not a timing assertion, only a way not to start
// such a sequence a moment before a step boundary.
func awaitRoomInStep(period int, room time.Duration) {
	p := time.Duration(period) * time.Second
	now := time.Now()
	if left := p - time.Duration(now.UnixNano())%p; left < room {
		time.Sleep(left + 10*time.Millisecond)
	}
}

// wrongCode returns a code that matches none of u's steps within 40 steps
// of now, so the daemon judges it a plain wrong code (not a clock hint).
func (u *relUser) wrongCode() string {
	center := u.step()
	near := map[string]bool{}
	for s := center - 40; s <= center+40; s++ {
		near[u.code(s)] = true
	}
	for {
		n, err := rand.Int(rand.Reader, big.NewInt(1000000))
		if err != nil {
			panic(err)
		}
		if c := fmt.Sprintf("%06d", n.Int64()); !near[c] {
			return c
		}
	}
}

// relEnv is one container with otpgated and enrolled users.
type relEnv struct {
	*otpgatedFixture
	users map[string]*relUser
}

// newRelEnv starts a container with configuration cfg (see relConfig)
// and a running otpgated. opts go to container.Start.
func newRelEnv(t testing.TB, cfg string, opts ...container.Option) *relEnv {
	t.Helper()
	e := newRelContainer(t, cfg, opts...)
	e.start()
	return e
}

// newRelContainer is newRelEnv without starting otpgated.
func newRelContainer(t testing.TB, cfg string, opts ...container.Option) *relEnv {
	t.Helper()
	return &relEnv{otpgatedFixture: newOtpgatedFixture(t, container.Start(t, opts...), cfg), users: map[string]*relUser{}}
}

// start starts otpgated and waits until it answers a ping.
func (e *relEnv) start() *container.Process {
	e.t.Helper()
	return e.startWrapped()
}

// startWrapped starts otpgated under the wrapper command line (strace
// ..., prlimit ...; none for otpgated alone) and waits until it answers a
// ping.
func (e *relEnv) startWrapped(wrapper ...string) *container.Process {
	e.t.Helper()
	e.waitReady(e.launch(wrapper...))
	return e.daemon
}

// waitReady waits until p's otpgated answers a ping; it fails the test,
// with the daemon's output, if p exits first or after 20 seconds.
func (e *relEnv) waitReady(p *container.Process) {
	e.t.Helper()
	if err := e.ready(p, 20*time.Second); err != nil {
		e.t.Fatalf("%v\noutput of otpgated:\n%s", err, p.Output())
	}
}

// ready is waitReady returning an error instead of failing the test.
func (e *relEnv) ready(p *container.Process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	ping := &protocol.Client{Socket: e.client.Socket, Timeout: 200 * time.Millisecond}
	for {
		if p.Exited() {
			if err := p.Wait(); err != nil {
				return fmt.Errorf("otpgated exited before serving: %w", err)
			}
			return errors.New("otpgated exited before serving")
		}
		if _, err := ping.Do(context.Background(), &protocol.Request{Op: protocol.OpPing}); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("otpgated does not answer a ping after %v", timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stop stops the running otpgated with SIGTERM and waits for it.
func (e *relEnv) stop() {
	e.t.Helper()
	if err := e.daemon.Stop(); err != nil {
		e.t.Fatalf("stop otpgated: %v", err)
	}
}

// enroll creates the user in the container and stores a fresh random
// 20-byte secret for it with admin_import (period in seconds).
func (e *relEnv) enroll(name string, period int, recovery ...string) *relUser {
	e.t.Helper()
	if _, err := e.c.LookupUser(name); err != nil {
		e.c.AddUser(e.t, name)
	}
	raw := e.importSecret(name, period, recovery...)
	u := &relUser{
		name: name, secret: raw, b32: e.secrets[name],
		params: otp.Params{Algorithm: otp.SHA1, Digits: 6, Period: period},
	}
	e.users[name] = u
	return u
}

// verify logs user in with code as root, as the PAM module does, and
// returns the outcome: the decision the login showed (stepOutcome),
// "error:<code>" for an error reply, or "unavailable" when the daemon
// could not be reached or did not answer; and the login's last step.
func (e *relEnv) verify(cl *protocol.Client, user, code string) (string, *protocol.LoginStep) {
	st, err := testutil.Login(cl, protocol.Request{User: user, Service: "reliability"}, code)
	return outcomeOf(st, err), st
}

// outcomeOf classifies a login's last step or failure as verify does.
func outcomeOf(st *protocol.LoginStep, err error) string {
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe):
		return "error:" + string(pe.Code)
	case err != nil:
		return "unavailable"
	}
	return string(stepOutcome(st))
}

// daemonHostPid returns the host pid of the otpgated run by p, which may
// be otpgated itself or a wrapper (strace, prlimit) that started it.
func daemonHostPid(t testing.TB, p *container.Process) int {
	t.Helper()
	return hostPidOf(t, p, "/otpgated")
}

// hostPidOf returns the host pid of the process run by p (itself or a
// descendant, once it has executed) whose executable ends in suffix.
func hostPidOf(t testing.TB, p *container.Process, suffix string) int {
	t.Helper()
	pid := p.HostPid()
	for range 200 {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); strings.HasSuffix(exe, suffix) {
			return pid
		}
		if kid := firstChildPid(pid); kid > 0 {
			pid = kid
			continue
		}
		time.Sleep(10 * time.Millisecond)
		pid = p.HostPid()
	}
	t.Fatalf("no %s process under pid %d", suffix, p.HostPid())
	return 0
}

// firstChildPid returns a child of pid (from its threads' children lists),
// or 0.
func firstChildPid(pid int) int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		var kid int
		if _, err := fmt.Sscan(string(data), &kid); err == nil {
			return kid
		}
	}
	return 0
}
