//go:build integration

package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
)

// In-container paths used by the PAM suites.
const (
	pamSocket    = otpgatedSocket
	pamConfig    = otpgatedConfig
	pamGoLibDir  = "/usr/lib/otpgate"
	pamGoLib     = pamGoLibDir + "/libpam_otpgate_go.so"
	pamWorkDir   = "/tmp/pamtest"
	pamSSHDPort  = 2222
	pamCmdLimit  = 60 * time.Second // no single command may take longer
	pamRequired  = "requser"        // in policy.required_users, never enrolled
	pamMaxFailed = 3                // rate_limit.max_failures
)

// pamDaemonConfig is otpgated's configuration in the PAM suites: a short
// failure limit so that tests can lock a user, and one required user.
var pamDaemonConfig = fmt.Sprintf(`[daemon]
socket = %q
state_dir = "/var/lib/otpgate"

[policy]
default = "optional"
required_users = [%q]

[rate_limit]
max_failures = %d
lockout = "90m"
max_lockout = "2h"
`, pamSocket, pamRequired, pamMaxFailed)

// pamEnv is one container with the built module installed where Debian
// keeps PAM modules, and a real otpgated.
type pamEnv struct {
	*otpgatedFixture
}

// newPAMEnv starts a container, installs bin/pam_otpgate.so into the system
// PAM directory and bin/libpam_otpgate_go.so into /usr/lib/otpgate (the
// container's root is an overlay, so the host is untouched), and starts
// otpgated. opts are passed to container.Start.
func newPAMEnv(t testing.TB, opts ...container.Option) *pamEnv {
	t.Helper()
	container.Require(t, "pamtester", "oathtool", "pkg-config", "install", "timeout", "bash")
	loader := container.Bin(t, "pam_otpgate.so")
	golib := container.Bin(t, "libpam_otpgate_go.so")

	c := container.Start(t, opts...)
	e := &pamEnv{newOtpgatedFixture(t, c, pamDaemonConfig)}
	pamDir := e.pamModuleDir()
	c.Run(t, "install", "-D", "-o", "root", "-g", "root", "-m", "0644", loader, pamDir+"/pam_otpgate.so")
	c.Run(t, "install", "-D", "-o", "root", "-g", "root", "-m", "0644", golib, pamGoLib)
	c.MkdirAll(t, pamWorkDir, 0o755)
	e.serve()
	return e
}

// pamModuleDir is the system PAM module directory inside the container,
// found the way pam/Makefile finds it.
func (e *pamEnv) pamModuleDir() string {
	e.t.Helper()
	libdir := strings.TrimSpace(e.c.Run(e.t, "pkg-config", "--variable=libdir", "pam"))
	if libdir == "" {
		e.t.Fatal("pkg-config --variable=libdir pam printed nothing (apt-get install libpam0g-dev)")
	}
	return libdir + "/security"
}

// writePAMService writes /etc/pam.d/<name>.
func (e *pamEnv) writePAMService(name, stack string) {
	e.t.Helper()
	e.c.WriteFile(e.t, "/etc/pam.d/"+name, []byte(stack), 0o644)
}

// addUser creates a user in the container (no otpgate enrollment).
func (e *pamEnv) addUser(name string) {
	e.t.Helper()
	e.c.AddUser(e.t, name)
}

// setPassword gives user a Unix password.
func (e *pamEnv) setPassword(user, password string) {
	e.t.Helper()
	cmd := e.c.Command("chpasswd")
	cmd.Stdin = strings.NewReader(user + ":" + password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("chpasswd %s: %v\n%s", user, err, out)
	}
}

// enroll creates user (if missing) and stores a fresh random secret for
// it in otpgated through admin_import, with recovery codes if given.
func (e *pamEnv) enroll(user string, recovery ...string) {
	e.t.Helper()
	if _, err := e.c.LookupUser(user); err != nil {
		e.addUser(user)
	}
	e.otpgatedFixture.enroll(user, recovery...)
}

// lock makes otpgated lock user by sending wrong codes, and returns the
// message the daemon now gives for that user (what the PAM module must
// show).
func (e *pamEnv) lock(user string) string {
	e.t.Helper()
	for i := 0; i < pamMaxFailed; i++ {
		e.login(protocol.Request{User: user, Service: "pamtest-lock"}, e.wrongCode(user))
	}
	return e.checkMessage(user, protocol.OutcomeLocked)
}

// checkMessage opens a login of user, asserts the decision its first step
// shows and returns its (non-empty) words.
func (e *pamEnv) checkMessage(user string, want protocol.Outcome) string {
	e.t.Helper()
	st := e.login(protocol.Request{User: user, Service: "pamtest"}, "")
	if stepOutcome(st) != want {
		e.t.Fatalf("login of %s: got %+v, want %s", user, st, want)
	}
	if stepText(st) == "" {
		e.t.Fatalf("login of %s: %s without words", user, want)
	}
	return stepText(st)
}

// pamResult is what pamtester printed and its exit status.
type pamResult struct {
	out  string
	exit int
}

// pamtester strings for the PAM results the suites expect (pam_strerror).
const (
	pamOK          = "pamtester: successfully authenticated"
	pamAuthErr     = "pamtester: Authentication failure"
	pamUnavail     = "pamtester: Authentication service cannot retrieve authentication info"
	pamPermDenied  = "pamtester: Permission denied"
	pamMaxTries    = "pamtester: Have exhausted maximum number of retries for service"
	pamCodePrompt  = "Verification code: "
	pamPassAndCode = "Password and verification code: "
)

// pamtester runs `pamtester SERVICE USER authenticate` inside the
// container, as runAs ("" for root), with input on stdin, under a deadline.
func (e *pamEnv) pamtester(runAs, service, user, input string) pamResult {
	e.t.Helper()
	args := []string{"-k", "5", strconv.Itoa(int(pamCmdLimit / time.Second / 2)), "pamtester", service, user, "authenticate"}
	var cmd *exec.Cmd
	if runAs == "" {
		cmd = e.c.Command("timeout", args...)
	} else {
		cmd = e.c.CommandAs(runAs, "timeout", args...)
	}
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	res := pamResult{out: string(out)}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.exit = exitErr.ExitCode()
	default:
		e.t.Fatalf("pamtester %s %s: %v\n%s", service, user, err, out)
	}
	if res.exit == 124 || res.exit == 137 {
		e.t.Fatalf("pamtester %s %s hung (killed by timeout):\n%s", service, user, out)
	}
	return res
}

// containsMessage reports whether out contains the daemon message msg,
// allowing the numbers in it to differ (a lockout message counts down).
func containsMessage(out, msg string) bool {
	digits := regexp.MustCompile(`[0-9]+`)
	return msg != "" && strings.Contains(digits.ReplaceAllString(out, "#"), digits.ReplaceAllString(msg, "#"))
}

// readOptional returns the in-container file p, or "" if it does not exist.
func (e *pamEnv) readOptional(p string) string {
	e.t.Helper()
	data, err := os.ReadFile(e.c.Path(p))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return string(data)
}
