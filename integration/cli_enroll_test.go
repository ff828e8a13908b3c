//go:build integration

package integration

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/qrterm/qrtermtest"
	"github.com/otpgate/otpgate/otp"
)

// tmux drives a real terminal for alice.
type tmuxPane struct {
	e    *cliEnv
	user string
}

func (p *tmuxPane) tmux(args ...string) string {
	p.e.t.Helper()
	cmd := p.e.c.CommandAs(p.user, "tmux", args...)
	cmd.Env = mergeEnv(cmd.Env, []string{"TERM=xterm-256color"})
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.e.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// capture returns the pane's text, history included, wrapped lines joined.
func (p *tmuxPane) capture() string {
	p.e.t.Helper()
	return p.tmux("capture-pane", "-p", "-J", "-t", "cli", "-S", "-")
}

func (p *tmuxPane) waitFor(want string) string {
	p.e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := p.capture()
		if strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			p.e.t.Fatalf("timed out waiting for %q in the pane:\n%s", want, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *tmuxPane) typeLine(s string) {
	p.e.t.Helper()
	p.tmux("send-keys", "-t", "cli", "-l", s)
	p.tmux("send-keys", "-t", "cli", "Enter")
}

var recoveryCodeRE = regexp.MustCompile(`^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$`)

// TestCLIEnrollLifecycle: enrollment in a real terminal, the QR code
// read back by zbarimg, confirmation with oathtool's code, recovery codes,
// and the refusals that protect an active enrollment.
func TestCLIEnrollLifecycle(t *testing.T) {
	e := newCLIEnv(t)
	e.c.AddUser(t, "alice")
	pane := &tmuxPane{e: e, user: "alice"}
	pane.tmux("new-session", "-d", "-s", "cli", "-x", "200", "-y", "120",
		e.bin+" enroll; echo EXIT=$?; sleep 600")

	screen := pane.waitFor("Enter the code shown in your app to finish:")

	// The QR code, as a phone would read it, is the printed URI.
	uri := field(t, screen, "URI")
	if got := qrtermtest.DecodeTerminal(t, screen); got != uri {
		t.Fatalf("QR code decodes to %q, the printed URI is %q", got, uri)
	}
	key, err := otp.ParseURI(uri)
	if err != nil {
		t.Fatalf("printed URI: %v", err)
	}
	if len(key.Secret) != 20 {
		t.Errorf("secret is %d bytes, want 20 (160 bits)", len(key.Secret))
	}
	secret := otp.EncodeSecret(key.Secret)
	if grouped := field(t, screen, "Key"); strings.ReplaceAll(grouped, " ", "") != secret || !strings.Contains(grouped, " ") {
		t.Errorf("manual key %q does not match the URI's secret in groups of 4", grouped)
	}
	if key.Issuer != "otpgate-test" || !strings.HasPrefix(key.Account, "alice@") {
		t.Errorf("issuer %q account %q", key.Issuer, key.Account)
	}
	for _, want := range []string{"Algorithm:  SHA1", "Digits:     6", "Period:     30 seconds"} {
		if !strings.Contains(screen, want) {
			t.Errorf("missing %q", want)
		}
	}

	// Pending: the secret cannot authenticate yet.
	if st := e.status("alice"); st.State != protocol.StatePending {
		t.Fatalf("state %q while confirming, want pending", st.State)
	}
	if v := e.verify("alice", e.oathtool(secret)); stepOutcome(v) == protocol.OutcomeAccept {
		t.Fatalf("a pending enrollment authenticated: %+v", v)
	}

	// A wrong confirmation is refused and counted.
	pane.typeLine(wrongCode(t, secret))
	pane.waitFor("Wrong code.")
	if st := e.status("alice"); st.State != protocol.StatePending || st.Failures != 1 {
		t.Fatalf("after a wrong confirmation: state %q failures %d, want pending and 1", st.State, st.Failures)
	}

	// oathtool's code activates.
	pane.typeLine(e.oathtool(secret))
	screen = pane.waitFor("Save them to a file?")
	if !strings.Contains(screen, "Two-factor authentication is now active for alice.") {
		t.Errorf("no activation message:\n%s", screen)
	}
	codes := recoveryCodes(screen)
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes printed, want 10:\n%s", len(codes), screen)
	}
	for _, c := range codes {
		if !recoveryCodeRE.MatchString(c) {
			t.Errorf("recovery code %q has the wrong shape", c)
		}
	}
	pane.typeLine("~/recovery.txt")
	screen = pane.waitFor("EXIT=")
	if !strings.Contains(screen, "EXIT=0") {
		t.Fatalf("enroll did not exit 0:\n%s", screen)
	}
	saved := string(e.c.ReadFile(t, "/home/alice/recovery.txt"))
	for _, c := range codes {
		if !strings.Contains(saved, c+"\n") {
			t.Errorf("saved file lacks %s", c)
		}
	}
	if out := e.c.Run(t, "stat", "-c", "%a %U", "/home/alice/recovery.txt"); strings.TrimSpace(out) != "600 alice" {
		t.Errorf("recovery file is %q, want 600 alice", out)
	}

	// status, as alice, human and JSON.
	out, code := e.otpgate("alice", "", nil, "status")
	if code != 0 || !strings.Contains(out, "active (SHA1, 6 digits, 30 s)") || !strings.Contains(out, "10 left") {
		t.Errorf("status exit %d:\n%s", code, out)
	}
	out, code = e.otpgate("alice", "", nil, "status", "--json")
	var st protocol.UserStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("status --json exit %d: %v\n%s", code, err, out)
	}
	if st.User != "alice" || st.State != protocol.StateActive || st.RecoveryRemaining != 10 || st.Failures != 0 {
		t.Errorf("status --json: %+v", st)
	}

	// Re-enroll and disable are refused without a valid current code, and
	// the enrollment stays as it was.
	wrong := wrongCode(t, secret)
	out, code = e.otpgate("alice", strings.Repeat(wrong+"\n", 3), nil, "enroll", "--no-qr")
	if code != 1 || !strings.Contains(out, "already has two-factor authentication") || !strings.Contains(out, "Wrong code.") {
		t.Errorf("re-enroll with a wrong code: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "URI:") || strings.Contains(out, "Key:") {
		t.Errorf("a new secret was shown without a valid code:\n%s", out)
	}
	out, code = e.otpgate("alice", "", nil, "enroll")
	if code != 1 || !strings.Contains(out, "no answer: standard input is closed") {
		t.Errorf("re-enroll without any code: exit %d\n%s", code, out)
	}
	out, code = e.otpgate("alice", strings.Repeat(wrong+"\n", 3), nil, "disable")
	if code != 1 || !strings.Contains(out, "Wrong code.") {
		t.Errorf("disable with a wrong code: exit %d\n%s", code, out)
	}
	if st := e.status("alice"); st.State != protocol.StateActive || st.RecoveryRemaining != 10 || st.Failures != 6 {
		t.Errorf("after refused re-enroll and disable: state %q, %d recovery codes, %d failures; want active, 10, 6", st.State, st.RecoveryRemaining, st.Failures)
	}

	// A recovery code disables (and is accepted where a code is asked).
	// First, admin reset is root's alone.
	out, code = e.otpgate("alice", "", nil, "admin", "reset", "alice")
	if code != 4 || !strings.Contains(out, "admin commands need root: run with sudo") {
		t.Errorf("admin reset as alice: exit %d\n%s", code, out)
	}
	if st := e.status("alice"); st.State != protocol.StateActive {
		t.Fatalf("alice's admin reset changed the state to %q", st.State)
	}
	out, code = e.otpgate("alice", codes[0]+"\n", nil, "disable")
	if code != 0 || !strings.Contains(out, "Two-factor authentication is now off for alice.") {
		t.Errorf("disable with a recovery code: exit %d\n%s", code, out)
	}
	if st := e.status("alice"); st.State != protocol.StateNone {
		t.Errorf("after disable: state %q", st.State)
	}
}

// TestCLIAdminCommands covers admin list/show/reset/unlock and admin enroll
// (the administrator confirms with the user's app) against the daemon.
func TestCLIAdminCommands(t *testing.T) {
	e := newCLIEnv(t)
	e.c.AddUser(t, "bob")
	e.c.AddUser(t, "carol")

	// admin enroll bob: root runs the flow with --qr=png for hand-over.
	s := e.start("root", nil, "admin", "enroll", "bob", "--qr=png", "/root/bob-qr.png")
	screen := s.waitFor("Enter the code shown in your app to finish:")
	uri := field(t, screen, "URI")
	if got := qrtermtest.Zbarimg(t, e.c.Path("/root/bob-qr.png")); got != uri {
		t.Fatalf("PNG decodes to %q, URI is %q", got, uri)
	}
	if out := e.c.Run(t, "stat", "-c", "%a", "/root/bob-qr.png"); strings.TrimSpace(out) != "600" {
		t.Errorf("PNG mode %s, want 600", out)
	}
	key, err := otp.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	bobSecret := otp.EncodeSecret(key.Secret)
	s.send(e.oathtool(bobSecret))
	s.waitFor("Save them to a file?")
	if out, code := s.wait(); code != 0 || !strings.Contains(out, "Not saved.") {
		t.Fatalf("admin enroll exit %d:\n%s", code, out)
	}

	// The PNG is never overwritten.
	out, code := e.otpgate("root", "", nil, "admin", "enroll", "carol", "--qr=png", "/root/bob-qr.png")
	if code != 1 || !strings.Contains(out, "/root/bob-qr.png already exists") {
		t.Errorf("admin enroll onto an existing PNG: exit %d\n%s", code, out)
	}
	if st := e.status("carol"); st.State != protocol.StateNone {
		t.Errorf("a refused PNG path still began an enrollment: %q", st.State)
	}

	// Re-enrolling an active user needs the user's code, or --force.
	out, code = e.otpgate("root", "", nil, "admin", "enroll", "bob", "--no-qr")
	if code != 1 || !strings.Contains(out, "bob already has two-factor authentication") {
		t.Errorf("admin enroll of an active user without --force: exit %d\n%s", code, out)
	}
	s = e.start("root", nil, "admin", "enroll", "bob", "--force", "--no-qr")
	screen = s.waitFor("Enter the code shown in your app to finish:")
	if strings.Contains(screen, "Scan this QR code") {
		t.Errorf("--no-qr drew a QR code")
	}
	s.wait() // stdin closed: the new secret stays pending; bob's old one still works
	if st := e.status("bob"); st.State != protocol.StateActive {
		t.Errorf("an unconfirmed forced re-enroll changed bob's state to %q", st.State)
	}
	if v := e.verify("bob", e.oathtool(bobSecret, nextStep())); stepOutcome(v) != protocol.OutcomeAccept {
		t.Errorf("bob's confirmed secret stopped working before a new one was confirmed: %+v", v)
	}

	// admin list / show, human and JSON.
	out, code = e.otpgate("root", "", nil, "admin", "list")
	if code != 0 || !regexp.MustCompile(`(?m)^USER\s+STATE\s+VIA\s+REQUIRED`).MatchString(out) || !regexp.MustCompile(`(?m)^bob\s+active\s+admin\s`).MatchString(out) {
		t.Errorf("admin list exit %d:\n%s", code, out)
	}
	out, code = e.otpgate("root", "", nil, "admin", "list", "--json")
	var users []protocol.UserStatus
	if err := json.Unmarshal([]byte(out), &users); err != nil || code != 0 {
		t.Fatalf("admin list --json: exit %d %v\n%s", code, err, out)
	}
	found := false
	for _, u := range users {
		found = found || (u.User == "bob" && u.State == protocol.StateActive)
	}
	if !found {
		t.Errorf("bob not active in %+v", users)
	}
	out, code = e.otpgate("root", "", nil, "admin", "show", "bob", "--json")
	var bob protocol.UserStatus
	if err := json.Unmarshal([]byte(out), &bob); err != nil || code != 0 || bob.User != "bob" {
		t.Errorf("admin show --json: exit %d %v\n%s", code, err, out)
	}
	out, code = e.otpgate("bob", "", nil, "admin", "list")
	if code != 4 {
		t.Errorf("admin list as bob: exit %d\n%s", code, out)
	}

	// Lock bob with wrong codes, see it, unlock.
	wrong := wrongCode(t, bobSecret)
	for i := 0; i < cliMaxFailures; i++ {
		e.verify("bob", wrong)
	}
	out, _ = e.otpgate("root", "", nil, "admin", "show", "bob")
	if !regexp.MustCompile(`Locked:\s+until \d\d:\d\d:\d\d \(in \d+[smh]\)`).MatchString(out) {
		t.Errorf("lockout not shown:\n%s", out)
	}
	if out, code = e.otpgate("root", "", nil, "admin", "unlock", "bob"); code != 0 {
		t.Errorf("unlock: exit %d\n%s", code, out)
	}
	if st := e.status("bob"); st.Failures != 0 || !st.LockedUntil.IsZero() {
		t.Errorf("after unlock: %+v", st)
	}

	// reset as root.
	if out, code = e.otpgate("root", "", nil, "admin", "reset", "bob"); code != 0 || !strings.Contains(out, "Reset bob") {
		t.Errorf("reset: exit %d\n%s", code, out)
	}
	if st := e.status("bob"); st.State != protocol.StateNone {
		t.Errorf("after reset: %q", st.State)
	}
	if out, code = e.otpgate("root", "", nil, "admin", "reset", "bob"); code != 1 {
		t.Errorf("second reset: exit %d\n%s", code, out)
	}
}

// TestCLIDaemonDown checks exit code 3 and its messages: the socket that
// was used is named when nothing answers there, without "not running" for
// a path the user gave (--socket, $OTPGATE_SOCKET); only the default
// socket gets the hint to start otpgated.
func TestCLIDaemonDown(t *testing.T) {
	e := newCLIEnv(t)
	e.c.AddUser(t, "dave")
	out, code := e.otpgate("dave", "", nil, "--socket", "/nope", "status")
	if code != 3 || out != "otpgate: nothing answers at /nope: there is no such file\n" {
		t.Errorf("--socket /nope: exit %d:\n%s", code, out)
	}
	out, code = e.otpgate("dave", "", []string{"OTPGATE_SOCKET=/nonexistent/sock"}, "status")
	if code != 3 || out != "otpgate: nothing answers at /nonexistent/sock: there is no such file\n" {
		t.Errorf("OTPGATE_SOCKET=/nonexistent/sock: exit %d\n%s", code, out)
	}
	if err := e.daemon.Stop(); err != nil {
		t.Fatal(err)
	}
	out, code = e.otpgate("dave", "", nil, "status")
	if code != 3 || !strings.HasPrefix(out, "otpgate: nothing answers at "+cliSocket+": ") ||
		!strings.HasSuffix(out, "\notpgate: is otpgated running? Start it with: systemctl start otpgated\n") {
		t.Errorf("default socket, otpgated stopped: exit %d:\n%s", code, out)
	}
}
