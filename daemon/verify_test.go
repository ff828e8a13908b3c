//go:build root

package daemon

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
)

func TestVerifyAcceptsOnceThenOnlyLaterSteps(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	secret := d.importUser(alice)

	code := d.oathtoolCode(secret)
	if code != d.code(secret, 0) {
		t.Fatalf("oathtool %s and otp %s disagree", code, d.code(secret, 0))
	}
	if r := d.verify(alice, code); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("first use: %+v", r)
	}
	if r := d.verify(alice, code); !shows(r, protocol.OutcomeReplay) || !strings.Contains(stepText(r), "already used") {
		t.Fatalf("replay: %+v", r)
	}
	if r := d.verify(alice, d.code(secret, -1)); !shows(r, protocol.OutcomeReplay) {
		t.Fatalf("previous step after a later one was used: %+v", r)
	}
	if r := d.verify(alice, d.code(secret, 1)); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("next step within the window: %+v", r)
	}
	log := d.log.String()
	if n := strings.Count(log, "outcome=replay"); n != 2 {
		t.Errorf("want 2 replay audit lines, got %d:\n%s", n, log)
	}
	if strings.Contains(log, code) {
		t.Errorf("the audit log contains a code:\n%s", log)
	}
}

func TestVerifyWindowAndClockHint(t *testing.T) {
	tests := []struct {
		name        string
		offsetSteps int
		want        protocol.Outcome
		hint        string
	}{
		{"the current step is accepted", 0, protocol.OutcomeAccept, ""},
		{"one step back is accepted (skew 1)", -1, protocol.OutcomeAccept, ""},
		{"one step ahead is accepted (skew 1)", 1, protocol.OutcomeAccept, ""},
		{"two steps back is rejected without a hint about minutes", -2, protocol.OutcomeReject, "a minute behind"},
		{"six steps ahead says the device is ahead", 6, protocol.OutcomeReject, "about 3 minutes ahead"},
		{"ten steps back says the device is behind", -10, protocol.OutcomeReject, "about 5 minutes behind"},
		{"far outside the hint window is a plain reject", 60, protocol.OutcomeReject, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemon(t, testConfig(t), nil)
			secret := d.importUser(alice)
			r := d.verify(alice, d.code(secret, tt.offsetSteps))
			if !shows(r, tt.want) {
				t.Fatalf("%s %q, want what %s shows", r.Verdict, stepText(r), tt.want)
			}
			if tt.hint == "" && tt.want == protocol.OutcomeReject && stepText(r) != "Wrong code." {
				t.Errorf("message %q, want %q", stepText(r), "Wrong code.")
			}
			if tt.hint != "" && !strings.Contains(stepText(r), tt.hint) {
				t.Errorf("message %q lacks %q", stepText(r), tt.hint)
			}
		})
	}
}

func TestConcurrentSameCodeAcceptedExactlyOnce(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	secret := d.importUser(alice)
	const clients, rounds = 64, 10
	for round := range rounds {
		d.clock.Add(30 * time.Second)
		code := d.code(secret, 0)
		var mu sync.Mutex
		outcomes := map[protocol.Outcome]int{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range clients {
			wg.Go(func() {
				<-start
				st, err := d.tryLogin(protocol.Request{User: alice}, code)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					outcomes["error: "+protocol.Outcome(err.Error())]++
				case shows(st, protocol.OutcomeAccept):
					outcomes[protocol.OutcomeAccept]++
				case shows(st, protocol.OutcomeReplay):
					outcomes[protocol.OutcomeReplay]++
				case shows(st, protocol.OutcomeLocked):
					outcomes[protocol.OutcomeLocked]++
				default:
					outcomes[protocol.Outcome(st.Verdict+": "+protocol.Verdict(stepText(st)))]++
				}
			})
		}
		close(start)
		wg.Wait()
		if outcomes[protocol.OutcomeAccept] != 1 || outcomes[protocol.OutcomeAccept]+outcomes[protocol.OutcomeReplay]+outcomes[protocol.OutcomeLocked] != clients {
			t.Fatalf("round %d: %v", round, outcomes)
		}
		// Replays count as failures; unlock so the next round starts clean.
		d.mustDo(&protocol.Request{Op: protocol.OpAdminUnlock, User: alice})
	}
}

func TestParallelGuessesAreChargedBeforeTheCheck(t *testing.T) {
	cfg := testConfig(t)
	cfg.RateLimit.MaxFailures = 5
	d := startDaemon(t, cfg, nil)
	secret := d.importUser(alice)
	right := d.code(secret, 0)
	const guesses = 500
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[protocol.Outcome]int{}
	for i := range guesses {
		guess := fmt.Sprintf("%06d", i)
		if guess == right || guess == d.code(secret, -1) || guess == d.code(secret, 1) {
			guess = "999999"
		}
		wg.Go(func() {
			st, err := d.tryLogin(protocol.Request{User: alice}, guess)
			if err != nil {
				t.Error(err)
				return
			}
			o := protocol.OutcomeReject
			if shows(st, protocol.OutcomeLocked) {
				o = protocol.OutcomeLocked
			}
			mu.Lock()
			outcomes[o]++
			mu.Unlock()
		})
	}
	wg.Wait()
	evaluated := guesses - outcomes[protocol.OutcomeLocked]
	if evaluated != cfg.RateLimit.MaxFailures {
		t.Fatalf("%d guesses were evaluated, want exactly %d: %v", evaluated, cfg.RateLimit.MaxFailures, outcomes)
	}
	if n := strings.Count(d.log.String(), "reason=bad_code"); n != cfg.RateLimit.MaxFailures {
		t.Errorf("audit shows %d evaluated guesses, want %d", n, cfg.RateLimit.MaxFailures)
	}
	// The right code is refused while locked (privacyIDEA #265).
	if r := d.verify(alice, right); !shows(r, protocol.OutcomeLocked) || !strings.Contains(stepText(r), "try again in") {
		t.Fatalf("right code while locked: %+v", r)
	}
}

func TestLockoutBackoffHardCapAndUnlock(t *testing.T) {
	cfg := testConfig(t)
	cfg.RateLimit.MaxFailures = 3
	cfg.RateLimit.Lockout.Duration = time.Minute
	cfg.RateLimit.Backoff = 2
	cfg.RateLimit.MaxLockout.Duration = 3 * time.Minute
	cfg.RateLimit.MaxConsecutiveFailures = 9
	d := startDaemon(t, cfg, nil)
	secret := d.importUser(alice)
	wrong := func() *protocol.LoginStep { return d.verify(alice, "000000") }
	if d.code(secret, 0) == "000000" {
		t.Fatal("unlucky secret")
	}
	for i := 1; i <= 2; i++ {
		if r := wrong(); !shows(r, protocol.OutcomeReject) || stepText(r) != "Wrong code." {
			t.Fatalf("failure %d: %+v", i, r)
		}
	}
	if r := wrong(); r.Verdict != protocol.VerdictRefused || stepText(r) != "Wrong code. Too many failed attempts: try again in 1 minute." {
		t.Fatalf("third failure should lock for 1m: %+v", r)
	}
	if r := d.verify(alice, d.code(secret, 0)); !shows(r, protocol.OutcomeLocked) {
		t.Fatalf("locked user with the right code: %+v", r)
	}
	d.clock.Add(61 * time.Second)
	for range 2 {
		wrong()
	}
	if r := wrong(); r.Verdict != protocol.VerdictRefused || stepText(r) != "Wrong code. Too many failed attempts: try again in 2 minutes." {
		t.Fatalf("second lockout should double to 2m: %+v", r)
	}
	// Restarting the daemon does not reset the lockout.
	d.restart()
	if r := d.verify(alice, d.code(secret, 0)); !shows(r, protocol.OutcomeLocked) {
		t.Fatalf("after restart: %+v", r)
	}
	d.clock.Add(121 * time.Second)
	for range 2 {
		wrong()
	}
	if r := wrong(); r.Verdict != protocol.VerdictRefused || !strings.Contains(stepText(r), "until an administrator runs 'otpgate admin unlock") {
		t.Fatalf("ninth failure should need an admin: %+v", r)
	}
	d.clock.Add(24 * time.Hour)
	if r := d.verify(alice, d.code(secret, 0)); !shows(r, protocol.OutcomeLocked) || !strings.Contains(stepText(r), "until an administrator runs 'otpgate admin unlock") {
		t.Fatalf("admin lock must not expire: %+v", r)
	}
	d.mustDo(&protocol.Request{Op: protocol.OpAdminUnlock, User: alice})
	if r := d.verify(alice, d.code(secret, 0)); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("after unlock: %+v", r)
	}
	st := d.mustDo(&protocol.Request{Op: protocol.OpStatus, User: alice}).Status
	if st.Failures != 0 || st.LockedByAdmin || !st.LockedUntil.IsZero() {
		t.Fatalf("status after success: %+v", st)
	}
}

func TestReplayStateSurvivesRestartAndClockGoingBack(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	secret := d.importUser(alice)
	code := d.code(secret, 0)
	if r := d.verify(alice, code); !shows(r, protocol.OutcomeAccept) {
		t.Fatal(r)
	}
	d.restart()
	if r := d.verify(alice, code); !shows(r, protocol.OutcomeReplay) {
		t.Fatalf("replay after restart: %+v", r)
	}
	for _, back := range []time.Duration{-30 * time.Second, -time.Hour} {
		d.clock.Add(back)
		old := d.code(secret, 0)
		if r := d.verify(alice, old); !shows(r, protocol.OutcomeReplay) {
			t.Fatalf("clock moved %v: code for an earlier step: %+v", back, r)
		}
		d.clock.Add(-back)
	}
	if !strings.Contains(d.log.String(), "reason=replay_clock_backwards") {
		t.Errorf("backwards clock not audited:\n%s", d.log.String())
	}
	d.mustDo(&protocol.Request{Op: protocol.OpAdminUnlock, User: alice})
	if r := d.verify(alice, d.code(secret, 1)); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("next step: %+v", r)
	}
}

// TestReplayOfANextStepCodeIsNotAClockJump: a code for the next step (the
// device a little ahead) is accepted; replaying it, or sending the current
// step's code, in the same step is a plain replay: the server's clock did
// not move, so the audit must not say replay_clock_backwards.
func TestReplayOfANextStepCodeIsNotAClockJump(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	secret := d.importUser(alice)
	if r := d.verify(alice, d.code(secret, 1)); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("next step's code: %+v", r)
	}
	for _, offset := range []int{1, 0, -1} {
		if r := d.verify(alice, d.code(secret, offset)); !shows(r, protocol.OutcomeReplay) {
			t.Fatalf("step %+d after the next step was accepted: %+v", offset, r)
		}
	}
	log := d.log.String()
	if strings.Contains(log, "replay_clock_backwards") || strings.Count(log, "reason=replay") != 3 {
		t.Errorf("want three plain replays audited:\n%s", log)
	}
}

func TestACodeTheClockHintRevealedIsNeverAccepted(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	secret := d.importUser(alice)
	future := d.code(secret, 2) // just outside the window (skew 1)
	r := d.verify(alice, future)
	if !shows(r, protocol.OutcomeReject) || !strings.Contains(stepText(r), "a minute ahead") {
		t.Fatalf("the code of step+2 now: %+v", r)
	}
	st := d.mustDo(&protocol.Request{Op: protocol.OpAdminShow, User: alice}).Status
	if st.Failures != 1 {
		t.Fatalf("the hinted code counted %d failures, want 1", st.Failures)
	}
	// Its step comes: the code is refused for as long as it is in the window.
	for _, wait := range []time.Duration{30 * time.Second, 30 * time.Second, 30 * time.Second} {
		d.clock.Add(wait)
		if r := d.verify(alice, future); shows(r, protocol.OutcomeAccept) {
			t.Fatalf("the revealed code was accepted %s later: %+v", wait, r)
		}
	}
	d.mustDo(&protocol.Request{Op: protocol.OpAdminUnlock, User: alice})
	// The codes of the other steps still work.
	if r := d.verify(alice, d.oathtoolCode(secret)); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("the next code: %+v", r)
	}
}
