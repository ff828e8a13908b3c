//go:build root

package daemon

import (
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

func TestEnrollmentIsPendingUntilTheFirstCode(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	info := d.mustDo(&protocol.Request{Op: protocol.OpEnrollBegin, User: alice}).Enroll
	key, err := otp.ParseURI(info.URI)
	if err != nil {
		t.Fatalf("enroll URI %q: %v", info.URI, err)
	}
	if len(key.Secret) != 20 || otp.EncodeSecret(key.Secret) != info.Secret {
		t.Fatalf("secret in URI (%d bytes) and manual key disagree", len(key.Secret))
	}
	if u, _ := url.Parse(info.URI); u.Query().Get("issuer") != "otpgate" {
		t.Errorf("issuer missing from %s", info.URI)
	}
	code := d.code(key.Secret, 0)

	// Pending cannot authenticate: the user still counts as not enrolled.
	if r := d.verify(alice, code); !shows(r, protocol.OutcomeNotEnrolled) {
		t.Fatalf("verify with a pending enrollment: %+v", r)
	}
	st := d.mustDo(&protocol.Request{Op: protocol.OpStatus, User: alice}).Status
	if st.State != protocol.StatePending {
		t.Fatalf("status: %+v", st)
	}
	_, err = d.do(&protocol.Request{Op: protocol.OpEnrollConfirm, User: alice, Code: "000000"})
	if errCode(err) != protocol.ErrInvalidCode {
		t.Fatalf("wrong confirmation code: %v", err)
	}
	resp := d.mustDo(&protocol.Request{Op: protocol.OpEnrollConfirm, User: alice, Code: code})
	if len(resp.RecoveryCodes) != 10 {
		t.Fatalf("want 10 recovery codes, got %v", resp.RecoveryCodes)
	}
	st = d.mustDo(&protocol.Request{Op: protocol.OpStatus, User: alice}).Status
	if st.State != protocol.StateActive || st.RecoveryRemaining != 10 || st.Failures != 0 {
		t.Fatalf("status after confirm: %+v", st)
	}
	// The confirming code is used up.
	if r := d.verify(alice, code); !shows(r, protocol.OutcomeReplay) {
		t.Fatalf("confirming code reused: %+v", r)
	}
	// Re-enrolling an active user needs a current code.
	if _, err := d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpEnrollBegin, User: alice}); !strings.Contains(err, "current code") {
		t.Fatalf("re-enroll without a code: %q", err)
	}
	if _, err := d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpEnrollBegin, User: alice, Code: "000001"}); !strings.Contains(err, "Wrong code") {
		t.Fatalf("re-enroll with a wrong code: %q", err)
	}
	d.clock.Add(30e9)
	resp2, errText := d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpEnrollBegin, User: alice, Code: d.code(key.Secret, 0)})
	if errText != "" || resp2.Enroll == nil || resp2.Enroll.Secret == info.Secret {
		t.Fatalf("re-enroll with a code: %v %+v", errText, resp2)
	}
	// The old secret stays active until the new one is confirmed.
	d.clock.Add(30e9)
	if r := d.verify(alice, d.code(key.Secret, 0)); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("old secret during re-enrollment: %+v", r)
	}
}

func TestRecoveryCodesWorkExactlyOnce(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	info := d.mustDo(&protocol.Request{Op: protocol.OpEnrollBegin, User: alice}).Enroll
	key, err := otp.ParseURI(info.URI)
	if err != nil {
		t.Fatal(err)
	}
	codes := d.mustDo(&protocol.Request{Op: protocol.OpEnrollConfirm, User: alice, Code: d.code(key.Secret, 0)}).RecoveryCodes

	// Typed loosely: upper case, no hyphens.
	loose := strings.ToUpper(strings.ReplaceAll(codes[0], "-", ""))
	if r := d.verify(alice, loose); !shows(r, protocol.OutcomeAccept) || stepText(r) != "Recovery code accepted; 9 left." {
		t.Fatalf("first recovery code: %+v", r)
	}
	if r := d.verify(alice, codes[0]); !shows(r, protocol.OutcomeReject) {
		t.Fatalf("recovery code reused: %+v", r)
	}
	// 32 clients submit one recovery code at once: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for range 32 {
		wg.Go(func() {
			st, err := d.tryLogin(protocol.Request{User: alice}, codes[1])
			if err != nil {
				t.Error(err)
				return
			}
			if shows(st, protocol.OutcomeAccept) {
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if accepted != 1 {
		t.Fatalf("recovery code accepted %d times concurrently", accepted)
	}
	if st := d.mustDo(&protocol.Request{Op: protocol.OpStatus, User: alice}).Status; st.RecoveryRemaining != 8 {
		t.Fatalf("status: %+v", st)
	}
	// The store holds hashes only.
	raw := d.rawStore(t)
	for _, c := range codes {
		if strings.Contains(raw, c) || strings.Contains(raw, strings.ReplaceAll(c, "-", "")) {
			t.Fatalf("recovery code %s stored in plain text", c)
		}
	}
	if strings.Contains(raw, info.Secret) {
		t.Fatal("secret stored in plain text")
	}
}

func TestDisableNeedsACodeUnlessRoot(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	secret := d.importUser(alice)
	d.importUser(bob)
	if _, err := d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpDisable, User: alice}); !strings.Contains(err, "current code") {
		t.Fatalf("disable without code: %q", err)
	}
	if _, err := d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpDisable, User: alice, Code: d.code(secret, 0)}); err != "" {
		t.Fatalf("disable with code: %q", err)
	}
	if st := d.mustDo(&protocol.Request{Op: protocol.OpStatus, User: alice}).Status; st.State != protocol.StateNone {
		t.Fatalf("after disable: %+v", st)
	}
	d.mustDo(&protocol.Request{Op: protocol.OpDisable, User: bob})
	if st := d.mustDo(&protocol.Request{Op: protocol.OpStatus, User: bob}).Status; st.State != protocol.StateNone {
		t.Fatalf("after root disable: %+v", st)
	}
}

// countHashes counts the recovery-code KDF runs until the test ends. Call
// it before startDaemon, so that the daemon has stopped when it is undone.
func countHashes(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	orig := hashRecoveryCode
	hashRecoveryCode = func(salt []byte, normalized string) []byte {
		n.Add(1)
		return orig(salt, normalized)
	}
	t.Cleanup(func() { hashRecoveryCode = orig })
	return &n
}

// TestWrongCodeHashesNoRecoveryCodes: the requests that make new recovery
// codes hash each one with the slow KDF; a wrong code must be refused
// before that, so that guessing cannot burn the daemon's CPU.
func TestWrongCodeHashesNoRecoveryCodes(t *testing.T) {
	hashes := countHashes(t)
	d := startDaemon(t, testConfig(t), nil)
	n := int64(d.cfg.Enroll.RecoveryCodes)
	key, err := otp.ParseURI(d.mustDo(&protocol.Request{Op: protocol.OpEnrollBegin, User: alice}).Enroll.URI)
	if err != nil {
		t.Fatal(err)
	}
	wrong := d.wrongCode(key.Secret)
	steps := []struct {
		name, code string
		op         protocol.Op
		accepted   bool
		wantHashes int64
	}{
		{"enroll_confirm with a wrong code", wrong, protocol.OpEnrollConfirm, false, 0},
		{"enroll_confirm with the right code", d.code(key.Secret, 0), protocol.OpEnrollConfirm, true, n},
		{"recovery_codes with a wrong code", wrong, protocol.OpRecoveryCodes, false, n},
		{"recovery_codes with the next code", d.code(key.Secret, 1), protocol.OpRecoveryCodes, true, 2 * n},
	}
	for _, st := range steps {
		resp, err := d.do(&protocol.Request{Op: st.op, User: alice, Code: st.code})
		switch {
		case st.accepted && (err != nil || int64(len(resp.RecoveryCodes)) != n):
			t.Fatalf("%s: %+v, %v; want %d recovery codes", st.name, resp, err, n)
		case !st.accepted && errCode(err) != protocol.ErrInvalidCode:
			t.Fatalf("%s: %+v, %v; want an invalid-code error", st.name, resp, err)
		}
		if got := hashes.Load(); got != st.wantHashes {
			t.Errorf("%s: %d recovery-code hashes so far, want %d", st.name, got, st.wantHashes)
		}
	}
}
