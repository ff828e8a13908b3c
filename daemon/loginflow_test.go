//go:build root

package daemon

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// TestRecoveryCodeMessages uses up four recovery codes: each accept says
// how many are left, and from two left on it tells the user to make new
// ones.
func TestRecoveryCodeMessages(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	d.importUser(alice, "aaaa-1111", "bbbb-2222", "cccc-3333", "dddd-4444")
	tests := []struct {
		code      string
		remaining int
		message   string
	}{
		{"aaaa1111", 3, "Recovery code accepted; 3 left."},
		{"BBBB-2222", 2, "Recovery code accepted; only 2 left: run 'otpgate recovery-codes' to make new ones."},
		{"cccc 3333", 1, "Recovery code accepted; only 1 left: run 'otpgate recovery-codes' to make new ones."},
		{"dddd-4444", 0, "Recovery code accepted; none left: run 'otpgate recovery-codes' to make new ones."},
	}
	for _, tt := range tests {
		r := d.verify(alice, tt.code)
		if !shows(r, protocol.OutcomeAccept) || stepText(r) != tt.message {
			t.Errorf("recovery code %s: got %+v, want accept with %d left and %q", tt.code, r, tt.remaining, tt.message)
		}
	}
	if r := d.verify(alice, "aaaa-1111"); !shows(r, protocol.OutcomeReject) || stepText(r) == tests[0].message {
		t.Errorf("used recovery code again: %+v", r)
	}
}

// sshKey is a fresh ed25519 public key as OpenSSH's SSH_AUTH_INFO_0 shows
// it, with its SHA256 fingerprint as otpgate-sshd sends it.
type sshKey struct {
	openssh, fingerprint string
}

func newSSHKey(t *testing.T) sshKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshKey{
		openssh:     "publickey " + k.Type() + " " + base64.StdEncoding.EncodeToString(k.Marshal()),
		fingerprint: "publickey " + k.Type() + " " + ssh.FingerprintSHA256(k),
	}
}

// sshLogin is the request context of one SSH login.
type sshLogin struct {
	rhost, authInfo string
}

// checkFrom opens an SSH login of user from l and returns its first step.
func (d *testDaemon) checkFrom(user string, l sshLogin) *protocol.LoginStep {
	d.t.Helper()
	return d.startLogin(protocol.Request{User: user, Service: "sshd", RHost: l.rhost, TTY: "ssh", AuthInfo: l.authInfo})
}

// verifyFrom runs an SSH login of user from l answering code.
func (d *testDaemon) verifyFrom(user, code string, l sshLogin) *protocol.LoginStep {
	d.t.Helper()
	return d.loginCode(protocol.Request{User: user, Service: "sshd", RHost: l.rhost, TTY: "ssh", AuthInfo: l.authInfo}, code)
}

// rememberConfig is testConfig with policy.remember = 12h.
func rememberConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.Policy.Remember.Duration = 12 * time.Hour
	return cfg
}

// TestRememberDevice: after a code, the same user from the same address
// with the same key is not asked again, whichever server form the key
// comes in; any other address, key, caller or shape of auth info is.
func TestRememberDevice(t *testing.T) {
	d := startDaemon(t, rememberConfig(t), nil)
	secret := d.importUser(alice)
	d.importUser(bob)
	key, other := newSSHKey(t), newSSHKey(t)
	home := sshLogin{"192.0.2.7", key.openssh}
	if r := d.checkFrom(alice, home); !shows(r, protocol.OutcomeCodeRequired) {
		t.Fatalf("check before any code: %+v", r)
	}
	if r := d.verifyFrom(alice, d.code(secret, 0), home); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("verify: %+v", r)
	}
	tests := []struct {
		name  string
		user  string
		login sshLogin
		want  protocol.Outcome
	}{
		{"same address and key (OpenSSH)", alice, home, protocol.OutcomeRemembered},
		{"same key as otpgate-sshd's fingerprint", alice, sshLogin{"192.0.2.7", key.fingerprint}, protocol.OutcomeRemembered},
		{"auth info with OpenSSH's trailing newline", alice, sshLogin{"192.0.2.7", key.openssh + "\n"}, protocol.OutcomeRemembered},
		{"IPv4-mapped IPv6 form of the address", alice, sshLogin{"::ffff:192.0.2.7", key.openssh}, protocol.OutcomeRemembered},
		{"another key", alice, sshLogin{"192.0.2.7", other.openssh}, protocol.OutcomeCodeRequired},
		{"another address", alice, sshLogin{"192.0.2.8", key.openssh}, protocol.OutcomeCodeRequired},
		{"another user with the same key and address", bob, home, protocol.OutcomeCodeRequired},
		{"no remote address (sudo)", alice, sshLogin{"", key.openssh}, protocol.OutcomeCodeRequired},
		{"a host name instead of an address", alice, sshLogin{"client.example.com", key.openssh}, protocol.OutcomeCodeRequired},
		{"no auth info", alice, sshLogin{"192.0.2.7", ""}, protocol.OutcomeCodeRequired},
		{"two methods", alice, sshLogin{"192.0.2.7", key.openssh + "\n" + key.openssh}, protocol.OutcomeCodeRequired},
		{"password, not publickey", alice, sshLogin{"192.0.2.7", "password"}, protocol.OutcomeCodeRequired},
		{"key type that does not match the key", alice, sshLogin{"192.0.2.7", strings.Replace(key.openssh, "ssh-ed25519", "ssh-rsa", 1)}, protocol.OutcomeCodeRequired},
		{"a truncated fingerprint", alice, sshLogin{"192.0.2.7", key.fingerprint[:len(key.fingerprint)-2]}, protocol.OutcomeCodeRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := d.checkFrom(tt.user, tt.login); !shows(r, tt.want) {
				t.Errorf("check: %+v, want %s", r, tt.want)
			}
		})
	}
	t.Run("an ordinary user's own request is not believed", func(t *testing.T) {
		resp, errText := d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpLoginStart, User: alice, RHost: home.rhost, AuthInfo: home.authInfo, Login: &protocol.LoginStart{}})
		if errText != "" || !shows(resp.Step, protocol.OutcomeCodeRequired) {
			t.Errorf("check as alice herself: %+v %q, want code_required", resp, errText)
		}
	})
	t.Run("the decision is audited with the address and fingerprint", func(t *testing.T) {
		fp := strings.Fields(key.fingerprint)[2]
		if log := d.log.String(); !strings.Contains(log, "outcome=remembered reason=remembered_device") || !strings.Contains(log, "fingerprint="+fp) {
			t.Errorf("audit log lacks the remembered decision with %s:\n%s", fp, log)
		}
	})
	t.Run("admin show lists the device", func(t *testing.T) {
		st := d.mustDo(&protocol.Request{Op: protocol.OpAdminShow, User: alice}).Status
		if len(st.Remembered) != 1 || st.Remembered[0].Source != "192.0.2.7" || "publickey ssh-ed25519 "+st.Remembered[0].Fingerprint != key.fingerprint {
			t.Errorf("remembered devices: %+v", st.Remembered)
		}
	})
}

// TestRememberDeviceOffByDefault: with policy.remember = 0s a code is asked
// every time.
func TestRememberDeviceOffByDefault(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	secret := d.importUser(alice)
	home := sshLogin{"192.0.2.7", newSSHKey(t).openssh}
	if r := d.verifyFrom(alice, d.code(secret, 0), home); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("verify: %+v", r)
	}
	if r := d.checkFrom(alice, home); !shows(r, protocol.OutcomeCodeRequired) {
		t.Fatalf("check with remember off: %+v", r)
	}
}

// TestRememberDeviceExpires jumps the clock: the device is remembered until
// policy.remember has passed, and a lowered policy.remember shortens it.
func TestRememberDeviceExpires(t *testing.T) {
	tests := []struct {
		name     string
		reloadTo time.Duration // 0: keep 12h
		after    time.Duration
		want     protocol.Outcome
	}{
		{"just before the end", 0, 12*time.Hour - time.Second, protocol.OutcomeRemembered},
		{"at the end", 0, 12 * time.Hour, protocol.OutcomeCodeRequired},
		{"a lowered setting shortens it", time.Hour, time.Hour, protocol.OutcomeCodeRequired},
		{"a raised setting does not lengthen it", 24 * time.Hour, 13 * time.Hour, protocol.OutcomeCodeRequired},
		{"turning it off ends it", -1, time.Minute, protocol.OutcomeCodeRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := rememberConfig(t)
			d := startDaemon(t, cfg, nil)
			secret := d.importUser(alice)
			home := sshLogin{"2001:db8::7", newSSHKey(t).openssh}
			if r := d.verifyFrom(alice, d.code(secret, 0), home); !shows(r, protocol.OutcomeAccept) {
				t.Fatalf("verify: %+v", r)
			}
			if tt.reloadTo != 0 {
				next := *cfg
				next.Policy.Remember.Duration = max(tt.reloadTo, 0)
				d.srv.Reload(&next)
			}
			d.clock.Add(tt.after)
			if r := d.checkFrom(alice, home); !shows(r, tt.want) {
				t.Errorf("check after %v: %+v, want %s", tt.after, r, tt.want)
			}
		})
	}
}

// TestRememberDeviceRevoked: forget (the user herself, without a code),
// admin forget, a lockout, re-enrollment, disable and reset all end the
// remembered devices.
func TestRememberDeviceRevoked(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(d *testDaemon, secret []byte)
	}{
		{"otpgate forget by the user", func(d *testDaemon, _ []byte) {
			resp, errText := d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpForget, User: alice})
			if errText != "" || resp.Forgotten != 1 {
				d.t.Fatalf("forget as alice: %+v %q", resp, errText)
			}
		}},
		{"otpgate admin forget", func(d *testDaemon, _ []byte) {
			if resp := d.mustDo(&protocol.Request{Op: protocol.OpForget, User: alice}); resp.Forgotten != 1 {
				d.t.Fatalf("admin forget: %+v", resp)
			}
		}},
		{"a lockout", func(d *testDaemon, secret []byte) {
			for range d.cfg.RateLimit.MaxFailures {
				d.verify(alice, "000000")
			}
			if st := d.mustDo(&protocol.Request{Op: protocol.OpStatus, User: alice}).Status; st.LockedUntil.IsZero() {
				d.t.Fatalf("not locked: %+v", st)
			}
			d.mustDo(&protocol.Request{Op: protocol.OpAdminUnlock, User: alice})
		}},
		{"re-enrollment", func(d *testDaemon, _ []byte) { d.importUser(alice) }},
		{"disable and enroll again", func(d *testDaemon, _ []byte) {
			d.mustDo(&protocol.Request{Op: protocol.OpDisable, User: alice})
			d.importUser(alice)
		}},
		{"admin reset and enroll again", func(d *testDaemon, _ []byte) {
			d.mustDo(&protocol.Request{Op: protocol.OpAdminReset, User: alice})
			d.importUser(alice)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemon(t, rememberConfig(t), nil)
			secret := d.importUser(alice)
			home := sshLogin{"192.0.2.7", newSSHKey(t).openssh}
			if r := d.verifyFrom(alice, d.code(secret, 0), home); !shows(r, protocol.OutcomeAccept) {
				t.Fatalf("verify: %+v", r)
			}
			if r := d.checkFrom(alice, home); !shows(r, protocol.OutcomeRemembered) {
				t.Fatalf("check before revoking: %+v", r)
			}
			tt.revoke(d, secret)
			if r := d.checkFrom(alice, home); !shows(r, protocol.OutcomeCodeRequired) {
				t.Errorf("check after revoking: %+v, want code_required", r)
			}
		})
	}
	t.Run("another user may not forget alice's devices", func(t *testing.T) {
		d := startDaemon(t, rememberConfig(t), nil)
		d.importUser(alice)
		if _, errText := d.clientAs(bobUID, &protocol.Request{Op: protocol.OpForget, User: alice}); !strings.Contains(errText, "your own account") {
			t.Errorf("bob forgetting alice's devices: %q", errText)
		}
	})
}

// TestRememberDeviceBounded: only the newest maxRemembered devices are kept.
func TestRememberDeviceBounded(t *testing.T) {
	d := startDaemon(t, rememberConfig(t), nil)
	secret := d.importUser(alice)
	var logins []sshLogin
	for i := range maxRemembered + 2 {
		l := sshLogin{fmt.Sprintf("192.0.2.%d", i+1), newSSHKey(t).openssh}
		logins = append(logins, l)
		d.clock.Add(30 * time.Second)
		if r := d.verifyFrom(alice, d.code(secret, 0), l); !shows(r, protocol.OutcomeAccept) {
			t.Fatalf("verify %d: %+v", i, r)
		}
	}
	if n := len(d.mustDo(&protocol.Request{Op: protocol.OpAdminShow, User: alice}).Status.Remembered); n != maxRemembered {
		t.Errorf("%d devices kept, want %d", n, maxRemembered)
	}
	if r := d.checkFrom(alice, logins[0]); !shows(r, protocol.OutcomeCodeRequired) {
		t.Errorf("oldest device still remembered: %+v", r)
	}
	if r := d.checkFrom(alice, logins[len(logins)-1]); !shows(r, protocol.OutcomeRemembered) {
		t.Errorf("newest device not remembered: %+v", r)
	}
}

// enrollOnLoginConfig requires a code of alice and lets her enroll at
// login.
func enrollOnLoginConfig(t *testing.T, until string) *config.Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.Policy.RequiredUsers = []string{alice}
	cfg.Policy.EnrollOnLogin = true
	cfg.Policy.EnrollOnLoginUntil = until
	return cfg
}

// TestEnrollOnLogin: a required, unenrolled user is offered a key and QR
// code in a login check that carries a verified public key; the first code
// activates it and returns the recovery codes; later logins need codes.
func TestEnrollOnLogin(t *testing.T) {
	d := startDaemon(t, enrollOnLoginConfig(t, ""), nil)
	key := newSSHKey(t)
	login := sshLogin{"192.0.2.7", key.openssh}
	req := protocol.Request{User: alice, Service: "sshd", RHost: login.rhost, AuthInfo: login.authInfo}
	if st := d.loginCode(req, "000000"); st.Verdict != protocol.VerdictDeny || stepText(st) != textEnrollWrongCode {
		t.Fatalf("a wrong first code: %+v", st)
	}
	secret, run := d.enrollAtLogin(req)
	if n := strings.Count(run.texts(), "\n  "); n != d.cfg.Enroll.RecoveryCodes {
		t.Fatalf("%d recovery codes shown, want %d:\n%s", n, d.cfg.Enroll.RecoveryCodes, run.texts())
	}
	if r := d.checkFrom(alice, login); !shows(r, protocol.OutcomeCodeRequired) {
		t.Fatalf("check after enrolling: %+v", r)
	}
	fp := strings.Fields(key.fingerprint)[2]
	st := d.mustDo(&protocol.Request{Op: protocol.OpAdminShow, User: alice}).Status
	if st.EnrolledVia != store.MethodLogin || st.EnrolledFrom != login.rhost || st.EnrolledKey != fp {
		t.Errorf("admin show says enrolled via %q from %q with key %q; want login from %s with %s", st.EnrolledVia, st.EnrolledFrom, st.EnrolledKey, login.rhost, fp)
	}
	log := d.log.String()
	for _, want := range []string{"outcome=enroll_offered reason=enroll_on_login", "outcome=active reason=enrolled_at_login", "rhost=192.0.2.7", "fingerprint=" + fp} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %q", want)
		}
	}
	if strings.Contains(log, otp.EncodeSecret(secret)) {
		t.Error("the secret was logged")
	}
}

// TestEnrollOnLoginRefused: without a verified public key, for an
// ordinary caller, after the deadline, or with the setting off, the user
// is refused as before.
func TestEnrollOnLoginRefused(t *testing.T) {
	key := newSSHKey(t)
	tests := []struct {
		name     string
		on       bool
		until    string
		authInfo string
	}{
		{"no publickey before", true, "", ""},
		{"password instead of a key", true, "", "password"},
		{"deadline passed", true, "2020-01-01", key.openssh},
		{"setting off", false, "", key.openssh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := enrollOnLoginConfig(t, tt.until)
			cfg.Policy.EnrollOnLogin = tt.on
			d := startDaemon(t, cfg, nil)
			if r := d.checkFrom(alice, sshLogin{"192.0.2.7", tt.authInfo}); !shows(r, protocol.OutcomeEnrollRequired) {
				t.Errorf("check: %+v, want enroll_required", r)
			}
		})
	}
	t.Run("ordinary caller", func(t *testing.T) {
		d := startDaemon(t, enrollOnLoginConfig(t, ""), nil)
		for _, req := range []*protocol.Request{
			{Op: protocol.OpLoginStart, User: alice, RHost: "192.0.2.7", AuthInfo: key.openssh, Login: &protocol.LoginStart{}},
			{Op: protocol.OpLoginStart, User: alice, RHost: "192.0.2.7", PriorFactor: protocol.PriorFactorPassword, Login: &protocol.LoginStart{}},
		} {
			resp, errText := d.clientAs(aliceUID, req)
			if errText != "" || !shows(resp.Step, protocol.OutcomeEnrollRequired) {
				t.Errorf("check as alice herself: %+v %q", resp, errText)
			}
		}
	})
	t.Run("before the deadline", func(t *testing.T) {
		d := startDaemon(t, enrollOnLoginConfig(t, "2099-12-31"), nil)
		if r := d.checkFrom(alice, sshLogin{"192.0.2.7", key.openssh}); !shows(r, protocol.OutcomeEnrollOffered) {
			t.Errorf("check: %+v, want enroll_offered", r)
		}
	})
}

// TestEnrollOnLoginDays: policy.enroll_on_login_days counts from the first
// offer, survives restarts and the user's own disable, and an admin reset
// starts it over.
func TestEnrollOnLoginDays(t *testing.T) {
	clock := newTestClock()
	cfg := enrollOnLoginConfig(t, "")
	cfg.Policy.EnrollOnLoginDays = 3
	d := startDaemon(t, cfg, clock)
	login := sshLogin{"192.0.2.7", newSSHKey(t).openssh}
	want := func(step string, outcome protocol.Outcome) {
		t.Helper()
		if r := d.checkFrom(alice, login); !shows(r, outcome) {
			t.Fatalf("%s: check %+v, want %s", step, r, outcome)
		}
	}
	want("first login", protocol.OutcomeEnrollOffered)
	clock.Add(3*24*time.Hour - time.Minute)
	want("a minute before the end", protocol.OutcomeEnrollOffered)
	d.restart()
	clock.Add(time.Minute)
	want("three days after the first offer, after a restart", protocol.OutcomeEnrollRequired)
	if !strings.Contains(d.log.String(), "reason=enroll_on_login_days_over") {
		t.Errorf("the end of the grace period is not audited:\n%s", d.log.String())
	}

	d.mustDo(&protocol.Request{Op: protocol.OpAdminReset, User: alice})
	want("after an admin reset", protocol.OutcomeEnrollOffered)

	// Enrolled within the period, then turned off by the user: the period
	// does not start over.
	secret, _ := d.enrollAtLogin(protocol.Request{User: alice, Service: "sshd", RHost: login.rhost, AuthInfo: login.authInfo})
	clock.Add(time.Minute)
	if _, errText := d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpDisable, User: alice, Code: d.oathtoolCode(secret)}); errText != "" {
		t.Fatalf("disable: %s", errText)
	}
	want("right after disabling", protocol.OutcomeEnrollOffered)
	clock.Add(3 * 24 * time.Hour)
	want("three days after the offer that preceded the disable", protocol.OutcomeEnrollRequired)
}

// TestEnrollMethod: status says how each enrollment was made.
func TestEnrollMethod(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	d.importUser(bob)
	resp, errText := d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpEnrollBegin, User: alice})
	if errText != "" {
		t.Fatal(errText)
	}
	key, err := otp.ParseURI(resp.Enroll.URI)
	if err != nil {
		t.Fatal(err)
	}
	if _, errText := d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpEnrollConfirm, User: alice, Code: d.code(key.Secret, 0)}); errText != "" {
		t.Fatal(errText)
	}
	for user, want := range map[string]string{alice: store.MethodCLI, bob: store.MethodImport} {
		if st := d.mustDo(&protocol.Request{Op: protocol.OpAdminShow, User: user}).Status; st.EnrolledVia != want || st.EnrolledFrom != "" || st.EnrolledKey != "" {
			t.Errorf("%s: enrolled via %q from %q key %q, want %q", user, st.EnrolledVia, st.EnrolledFrom, st.EnrolledKey, want)
		}
	}
	// Root enrolling another user without an SSH login is an admin enrollment.
	resp = d.mustDo(&protocol.Request{Op: protocol.OpEnrollBegin, User: bob, Force: true})
	if key, err = otp.ParseURI(resp.Enroll.URI); err != nil {
		t.Fatal(err)
	}
	d.mustDo(&protocol.Request{Op: protocol.OpEnrollConfirm, User: bob, Code: d.code(key.Secret, 1)})
	if st := d.mustDo(&protocol.Request{Op: protocol.OpAdminShow, User: bob}).Status; st.EnrolledVia != store.MethodAdmin {
		t.Errorf("bob after admin enroll: via %q", st.EnrolledVia)
	}
}

// TestEnrollOnLoginAfterPassword: root's PAM module vouching for a password
// module ahead of it (enroll_after_password) counts as the other factor:
// enrollment is offered, recorded as a login without a key, and audited
// with the factor.
func TestEnrollOnLoginAfterPassword(t *testing.T) {
	d := startDaemon(t, enrollOnLoginConfig(t, ""), nil)
	base := protocol.Request{User: alice, Service: "sshd", RHost: "192.0.2.8", PriorFactor: protocol.PriorFactorPassword}
	d.enrollAtLogin(base)
	st := d.mustDo(&protocol.Request{Op: protocol.OpAdminShow, User: alice}).Status
	if st.State != protocol.StateActive || st.EnrolledVia != store.MethodLogin || st.EnrolledFrom != "192.0.2.8" || st.EnrolledKey != "" {
		t.Errorf("after enrolling at a password login: %+v", st)
	}
	for _, want := range []string{`reason=enroll_on_login .*factor=password$`, `reason=enrolled_at_login .*factor=password$`} {
		if !regexp.MustCompile(`(?m)` + want).MatchString(d.log.String()) {
			t.Errorf("audit log lacks %q:\n%s", want, d.log.String())
		}
	}
}
