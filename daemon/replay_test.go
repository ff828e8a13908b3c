//go:build root

package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// clockAt is how a replay refusal shows the test clock's start plus d.
func clockAt(d time.Duration) string {
	return newTestClock().Now().Add(d).In(time.Local).Format("15:04:05 MST")
}

// TestReplaySaysWhereAndWhen: a code refused as used says when, on which
// server, for which service and remote address it was accepted, and how
// long until the next code (the test clock starts 15 s into a step).
func TestReplaySaysWhereAndWhen(t *testing.T) {
	key := newSSHKey(t)
	bastion := sshLogin{"192.0.2.4", key.openssh}
	tests := []struct {
		name string
		// use has d accept a code for alice.
		use func(d *testDaemon, secret []byte)
		// again is the step, counted from the test clock's start, of the
		// code typed again after waiting wait.
		again int
		wait  time.Duration
		want  string
	}{
		{"the same code, over SSH", func(d *testDaemon, s []byte) { d.mustSucceed(d.verifyFrom(alice, d.oathtoolCode(s), bastion)) },
			0, 3 * time.Second,
			"This code was already used at " + clockAt(0) + " on bastion1 (sshd from 192.0.2.4): the next code comes in 12 seconds."},
		{"the previous step's code after the current one", func(d *testDaemon, s []byte) { d.mustSucceed(d.verifyFrom(alice, d.code(s, 0), bastion)) },
			-1, 0,
			"This code was already used at " + clockAt(0) + " on bastion1 (sshd from 192.0.2.4): the next code comes in 15 seconds."},
		{"a code from a phone a step ahead", func(d *testDaemon, s []byte) { d.mustSucceed(d.verifyFrom(alice, d.code(s, 1), bastion)) },
			1, 0,
			"This code was already used at " + clockAt(0) + " on bastion1 (sshd from 192.0.2.4): the next code comes in 45 seconds."},
		{"under sudo: no remote address", func(d *testDaemon, s []byte) {
			d.mustSucceed(d.loginCode(protocol.Request{User: alice, Service: "sudo"}, d.code(s, 0)))
		}, 0, 0,
			"This code was already used at " + clockAt(0) + " on bastion1 (sudo): the next code comes in 15 seconds."},
		{"once the next code is showing", func(d *testDaemon, s []byte) { d.mustSucceed(d.verifyFrom(alice, d.code(s, 0), bastion)) },
			0, 20 * time.Second,
			"This code was already used at " + clockAt(0) + " on bastion1 (sshd from 192.0.2.4): a new code is showing now."},
		{"long after, outside the window", func(d *testDaemon, s []byte) { d.mustSucceed(d.verifyFrom(alice, d.code(s, 0), bastion)) },
			0, 90 * time.Second,
			"This code was already used at " + clockAt(0) + " on bastion1 (sshd from 192.0.2.4): a new code is showing now."},
		{"a record from before the place was kept", func(d *testDaemon, s []byte) {
			d.mustSucceed(d.verifyFrom(alice, d.code(s, 0), bastion))
			if err := d.db.Update(alice, func(r *store.Record) (*store.Record, error) { r.LastCode = nil; return r, nil }); err != nil {
				t.Fatal(err)
			}
		}, 0, 0,
			"This code was already used: the next code comes in 15 seconds."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemonOn(t, testConfig(t), nil, "bastion1")
			secret := d.importUser(alice)
			tt.use(d, secret)
			d.clock.Add(tt.wait)
			code := otp.TOTP(secret, newTestClock().Now().Add(time.Duration(tt.again)*30*time.Second), otp.DefaultParams())
			r := d.verifyFrom(alice, code, sshLogin{"198.51.100.9", newSSHKey(t).openssh})
			if !shows(r, protocol.OutcomeReplay) || stepText(r) != tt.want {
				t.Errorf("the used code again:\n got %s %q\nwant deny %q", r.Verdict, stepText(r), tt.want)
			}
		})
	}
	t.Run("the login dialogue shows it", func(t *testing.T) {
		d := startDaemonOn(t, testConfig(t), nil, "bastion1")
		secret := d.importUser(alice)
		code := d.oathtoolCode(secret)
		d.mustSucceed(d.verifyFrom(alice, code, bastion))
		run := d.login(protocol.Request{User: alice, RHost: "198.51.100.9", AuthInfo: key.openssh}, says(code))
		want := "This code was already used at " + clockAt(0) + " on bastion1 (sshd from 192.0.2.4): the next code comes in 15 seconds.\n"
		if v := run.last().Verdict; v != protocol.VerdictDeny || run.texts() != want {
			t.Errorf("dialogue with the used code: %s %q, want deny %q", v, run.texts(), want)
		}
	})
}

// TestShownFieldIsInert: what a caller named its service or host cannot
// reach a terminal as control characters, nor grow the message unbounded.
func TestShownFieldIsInert(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sshd", "sshd"},
		{"ss\x1b[2Jhd\r\n", "ss?[2Jhd??"},
		{strings.Repeat("é", 40), strings.Repeat("é", 32) + "…"},
		{"bad\xffutf8", "bad?utf8"},
	}
	for _, tt := range tests {
		if got := shownField(tt.in); got != tt.want {
			t.Errorf("shownField(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
