//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/daemon/store/bolt"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// TestReliabilityClockJumpedBack is the integration half of the clock checks (the unit half is in daemon/verify_test.go). The
// real-time clock cannot be moved for one container (CLOCK_REALTIME is not
// namespaced, libfaketime does not reach Go's vDSO calls; the daemon's unit
// tests jump an injected clock instead). What a forward jump followed by a
// jump back leaves behind can be reproduced, though: the store is written,
// with the real store package while otpgated is stopped, as if a code had
// been accepted while the clock was ahead by a day or a year. Then every
// current code is refused as a replay and audited as
// replay_clock_backwards, across a restart, and admin_reset followed by a
// new import lets the user in again.
func TestReliabilityClockJumpedBack(t *testing.T) {
	e := newRelEnv(t, relConfig("info"))
	tests := []struct {
		name  string
		ahead time.Duration
	}{
		{"one day", 24 * time.Hour},
		{"one year", 365 * 24 * time.Hour},
	}
	users := make([]*relUser, len(tests))
	for i, tt := range tests {
		users[i] = e.enroll("rclock"+strings.ReplaceAll(tt.name, " ", ""), 30)
	}
	e.stop()
	db, err := bolt.Open(e.c.Path(relStateDir))
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		future := otp.Step(time.Now().Add(tt.ahead), 30)
		err := db.Update(users[i].name, func(rec *store.Record) (*store.Record, error) {
			rec.LastStep = future
			return rec, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	e.start()

	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := users[i]
			center := u.step()
			for s := center - 1; s <= center+1; s++ {
				if out, _ := e.verify(e.client, u.name, u.code(s)); out != string(protocol.OutcomeReplay) {
					t.Errorf("step %d with the last accepted step %v ahead: %s, want replay", s, tt.ahead, out)
				}
			}
		})
	}
	e.stop()
	log := e.daemon.Output()
	if n := strings.Count(log, "reason=replay_clock_backwards"); n != 3*len(tests) {
		t.Errorf("%d replays audited as replay_clock_backwards; want %d:\n%s", n, 3*len(tests), log)
	}
	e.start()
	for _, u := range users {
		if out, _ := e.verify(e.client, u.name, u.code(u.step())); out != string(protocol.OutcomeReplay) {
			t.Errorf("%s after a restart: %s, want replay", u.name, out)
		}
		e.do(&protocol.Request{Op: protocol.OpAdminReset, User: u.name})
		fresh := e.enroll(u.name, 30)
		if out, _ := e.verify(e.client, u.name, fresh.code(fresh.step())); out != string(protocol.OutcomeAccept) {
			t.Errorf("%s after admin_reset and a new import: %s, want accept", u.name, out)
		}
	}
}
