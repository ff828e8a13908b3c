//go:build integration

package integration

import (
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/protocol"
)

// The per-address limit is on by default: a guesser at one address blocks
// that address for the user, and the owner still logs in from another. Both
// SSH servers pass the remote address the same way; each is tried with the
// real ssh client, the guesser binding 127.0.0.2 (ssh -b) and the owner
// connecting from 127.0.0.1.

const guesserAddr = "127.0.0.2"

func TestPerAddressLimitByDefaultOverOpenSSH(t *testing.T) {
	e := newPAMEnv(t) // rate_limit.max_failures = pamMaxFailed; per_source_max_failures left unset
	s := startSSHD(t, e, "")
	const user = "guessed"
	s.addSSHUser(user)
	s.enroll(user)
	for i := range pamMaxFailed + 2 {
		r := s.loginOpts(user, "id_ed25519", s.wrongCode(user), []string{"-T", "-b", guesserAddr})
		if r.loggedIn(user) {
			t.Fatalf("guess %d logged in:\n%s", i+1, r.out)
		}
	}
	assertAddressBlockedOnly(t, e.do, user)
	if r := s.login(user, "id_ed25519", s.code(user)); !r.loggedIn(user) {
		t.Fatalf("the owner from 127.0.0.1 after %d guesses from %s: exit %d\n%s", pamMaxFailed+2, guesserAddr, r.exit, r.out)
	}
}

func TestPerAddressLimitByDefaultOverOtpgateSSHD(t *testing.T) {
	cfg := strings.Replace(sshdDaemonConfigWith(""), "per_source_max_failures = 0\n", "", 1)
	if strings.Contains(cfg, "per_source_max_failures") {
		t.Fatal("the suite's configuration still sets per_source_max_failures")
	}
	e := newSSHDEnvDaemon(t, cfg, "")
	const user = "guessed"
	e.addUser(user)
	e.enroll(user)
	for i := range sshdMaxFailed + 2 {
		r := e.ssh(user, "id_ed25519", e.wrongCode(user), []string{"-b", guesserAddr}, "echo IN")
		if r.exit == 0 || strings.Contains(r.out, "IN") {
			t.Fatalf("guess %d logged in:\n%s", i+1, r.out)
		}
	}
	assertAddressBlockedOnly(t, e.do, user)
	if r := e.ssh(user, "id_ed25519", e.code(user), nil, "echo IN"); r.exit != 0 || !strings.Contains(r.out, "IN") {
		t.Fatalf("the owner from 127.0.0.1 after %d guesses from %s: exit %d\n%s", sshdMaxFailed+2, guesserAddr, r.exit, r.out)
	}
}

// assertAddressBlockedOnly checks, through otpgated, that user is blocked
// at guesserAddr but neither locked nor blocked anywhere else.
func assertAddressBlockedOnly(t *testing.T, do func(*protocol.Request) *protocol.Response, user string) {
	t.Helper()
	st := do(&protocol.Request{Op: protocol.OpAdminShow, User: user}).Status
	if len(st.BlockedSources) != 1 || st.BlockedSources[0].Source != guesserAddr {
		t.Fatalf("blocked addresses %+v, want only %s", st.BlockedSources, guesserAddr)
	}
	if st.LockedByAdmin || !st.LockedUntil.IsZero() {
		t.Fatalf("the guesser locked the user out: %+v", st)
	}
}
