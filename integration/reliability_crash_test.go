//go:build integration

package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
)

// ack is one request of the crash-loop driver and what came back.
type ack struct {
	user  string
	kind  string // valid, resend, replay, wrong, probe
	step  uint64 // the step whose code was sent (0 for wrong codes)
	sent  int64  // logical time when the request was sent
	acked int64  // logical time when its reply (or failure) came back
	out   string // see outcomeOf
	// locks: the reply's words say the user is now locked.
	locks bool
}

// lockedEvidence reports whether a's reply shows the user locked: the
// locked outcome, or the failure that imposed the lockout.
func (a *ack) lockedEvidence() bool {
	return a.out == string(protocol.OutcomeLocked) || (a.out == string(protocol.OutcomeReject) && a.locks)
}

func (a *ack) String() string {
	return fmt.Sprintf("%s %s step=%d sent=%d acked=%d -> %s (locks %v)", a.user, a.kind, a.step, a.sent, a.acked, a.out, a.locks)
}

// crashDriver runs verifications against otpgated while it is killed and
// restarted, and keeps the ack log.
type crashDriver struct {
	e      *relEnv
	client *protocol.Client
	clock  atomic.Int64 // logical time: orders sends and acks

	mu     sync.Mutex
	log    []*ack
	locked map[string]bool // lock users whose lockout was acked
}

// send sends code (of step, 0 if none) for u and logs the exchange.
func (d *crashDriver) send(u *relUser, kind string, step uint64, code string) *ack {
	a := &ack{user: u.name, kind: kind, step: step, sent: d.clock.Add(1)}
	var st *protocol.LoginStep
	a.out, st = d.e.verify(d.client, u.name, code)
	a.acked = d.clock.Add(1)
	if st != nil {
		a.locks = strings.Contains(stepText(st), "Too many failed attempts")
	}
	d.mu.Lock()
	d.log = append(d.log, a)
	d.mu.Unlock()
	return a
}

// ambiguous reports whether u's code for step equals its code for a
// neighbouring step the daemon could match it against, so that an accept
// of it could not be attributed to one step.
func ambiguous(u *relUser, step uint64) bool {
	c := u.code(step)
	for _, s := range []uint64{step - 2, step - 1, step + 1, step + 2} {
		if u.code(s) == c {
			return true
		}
	}
	return false
}

// accWorker drives one user with fresh valid codes in ascending steps,
// replays of the last accepted code, resends of codes whose reply was
// lost, and wrong codes. It keeps the failures that may have been
// charged since the last acked accept below the lockout limit, so this
// user is never locked.
func (d *crashDriver) accWorker(ctx context.Context, u *relUser) {
	var highest, lastAccepted uint64
	var lost []uint64 // valid codes sent whose reply was lost
	budget := 0       // failures possibly charged since the last acked accept
	for ctx.Err() == nil {
		center := u.step()
		s := max(highest+1, center-1)
		if u.params.Period < 30 {
			s = max(highest+1, center)
		}
		if s <= center+1 {
			highest = s
			if !ambiguous(u, s) {
				a := d.send(u, "valid", s, u.code(s))
				switch {
				case a.out == string(protocol.OutcomeAccept):
					budget, lastAccepted = 0, s
				case a.out == "unavailable":
					lost = append(lost, s)
				default:
					budget++
				}
			}
		}
		if budget < relMaxFailures-3 {
			now := u.step()
			switch r := rand.IntN(3); {
			case r == 0 && lastAccepted >= now-1 && lastAccepted > 0 && !ambiguous(u, lastAccepted):
				budget++
				d.send(u, "replay", lastAccepted, u.code(lastAccepted))
			case r == 1 && len(lost) > 0:
				s := lost[len(lost)-1]
				lost = lost[:len(lost)-1]
				if s >= now-1 && !ambiguous(u, s) {
					budget++
					if a := d.send(u, "resend", s, u.code(s)); a.out == string(protocol.OutcomeAccept) {
						budget = 0
						lastAccepted = max(lastAccepted, s)
					}
				}
			case r == 2:
				budget++
				d.send(u, "wrong", 0, u.wrongCode())
			}
		}
		time.Sleep(time.Duration(1+rand.IntN(4)) * time.Millisecond)
	}
}

// lockWorker drives each lock user in turn with wrong codes, two at a
// time (concurrent failures must each be charged), until a reply shows the
// lockout; so lockouts keep happening during the whole run.
func (d *crashDriver) lockWorker(ctx context.Context, users []*relUser) {
	for _, u := range users {
		for ctx.Err() == nil {
			var pair [2]*ack
			var wg sync.WaitGroup
			for i := range pair {
				wg.Go(func() { pair[i] = d.send(u, "wrong", 0, u.wrongCode()) })
			}
			wg.Wait()
			if pair[0].lockedEvidence() || pair[1].lockedEvidence() {
				d.mu.Lock()
				d.locked[u.name] = true
				d.mu.Unlock()
				break
			}
			time.Sleep(time.Duration(20+rand.IntN(30)) * time.Millisecond)
		}
	}
}

// probeWorker sends the current valid code (or a wrong one) for users
// whose lockout was acked: every answer must be "locked".
func (d *crashDriver) probeWorker(ctx context.Context, users []*relUser) {
	for ctx.Err() == nil {
		time.Sleep(time.Duration(5+rand.IntN(10)) * time.Millisecond)
		u := users[rand.IntN(len(users))]
		d.mu.Lock()
		locked := d.locked[u.name]
		d.mu.Unlock()
		if !locked {
			continue
		}
		if rand.IntN(2) == 0 {
			s := u.step()
			d.send(u, "probe", s, u.code(s))
		} else {
			d.send(u, "probe", 0, u.wrongCode())
		}
	}
}

// TestReliabilityCrashLoop: a driver runs valid, replayed and wrong
// verifications for several users while otpgated is SIGKILLed at random
// moments (0–50 ms after it started serving) and restarted, 200 times
// (1000 with OTPGATE_SOAK=1). Across the ack log no code is accepted
// twice, no accept is undone (a step at or below an acked accept is never
// accepted later), no acked failure is forgotten (the lockout comes no
// later than the max_failures-th acked failure), a lockout once acked
// holds across every restart, and the store reopens every time.
func TestReliabilityCrashLoop(t *testing.T) {
	kills := 200
	if soak() {
		kills = 1000
	}
	e := newRelEnv(t, relConfig("info"))
	var accUsers, lockUsers []*relUser
	// Users with a 1-second period give an accept per second each; the
	// 30-second ones are what real users have.
	for i := range 16 {
		period := 1
		if i >= 12 {
			period = 30
		}
		accUsers = append(accUsers, e.enroll(fmt.Sprintf("racc%02d", i), period))
	}
	// Enough lock users that lockouts keep happening through the run.
	for i := range kills / 5 {
		lockUsers = append(lockUsers, e.enroll(fmt.Sprintf("rlock%03d", i), 30))
	}
	d := &crashDriver{e: e, client: &protocol.Client{Socket: e.client.Socket, Timeout: 3 * time.Second}, locked: map[string]bool{}}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stopDriver := func() { cancel(); wg.Wait() }
	defer stopDriver()
	for _, u := range accUsers {
		wg.Go(func() { d.accWorker(ctx, u) })
	}
	const lockWorkers = 4
	for i := range lockWorkers {
		var mine []*relUser
		for j := i; j < len(lockUsers); j += lockWorkers {
			mine = append(mine, lockUsers[j])
		}
		wg.Go(func() { d.lockWorker(ctx, mine) })
	}
	for range 2 {
		wg.Go(func() { d.probeWorker(ctx, lockUsers) })
	}

	p := e.daemon
	var slowestRestart time.Duration
	for i := range kills {
		time.Sleep(time.Duration(rand.IntN(51)) * time.Millisecond)
		if p.Exited() {
			stopDriver()
			t.Fatalf("kill %d: otpgated exited on its own before the kill: %v\n%s", i, p.Wait(), p.Output())
		}
		if err := p.Signal(syscall.SIGKILL); err != nil {
			stopDriver()
			t.Fatalf("kill %d: %v", i, err)
		}
		if err := p.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			stopDriver()
			t.Fatalf("kill %d: otpgated ended with %v, not by SIGKILL\n%s", i, err, p.Output())
		}
		started := time.Now()
		p = e.c.Background(t, e.otpgatedBin, "-config", relConfigPath)
		if err := e.ready(p, 20*time.Second); err != nil {
			stopDriver()
			t.Fatalf("restart after kill %d: the store did not reopen: %v\n%s", i+1, err, p.Output())
		}
		slowestRestart = max(slowestRestart, time.Since(started))
	}
	stopDriver()
	e.daemon = p

	// The last daemon stops cleanly; the next one must still refuse
	// every acked accept and keep every acked lockout.
	e.stop()
	e.start()
	final := &crashDriver{e: e, client: e.client, locked: map[string]bool{}}
	final.clock.Store(d.clock.Load())
	for _, u := range accUsers {
		if s := lastAcceptedStep(d.log, u.name); s > 0 && s+1 >= u.step() {
			d.log = append(d.log, final.send(u, "replay", s, u.code(s)))
		}
	}
	for _, u := range lockUsers {
		if d.locked[u.name] {
			s := u.step()
			d.log = append(d.log, final.send(u, "probe", s, u.code(s)))
		}
	}

	st := checkAckLog(d.log, t.Errorf)
	if st.accepts == 0 || st.lockouts == 0 {
		t.Errorf("the driver got %d accepts and %d lockouts: the loop exercised nothing", st.accepts, st.lockouts)
	}
	t.Logf("crash loop: %d kills survived, %d requests driven (%d while the daemon was down), %d accepts, %d replays and resends refused, 0 codes accepted twice (violations: %d), %d of %d lock users locked, %d probes of locked users all refused; slowest restart to first reply %v",
		kills, len(d.log), st.unavailable, st.accepts, st.replaysRefused, st.violations, st.lockouts, len(lockUsers), st.probes, slowestRestart.Round(time.Millisecond))
}

// lastAcceptedStep returns the highest accepted step of user in log.
func lastAcceptedStep(log []*ack, user string) uint64 {
	var s uint64
	for _, a := range log {
		if a.user == user && a.out == string(protocol.OutcomeAccept) {
			s = max(s, a.step)
		}
	}
	return s
}

// ackStats are the figures of a checked ack log.
type ackStats struct {
	accepts, unavailable, replaysRefused, lockouts, probes, violations int
}

// checkAckLog checks the crash loop's invariants over the whole log and
// reports the first 20 violations (all are counted).
func checkAckLog(log []*ack, report func(format string, args ...any)) ackStats {
	var st ackStats
	violation := func(format string, args ...any) {
		st.violations++
		if st.violations <= 20 {
			report(format, args...)
		}
	}
	byUser := map[string][]*ack{}
	for _, a := range log {
		byUser[a.user] = append(byUser[a.user], a)
		switch {
		case a.out == "unavailable":
			st.unavailable++
		case a.out == string(protocol.OutcomeAccept):
			st.accepts++
		case a.kind == "replay" || a.kind == "resend":
			st.replaysRefused++
		}
	}
	users := make([]string, 0, len(byUser))
	for u := range byUser {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, user := range users {
		acks := byUser[user]
		sort.Slice(acks, func(i, j int) bool { return acks[i].acked < acks[j].acked })
		// No code accepted twice, and no accept undone: once an accept of
		// step s was acked, no request sent afterwards may be accepted
		// for a step <= s.
		seen := map[uint64]*ack{}
		var accepts []*ack
		for _, a := range acks {
			if a.out != string(protocol.OutcomeAccept) {
				continue
			}
			if a.kind == "wrong" || a.kind == "probe" {
				violation("accepted a code that must be refused: %v", a)
			}
			if prev := seen[a.step]; prev != nil {
				violation("code accepted twice: %v, then %v", prev, a)
			}
			seen[a.step] = a
			for _, b := range accepts {
				if a.sent > b.acked && a.step <= b.step {
					violation("accept undone by a crash: %v acked, then %v", b, a)
				}
			}
			accepts = append(accepts, a)
		}
		// No acked failure forgotten: each acked plain failure of a user
		// with no success was a distinct committed increment, so at most
		// max_failures-1 of them come before the lockout shows.
		if !strings.HasPrefix(user, "rlock") {
			continue
		}
		plain := 0
		var lockedAt *ack
		for _, a := range acks {
			if lockedAt == nil {
				if a.lockedEvidence() {
					lockedAt = a
					st.lockouts++
				} else if a.out == string(protocol.OutcomeReject) {
					plain++
				}
				continue
			}
			if a.sent > lockedAt.acked {
				if a.kind == "probe" {
					st.probes++
				}
				if a.out != string(protocol.OutcomeLocked) && a.out != "unavailable" {
					violation("lockout forgotten: %v acked, then %v", lockedAt, a)
				}
			}
		}
		if plain > relMaxFailures-1 {
			violation("failures forgotten: %s got %d acked failures without a lockout (limit %d)", user, plain, relMaxFailures)
		}
	}
	return st
}

// TestAckLogChecker feeds the crash loop's checker hand-written logs: it
// must find each kind of violation the crash loop exists to catch, and nothing in a
// clean log.
func TestAckLogChecker(t *testing.T) {
	accept := string(protocol.OutcomeAccept)
	reject := string(protocol.OutcomeReject)
	locked := string(protocol.OutcomeLocked)
	replay := string(protocol.OutcomeReplay)
	failures := func(user string, n int, from int64) []*ack {
		var log []*ack
		for i := range int64(n) {
			log = append(log, &ack{user: user, kind: "wrong", sent: from + 2*i, acked: from + 2*i + 1, out: reject})
		}
		return log
	}
	tests := []struct {
		name       string
		log        []*ack
		violations int
	}{
		{"clean", append([]*ack{
			{user: "racc00", kind: "valid", step: 10, sent: 1, acked: 2, out: accept},
			{user: "racc00", kind: "replay", step: 10, sent: 3, acked: 4, out: replay},
			{user: "racc00", kind: "valid", step: 11, sent: 5, acked: 6, out: "unavailable"},
			{user: "racc00", kind: "resend", step: 11, sent: 7, acked: 8, out: accept},
			{user: "rlock000", kind: "wrong", sent: 20, acked: 31, out: reject, locks: true},
			{user: "rlock000", kind: "probe", step: 10, sent: 32, acked: 33, out: locked},
		}, failures("rlock000", 5, 9)...), 0},
		{"a code accepted twice", []*ack{
			{user: "racc00", kind: "valid", step: 10, sent: 1, acked: 2, out: accept},
			{user: "racc00", kind: "replay", step: 10, sent: 3, acked: 4, out: accept},
		}, 2},
		{"an accept undone by a crash", []*ack{
			{user: "racc00", kind: "valid", step: 11, sent: 1, acked: 2, out: accept},
			{user: "racc00", kind: "resend", step: 10, sent: 3, acked: 4, out: accept},
		}, 1},
		{"a wrong code accepted", []*ack{{user: "racc00", kind: "wrong", sent: 1, acked: 2, out: accept}}, 1},
		{"a failure forgotten", failures("rlock000", relMaxFailures, 1), 1},
		{"a lockout forgotten", append(failures("rlock000", 1, 1),
			&ack{user: "rlock000", kind: "wrong", sent: 3, acked: 4, out: locked},
			&ack{user: "rlock000", kind: "probe", step: 9, sent: 5, acked: 6, out: accept}), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var found []string
			st := checkAckLog(tt.log, func(format string, args ...any) { found = append(found, fmt.Sprintf(format, args...)) })
			if st.violations != tt.violations || len(found) != tt.violations {
				t.Errorf("%d violations (%q), want %d", st.violations, found, tt.violations)
			}
		})
	}
}
