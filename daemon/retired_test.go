//go:build root

package daemon

import (
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/protocol"
)

// A PAM module or otpgate-sshd from before the login dialogue logs in with
// check, then verify. otpgated refuses both, even with a right code, with an
// error reply (which those clients take as a denial), a log line saying
// what to do, and an audit line; the code stays unused.
func TestOldClientsCheckAndVerifyAreRefused(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	secret := d.importUser(alice)
	code := d.code(secret, 0)
	for _, tt := range []struct {
		op, frame string
	}{
		{"check", `{"v":1,"id":4,"op":"check","user":"daemon","service":"sshd"}`},
		{"verify", `{"v":1,"id":5,"op":"verify","user":"daemon","code":"` + code + `","service":"sshd"}`},
	} {
		t.Run(tt.op, func(t *testing.T) {
			resp := d.rawExchange([]byte(tt.frame))
			if resp.Error == nil || resp.Error.Code != protocol.ErrBadRequest || resp.Step != nil {
				t.Fatalf("reply %+v (error %+v): want a bad_request error and no result", resp, resp.Error)
			}
			want := "a client sent '" + tt.op + "', which this otpgated no longer answers"
			if !strings.Contains(resp.Error.Message, want) || !strings.Contains(resp.Error.Message, "upgrade pam_otpgate and otpgate-sshd") {
				t.Errorf("error reply %q does not say what happened and what to do", resp.Error.Message)
			}
			var logged, audited bool
			for _, line := range strings.Split(d.log.String(), "\n") {
				logged = logged || strings.Contains(line, "level=ERROR") && strings.Contains(line, want) && strings.Contains(line, "peer_uid=0")
				audited = audited || strings.Contains(line, "op="+tt.op) && strings.Contains(line, "outcome=denied reason=old_client")
			}
			if !logged || !audited {
				t.Errorf("logged %v, audited %v:\n%s", logged, audited, d.log.String())
			}
			if strings.Contains(d.log.String(), code) {
				t.Error("the code is in the log")
			}
		})
	}
	// The code refused above was not used up: the dialogue takes it.
	if st := d.login(protocol.Request{User: alice}, says(code)).last(); st.Verdict != protocol.VerdictSuccess {
		t.Fatalf("a login with the code after the refusals: %+v", st)
	}
}
