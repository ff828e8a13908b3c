//go:build root

package daemon

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon/store"
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
			r := d.startLogin(protocol.Request{User: alice, RHost: tt.rhost})
			if !shows(r, tt.want) {
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
	from := func(rhost, code string) *protocol.LoginStep {
		t.Helper()
		return d.loginCode(protocol.Request{User: alice, RHost: rhost}, code)
	}
	wrong := "000000"
	if d.code(secret, 0) == wrong || d.code(secret, -1) == wrong || d.code(secret, 1) == wrong {
		wrong = "000001"
	}
	for i := 1; i <= 2; i++ {
		if r := from("198.51.100.7", wrong); !shows(r, protocol.OutcomeReject) {
			t.Fatalf("guess %d: %+v", i, r)
		}
	}
	if r := from("198.51.100.7", wrong); !shows(r, protocol.OutcomeReject) || !strings.Contains(stepText(r), "from your address: try again in 15 minutes.") {
		t.Fatalf("third guess should block the address: %+v", r)
	}
	// The attacker's address is blocked even with the right code...
	if r := from("198.51.100.7", d.code(secret, 0)); !shows(r, protocol.OutcomeLocked) {
		t.Fatalf("right code from the blocked address: %+v", r)
	}
	if r := d.startLogin(protocol.Request{User: alice, RHost: "198.51.100.7"}); !shows(r, protocol.OutcomeLocked) {
		t.Fatalf("check from the blocked address: %+v", r)
	}
	// ...while the owner logs in from elsewhere.
	if r := from("203.0.113.5", d.code(secret, 0)); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("owner from another address: %+v", r)
	}
	st := d.mustDo(&protocol.Request{Op: protocol.OpAdminShow, User: alice}).Status
	if len(st.BlockedSources) != 1 || st.BlockedSources[0].Source != "198.51.100.7" || st.LockedByAdmin || !st.LockedUntil.IsZero() {
		t.Fatalf("status: %+v", st)
	}
	// The block survives a restart.
	d.restart()
	d.clock.Add(30 * time.Second)
	if r := from("198.51.100.7", d.code(secret, 0)); !shows(r, protocol.OutcomeLocked) {
		t.Fatalf("after restart: %+v", r)
	}
	// Guesses spread over many addresses still reach the per-user ceiling.
	for i := range 10 {
		from("192.0.2."+string(rune('1'+i%5)), wrong)
	}
	if r := from("203.0.113.5", d.code(secret, 1)); !shows(r, protocol.OutcomeLocked) || strings.Contains(stepText(r), "address") {
		t.Fatalf("spread guesses must lock the user: %+v", r)
	}
	// An admin unlock clears the user's lock and every address block.
	d.mustDo(&protocol.Request{Op: protocol.OpAdminUnlock, User: alice})
	if r := from("198.51.100.7", d.code(secret, 1)); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("after unlock: %+v", r)
	}
}

func TestOneAddressGuessingAcrossUsersIsBlockedForAll(t *testing.T) {
	cfg := testConfig(t)
	cfg.RateLimit.SourceMaxFailures = 4
	d := startDaemon(t, cfg, nil)
	aliceSecret := d.importUser(alice)
	bobSecret := d.importUser(bob)
	secrets := map[string][]byte{alice: aliceSecret, bob: bobSecret}
	for _, u := range []string{alice, bob, alice, bob} {
		d.loginCode(protocol.Request{User: u, RHost: "198.51.100.9"}, d.wrongCode(secrets[u]))
	}
	for _, u := range []string{alice, bob} {
		r := d.startLogin(protocol.Request{User: u, RHost: "198.51.100.9"})
		if !shows(r, protocol.OutcomeLocked) || !strings.Contains(stepText(r), "from your address") {
			t.Fatalf("%s from the blocked address: %+v", u, r)
		}
	}
	if r := d.loginCode(protocol.Request{User: alice, RHost: "198.51.100.9"}, d.code(aliceSecret, 0)); !shows(r, protocol.OutcomeLocked) {
		t.Fatalf("right code from the blocked address: %+v", r)
	}
	if r := d.loginCode(protocol.Request{User: bob, RHost: "203.0.113.1"}, d.code(bobSecret, 0)); !shows(r, protocol.OutcomeAccept) {
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

// wrongCode returns a code that none of the steps around the clock's
// (within the clock hint range) produce for secret.
func (d *testDaemon) wrongCode(secret []byte) string {
	d.t.Helper()
	for c := 0; c < 1000; c++ {
		code := fmt.Sprintf("%06d", c)
		clash := false
		for off := -25; off <= 25 && !clash; off++ {
			clash = d.code(secret, off) == code
		}
		if !clash {
			return code
		}
	}
	d.t.Fatal("no wrong code found")
	return ""
}

// sourceRecords counts the address-wide records in the store.
func (d *testDaemon) sourceRecords() int {
	d.t.Helper()
	n := 0
	err := d.db.List(sourceRecordPrefix, func(rec *store.Record) error {
		if !strings.HasPrefix(rec.User, sourceRecordPrefix) {
			return store.ErrStop
		}
		n++
		return nil
	})
	if err != nil {
		d.t.Fatal(err)
	}
	return n
}

func TestAddressesFromUnprivilegedCallersCountForNothing(t *testing.T) {
	cfg := testConfig(t)
	cfg.RateLimit.SourceMaxFailures = 4
	cfg.Enroll.RecoveryCodes = 0 // their hashing would only slow the loop down
	d := startDaemon(t, cfg, nil)
	aliceSecret := d.importUser(alice)
	const victim = "sys" // uid 3
	victimSecret := d.importUser(victim)
	const target = "198.51.100.20"

	// alice, a local user, sends wrong codes for her own account and
	// claims they come from the victim's address, and so does bob, who
	// is not enrolled, through enrollments he confirms wrongly and
	// throws away, from many invented addresses.
	var reqs []*protocol.Request
	for range 6 {
		reqs = append(reqs, &protocol.Request{Op: protocol.OpLoginStart, User: alice, RHost: target, Login: &protocol.LoginStart{},
			AuthInfo: "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"},
			&protocol.Request{Op: protocol.OpLoginAnswer, Answers: []string{d.wrongCode(aliceSecret)}})
	}
	// Her first four are decided (the fifth locks her own account), more
	// than the per-address limit of three.
	for i, r := range d.clientAsMany(aliceUID, reqs)[:8] {
		if i%2 == 1 && (r.Err != "" || !shows(r.Resp.Step, protocol.OutcomeReject)) {
			t.Fatalf("alice's wrong code %d: %+v %s", i/2+1, r.Resp, r.Err)
		}
	}
	const invented = 300
	reqs = nil
	for i := range invented {
		rhost := fmt.Sprintf("10.%d.%d.1", i/250, i%250)
		if i == 0 {
			rhost = target
		}
		reqs = append(reqs,
			&protocol.Request{Op: protocol.OpEnrollBegin, User: bob, RHost: rhost},
			&protocol.Request{Op: protocol.OpEnrollConfirm, User: bob, Code: "000000", RHost: rhost},
			&protocol.Request{Op: protocol.OpDisable, User: bob, RHost: rhost})
	}
	for i, r := range d.clientAsMany(bobUID, reqs) {
		if i%3 == 0 && r.Err != "" {
			t.Fatalf("bob's enrollment %d: %s", i/3, r.Err)
		}
	}

	if r := d.loginCode(protocol.Request{User: victim, RHost: target}, d.code(victimSecret, 0)); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("the victim from the named address: %+v", r)
	}
	if n := d.sourceRecords(); n != 0 {
		t.Fatalf("%d address records after unprivileged requests, want 0", n)
	}
	st := d.mustDo(&protocol.Request{Op: protocol.OpAdminShow, User: alice}).Status
	if len(st.BlockedSources) != 0 {
		t.Fatalf("alice's own failures blocked an address she named: %+v", st.BlockedSources)
	}
	if !strings.Contains(d.log.String(), "caller context ignored") {
		t.Error("ignored context is not audited")
	}
}

func TestASuccessDoesNotClearTheAddressCountOfOthers(t *testing.T) {
	cfg := testConfig(t)
	cfg.RateLimit.SourceMaxFailures = 4
	cfg.RateLimit.PerSourceMaxFailures = 0 // alice's own block would hide the address-wide one
	d := startDaemon(t, cfg, nil)
	aliceSecret := d.importUser(alice)
	bobSecret := d.importUser(bob)
	const addr = "198.51.100.30"
	for range 3 {
		d.loginCode(protocol.Request{User: alice, RHost: addr}, d.wrongCode(aliceSecret))
	}
	// A guesser with a valid account at the same address logs in...
	if r := d.loginCode(protocol.Request{User: bob, RHost: addr}, d.code(bobSecret, 0)); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("bob: %+v", r)
	}
	// ...and the fourth guess still blocks the address.
	d.loginCode(protocol.Request{User: alice, RHost: addr}, d.wrongCode(aliceSecret))
	if r := d.startLogin(protocol.Request{User: bob, RHost: addr}); !shows(r, protocol.OutcomeLocked) {
		t.Fatalf("the address is not blocked after 4 failures with a success between them: %+v", r)
	}
}

func TestAddressRecordsExpire(t *testing.T) {
	cfg := testConfig(t)
	cfg.RateLimit.SourceMaxFailures = 50
	cfg.RateLimit.SourceLockout.Duration = time.Hour
	d := startDaemon(t, cfg, nil)
	secret := d.importUser(alice)
	verifyFrom := func(rhost string) {
		d.loginCode(protocol.Request{User: alice, RHost: rhost}, d.wrongCode(secret))
		d.mustDo(&protocol.Request{Op: protocol.OpAdminUnlock, User: alice})
	}
	for i := range 40 {
		verifyFrom(fmt.Sprintf("192.0.2.%d", i+1))
	}
	if n := d.sourceRecords(); n != 40 {
		t.Fatalf("%d address records, want 40", n)
	}
	// One address keeps failing; the others fall silent.
	d.clock.Add(50 * time.Minute)
	verifyFrom("192.0.2.1")
	d.clock.Add(11 * time.Minute)
	if n, err := d.srv.pruneSourceRecords(); err != nil || n != 39 {
		t.Fatalf("pruned %d (%v), want 39", n, err)
	}
	if n := d.sourceRecords(); n != 1 {
		t.Fatalf("%d address records after pruning, want 1", n)
	}
	// The survivor's old failure has been forgotten: its count restarts.
	d.clock.Add(time.Hour)
	verifyFrom("192.0.2.1")
	rec, err := d.db.Get(sourceRecordPrefix + "192.0.2.1")
	if err != nil || rec.Failures != 1 {
		t.Fatalf("record %+v (%v), want 1 failure", rec, err)
	}
}

func TestByDefaultAGuesserAtOneAddressNeverLocksTheOwnerOut(t *testing.T) {
	cfg := testConfig(t) // the shipped defaults
	if cfg.RateLimit.PerSourceMaxFailures == 0 || cfg.RateLimit.PerSourceMaxFailures >= cfg.RateLimit.MaxFailures {
		t.Fatalf("per_source_max_failures defaults to %d with max_failures %d", cfg.RateLimit.PerSourceMaxFailures, cfg.RateLimit.MaxFailures)
	}
	d := startDaemon(t, cfg, nil)
	secret := d.importUser(alice)
	const guesser, owner = "198.51.100.40", "203.0.113.40"
	// Thirty quick guesses, then the same again every time the address's
	// block ends, for a dozen blocks.
	for round := range 12 {
		for range 30 {
			d.loginCode(protocol.Request{User: alice, RHost: guesser}, d.wrongCode(secret))
		}
		if r := d.startLogin(protocol.Request{User: alice, RHost: owner}); !shows(r, protocol.OutcomeCodeRequired) {
			t.Fatalf("round %d: the owner's address: %+v", round, r)
		}
		st := d.mustDo(&protocol.Request{Op: protocol.OpAdminShow, User: alice}).Status
		if len(st.BlockedSources) != 1 {
			t.Fatalf("round %d: blocked sources %+v", round, st.BlockedSources)
		}
		d.clock.Add(st.BlockedSources[0].Until.Sub(d.clock.Now()))
	}
	if r := d.loginCode(protocol.Request{User: alice, RHost: owner}, d.code(secret, 0)); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("the owner from another address: %+v", r)
	}
	// Sudo and other local services have no address: the per-user limit.
	for i := range cfg.RateLimit.MaxFailures {
		r := d.verify(alice, d.wrongCode(secret))
		if want := i == cfg.RateLimit.MaxFailures-1; strings.Contains(stepText(r), "Too many failed attempts") != want {
			t.Fatalf("local failure %d: %+v", i+1, r)
		}
	}
	if r := d.verify(alice, d.code(secret, 1)); !shows(r, protocol.OutcomeLocked) {
		t.Fatalf("local guesses did not lock the user: %+v", r)
	}
}

func TestEachBlockOfAnAddressLastsLonger(t *testing.T) {
	cfg := testConfig(t)
	d := startDaemon(t, cfg, nil)
	secret := d.importUser(alice)
	var got []time.Duration
	for range 4 {
		for range cfg.RateLimit.PerSourceMaxFailures {
			d.loginCode(protocol.Request{User: alice, RHost: "198.51.100.50"}, d.wrongCode(secret))
		}
		st := d.mustDo(&protocol.Request{Op: protocol.OpAdminShow, User: alice}).Status
		if len(st.BlockedSources) != 1 {
			t.Fatalf("blocked sources %+v", st.BlockedSources)
		}
		got = append(got, st.BlockedSources[0].Until.Sub(d.clock.Now()))
		d.clock.Add(got[len(got)-1])
	}
	want := []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, time.Hour}
	if !slices.Equal(got, want) {
		t.Fatalf("blocks %v, want %v", got, want)
	}
}
