package daemon

import (
	"testing"

	"github.com/otpgate/otpgate/internal/protocol"
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
		if r.Outcome != protocol.OutcomeAccept || !r.Recovery || r.RecoveryRemaining != tt.remaining || r.Message != tt.message {
			t.Errorf("recovery code %s: got %+v, want accept with %d left and %q", tt.code, r, tt.remaining, tt.message)
		}
	}
	if r := d.verify(alice, "aaaa-1111"); r.Outcome != protocol.OutcomeReject || r.Message == tests[0].message {
		t.Errorf("used recovery code again: %+v", r)
	}
}
