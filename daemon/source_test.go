package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
)

func TestExemptNetworksSkipTheCodeOnlyForAddressesInside(t *testing.T) {
	cfg := testConfig(t)
	cfg.Policy.ExemptNetworks = []string{"10.0.0.0/8", "2001:db8::/32"}
	d := startDaemon(t, cfg, nil)
	d.importUser(alice)
	tests := []struct {
		rhost string
		want  protocol.Outcome
	}{
		{"10.1.2.3", protocol.OutcomeExempt},
		{"::ffff:10.1.2.3", protocol.OutcomeExempt},
		{"2001:db8::7", protocol.OutcomeExempt},
		{"192.0.2.1", protocol.OutcomeCodeRequired},
		{"11.0.0.1", protocol.OutcomeCodeRequired},
		{"", protocol.OutcomeCodeRequired},                    // sudo: no remote host
		{"gw.10.0.0.1.example", protocol.OutcomeCodeRequired}, // a host name never matches
	}
	for _, tt := range tests {
		t.Run(tt.rhost, func(t *testing.T) {
			r := d.mustDo(&protocol.Request{Op: protocol.OpCheck, User: alice, RHost: tt.rhost}).Verify
			if r.Outcome != tt.want {
				t.Fatalf("rhost %q: %+v, want %s", tt.rhost, r, tt.want)
			}
		})
	}
	if !strings.Contains(d.log.String(), "reason=exempt_network") {
		t.Error("network exemptions are not audited with their reason")
	}
}

func TestGuessingFromOneAddressDoesNotLockOutTheOwner(t *testing.T) {
	cfg := testConfig(t)
	cfg.RateLimit.MaxFailures = 10
	cfg.RateLimit.PerSourceMaxFailures = 3
	cfg.RateLimit.PerSourceLockout.Duration = 15 * time.Minute
	d := startDaemon(t, cfg, nil)
	secret := d.importUser(alice)
	from := func(rhost, code string) *protocol.VerifyResult {
		t.Helper()
		return d.mustDo(&protocol.Request{Op: protocol.OpVerify, User: alice, Code: code, RHost: rhost}).Verify
	}
	wrong := "000000"
	if d.code(secret, 0) == wrong || d.code(secret, -1) == wrong || d.code(secret, 1) == wrong {
		wrong = "000001"
	}
	for i := 1; i <= 2; i++ {
		if r := from("198.51.100.7", wrong); r.Outcome != protocol.OutcomeReject {
			t.Fatalf("guess %d: %+v", i, r)
		}
	}
	if r := from("198.51.100.7", wrong); r.Outcome != protocol.OutcomeReject || !strings.Contains(r.Message, "from your address") || r.RetryAfter != 900 {
		t.Fatalf("third guess should block the address: %+v", r)
	}
	// The attacker's address is blocked even with the right code...
	if r := from("198.51.100.7", d.code(secret, 0)); r.Outcome != protocol.OutcomeLocked {
		t.Fatalf("right code from the blocked address: %+v", r)
	}
	if r := d.mustDo(&protocol.Request{Op: protocol.OpCheck, User: alice, RHost: "198.51.100.7"}).Verify; r.Outcome != protocol.OutcomeLocked {
		t.Fatalf("check from the blocked address: %+v", r)
	}
	// ...while the owner logs in from elsewhere.
	if r := from("203.0.113.5", d.code(secret, 0)); r.Outcome != protocol.OutcomeAccept {
		t.Fatalf("owner from another address: %+v", r)
	}
	st := d.mustDo(&protocol.Request{Op: protocol.OpAdminShow, User: alice}).Status
	if len(st.BlockedSources) != 1 || st.BlockedSources[0].Source != "198.51.100.7" || st.LockedByAdmin || !st.LockedUntil.IsZero() {
		t.Fatalf("status: %+v", st)
	}
	// The block survives a restart.
	d.restart()
	d.clock.Add(30 * time.Second)
	if r := from("198.51.100.7", d.code(secret, 0)); r.Outcome != protocol.OutcomeLocked {
		t.Fatalf("after restart: %+v", r)
	}
	// Guesses spread over many addresses still reach the per-user ceiling.
	for i := range 10 {
		from("192.0.2."+string(rune('1'+i%5)), wrong)
	}
	if r := from("203.0.113.5", d.code(secret, 1)); r.Outcome != protocol.OutcomeLocked || strings.Contains(r.Message, "address") {
		t.Fatalf("spread guesses must lock the user: %+v", r)
	}
	// An admin unlock clears the user's lock and every address block.
	d.mustDo(&protocol.Request{Op: protocol.OpAdminUnlock, User: alice})
	if r := from("198.51.100.7", d.code(secret, 1)); r.Outcome != protocol.OutcomeAccept {
		t.Fatalf("after unlock: %+v", r)
	}
}

func TestOneAddressGuessingAcrossUsersIsBlockedForAll(t *testing.T) {
	cfg := testConfig(t)
	cfg.RateLimit.SourceMaxFailures = 4
	d := startDaemon(t, cfg, nil)
	aliceSecret := d.importUser(alice)
	bobSecret := d.importUser(bob)
	for _, u := range []string{alice, bob, alice, bob} {
		d.mustDo(&protocol.Request{Op: protocol.OpVerify, User: u, Code: "12345", RHost: "198.51.100.9"})
	}
	for _, u := range []string{alice, bob} {
		r := d.mustDo(&protocol.Request{Op: protocol.OpCheck, User: u, RHost: "198.51.100.9"}).Verify
		if r.Outcome != protocol.OutcomeLocked || !strings.Contains(r.Message, "from your address") {
			t.Fatalf("%s from the blocked address: %+v", u, r)
		}
	}
	if r := d.mustDo(&protocol.Request{Op: protocol.OpVerify, User: alice, Code: d.code(aliceSecret, 0), RHost: "198.51.100.9"}).Verify; r.Outcome != protocol.OutcomeLocked {
		t.Fatalf("right code from the blocked address: %+v", r)
	}
	if r := d.mustDo(&protocol.Request{Op: protocol.OpVerify, User: bob, Code: d.code(bobSecret, 0), RHost: "203.0.113.1"}).Verify; r.Outcome != protocol.OutcomeAccept {
		t.Fatalf("another address: %+v", r)
	}
	// The address records are not users.
	for _, u := range d.mustDo(&protocol.Request{Op: protocol.OpAdminList}).Users {
		if strings.HasPrefix(u.User, "/") {
			t.Fatalf("admin list shows %q", u.User)
		}
	}
	if _, err := d.do(&protocol.Request{Op: protocol.OpAdminReset, User: sourceRecordPrefix + "198.51.100.9"}); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("a request naming an address record: %v", err)
	}
}
