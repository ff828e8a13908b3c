package setup

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
)

func TestOverridable(t *testing.T) {
	ok := Guard{Kind: GuardDaemon, Status: GuardOK, What: "otpgated answers"}
	note := Guard{Kind: GuardAdmin, Status: GuardNote, Problem: "bob is not enrolled"}
	daemon := Guard{Kind: GuardDaemon, Status: GuardFailed, Problem: "otpgated does not answer"}
	admin := Guard{Kind: GuardAdmin, Status: GuardFailed, Problem: "admin (who runs this) is not enrolled", Overridable: true}
	unasked := Guard{Kind: GuardAdmin, Status: GuardFailed, Problem: "otpgated did not say whether admin (who runs this) is enrolled"}
	tests := []struct {
		name   string
		guards []Guard
		failed int
		want   bool
	}{
		{"all pass", []Guard{ok, note}, 0, false},
		{"only the administrator", []Guard{ok, note, admin}, 1, true},
		{"the daemon as well", []Guard{daemon, admin}, 2, false},
		{"an unanswered question names who runs this but is not overridable", []Guard{ok, unasked}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := Failed(tt.guards)
			if len(failed) != tt.failed {
				t.Errorf("%d failed, want %d: %+v", len(failed), tt.failed, failed)
			}
			if got := Overridable(failed); got != tt.want {
				t.Errorf("Overridable = %t, want %t", got, tt.want)
			}
		})
	}
}

// TestGuardsDaemonDown: with otpgated not answering, the daemon check and
// the administrator check fail, and --force may override neither.
func TestGuardsDaemonDown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "absent.sock")
	s := &Session{Target: "sudo", Admin: "admin1", PAMDir: t.TempDir(),
		Client: &protocol.Client{Socket: sock, Timeout: time.Second}, Timeout: time.Second}
	guards := s.Guards(context.Background())
	kinds := map[GuardKind]bool{}
	for _, g := range Failed(guards) {
		kinds[g.Kind] = true
		if g.Overridable {
			t.Errorf("overridable: %+v", g)
		}
		if g.Problem == "" || g.Fix == "" {
			t.Errorf("no problem or fix: %+v", g)
		}
	}
	if !kinds[GuardDaemon] || !kinds[GuardAdmin] || !kinds[GuardModule] {
		t.Errorf("failed kinds %v, want the daemon, the module (none in %s) and the administrator", kinds, s.PAMDir)
	}
	if Overridable(Failed(guards)) {
		t.Errorf("--force could override a daemon that is down")
	}
	if g := guards[0]; g.Kind != GuardDaemon || !strings.Contains(g.Problem, "otpgated does not answer on "+sock) {
		t.Errorf("first guard: %+v", g)
	}
}
