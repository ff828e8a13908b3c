//go:build root

package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/protocol"
)

// jumpConfig is testConfig with a jump host, a jump network and a
// 60-second window.
func jumpConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.Policy.JumpHosts = []string{"192.0.2.10", "198.51.100.0/24", "2001:db8::10"}
	cfg.Policy.JumpWindow.Duration = time.Minute
	return cfg
}

// TestJumpHostPass: a login from a jump host, with the key that went with
// a code the user gave within policy.jump_window, needs no code; any other
// address, key, user, caller, or a login after the window, does.
func TestJumpHostPass(t *testing.T) {
	key, other := newSSHKey(t), newSSHKey(t)
	laptop := sshLogin{"203.0.113.5", key.openssh}
	sudo := sshLogin{"", ""}
	tests := []struct {
		name  string
		cfg   func(*config.Config)
		first sshLogin // where the code was given
		after time.Duration
		user  string
		login sshLogin // the login that follows
		want  protocol.Outcome
	}{
		{"from a jump host with the same key", nil, laptop, 5 * time.Second, alice, sshLogin{"192.0.2.10", key.openssh}, protocol.OutcomeRemembered},
		{"from a jump network, the key as otpgate-sshd's fingerprint", nil, laptop, 5 * time.Second, alice, sshLogin{"198.51.100.77", key.fingerprint}, protocol.OutcomeRemembered},
		{"IPv4-mapped form of a jump host", nil, laptop, 5 * time.Second, alice, sshLogin{"::ffff:192.0.2.10", key.openssh}, protocol.OutcomeRemembered},
		{"IPv6 jump host", nil, laptop, 5 * time.Second, alice, sshLogin{"2001:db8::10", key.openssh}, protocol.OutcomeRemembered},
		{"the code given at otpgate-sshd, the login at OpenSSH", nil, sshLogin{"203.0.113.5", key.fingerprint}, 5 * time.Second, alice, sshLogin{"192.0.2.10", key.openssh}, protocol.OutcomeRemembered},
		{"just before the window ends", nil, laptop, time.Minute - time.Second, alice, sshLogin{"192.0.2.10", key.openssh}, protocol.OutcomeRemembered},
		{"at the end of the window", nil, laptop, time.Minute, alice, sshLogin{"192.0.2.10", key.openssh}, protocol.OutcomeCodeRequired},
		{"a shorter window", func(c *config.Config) { c.Policy.JumpWindow.Duration = 10 * time.Second }, laptop, 10 * time.Second, alice, sshLogin{"192.0.2.10", key.openssh}, protocol.OutcomeCodeRequired},
		{"not a jump host", nil, laptop, 5 * time.Second, alice, sshLogin{"192.0.2.11", key.openssh}, protocol.OutcomeCodeRequired},
		{"another key from the jump host", nil, laptop, 5 * time.Second, alice, sshLogin{"192.0.2.10", other.openssh}, protocol.OutcomeCodeRequired},
		{"another user with the same key", nil, laptop, 5 * time.Second, bob, sshLogin{"192.0.2.10", key.openssh}, protocol.OutcomeCodeRequired},
		{"no remote address (sudo)", nil, laptop, 5 * time.Second, alice, sshLogin{"", key.openssh}, protocol.OutcomeCodeRequired},
		{"a host name instead of an address", nil, laptop, 5 * time.Second, alice, sshLogin{"bastion.example.com", key.openssh}, protocol.OutcomeCodeRequired},
		{"no verified key", nil, laptop, 5 * time.Second, alice, sshLogin{"192.0.2.10", ""}, protocol.OutcomeCodeRequired},
		{"two methods", nil, laptop, 5 * time.Second, alice, sshLogin{"192.0.2.10", key.openssh + "\n" + key.openssh}, protocol.OutcomeCodeRequired},
		{"the code was given under sudo, without a key", nil, sudo, 5 * time.Second, alice, sshLogin{"192.0.2.10", key.openssh}, protocol.OutcomeCodeRequired},
		{"the code was given with another key", nil, sshLogin{"203.0.113.5", other.openssh}, 5 * time.Second, alice, sshLogin{"192.0.2.10", key.openssh}, protocol.OutcomeCodeRequired},
		{"off by default", func(c *config.Config) { c.Policy.JumpHosts = nil }, laptop, 5 * time.Second, alice, sshLogin{"192.0.2.10", key.openssh}, protocol.OutcomeCodeRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := jumpConfig(t)
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			d := startDaemon(t, cfg, nil)
			secret := d.importUser(alice)
			d.importUser(bob)
			svc := "sshd"
			if tt.first.rhost == "" {
				svc = "sudo"
			}
			d.mustSucceed(d.loginCode(protocol.Request{User: alice, Service: svc,
				RHost: tt.first.rhost, AuthInfo: tt.first.authInfo}, d.oathtoolCode(secret)))
			d.clock.Add(tt.after)
			if r := d.checkFrom(tt.user, tt.login); !shows(r, tt.want) {
				t.Errorf("check: %+v, want %s", r, tt.want)
			}
		})
	}
}

// TestJumpHostPassBounds: a pass is audited as such, opens no window of its
// own (a second hop after the first code's window needs a code), leaves
// the code used, and is never given to an ordinary user's request, to a
// locked user, or by verify.
func TestJumpHostPassBounds(t *testing.T) {
	key := newSSHKey(t)
	laptop := sshLogin{"203.0.113.5", key.openssh}
	bastion, hop2 := sshLogin{"192.0.2.10", key.openssh}, sshLogin{"198.51.100.7", key.openssh}
	d := startDaemon(t, jumpConfig(t), nil)
	secret := d.importUser(alice)
	code := d.oathtoolCode(secret)
	d.mustSucceed(d.verifyFrom(alice, code, laptop))

	d.clock.Add(50 * time.Second)
	if r := d.checkFrom(alice, bastion); !shows(r, protocol.OutcomeRemembered) {
		t.Fatalf("the first hop 50 s after the code: %+v", r)
	}
	fp := strings.Fields(key.fingerprint)[2]
	if log := d.log.String(); !strings.Contains(log, "outcome=remembered reason=jump_host") || !strings.Contains(log, "fingerprint="+fp) {
		t.Errorf("audit log lacks the jump_host pass with %s:\n%s", fp, log)
	}
	t.Run("the code itself is still used", func(t *testing.T) {
		if r := d.verify(alice, code); !shows(r, protocol.OutcomeReplay) {
			t.Errorf("the code again where it is asked (sudo): %+v, want replay", r)
		}
	})
	t.Run("an ordinary user's own request is not believed", func(t *testing.T) {
		resp, errText := d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpLoginStart, User: alice, RHost: bastion.rhost, AuthInfo: bastion.authInfo, Login: &protocol.LoginStart{}})
		if errText != "" || !shows(resp.Step, protocol.OutcomeCodeRequired) {
			t.Errorf("check as alice herself: %+v %q, want code_required", resp, errText)
		}
	})
	t.Run("a pass opens no window: the next hop after the code's window needs a code", func(t *testing.T) {
		d.clock.Add(20 * time.Second) // 70 s after the code, 20 s after the pass
		if r := d.checkFrom(alice, hop2); !shows(r, protocol.OutcomeCodeRequired) {
			t.Errorf("second hop: %+v, want code_required", r)
		}
	})
	t.Run("a locked user gets no pass", func(t *testing.T) {
		d2 := startDaemon(t, jumpConfig(t), nil)
		s2 := d2.importUser(alice)
		d2.mustSucceed(d2.verifyFrom(alice, d2.code(s2, 0), laptop))
		if err := d2.db.Update(alice, func(r *store.Record) (*store.Record, error) { r.AdminLocked = true; return r, nil }); err != nil {
			t.Fatal(err)
		}
		if r := d2.checkFrom(alice, bastion); !shows(r, protocol.OutcomeLocked) {
			t.Errorf("check while locked: %+v, want locked", r)
		}
	})
	t.Run("the login dialogue passes without a prompt", func(t *testing.T) {
		d3 := startDaemon(t, jumpConfig(t), nil)
		s3 := d3.importUser(alice)
		d3.mustSucceed(d3.verifyFrom(alice, d3.code(s3, 0), laptop))
		run := d3.login(protocol.Request{User: alice, RHost: bastion.rhost, AuthInfo: key.openssh})
		if len(run.steps) != 1 || run.last().Verdict != protocol.VerdictSuccess || len(run.last().Prompts) != 0 {
			t.Errorf("login_start from the jump host: %+v, want success without a prompt", run.steps)
		}
	})
}
