//go:build integration

package integration

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
)

// TestSSHDLoginRecords checks utmp, wtmp and lastlog with the real who,
// last and lastlog: a terminal session is listed while it runs, with its
// terminal and the client's address, and marked ended at logout; a
// session without a terminal leaves no record (as with OpenSSH).
func TestSSHDLoginRecords(t *testing.T) {
	container.Require(t, "who", "last", "lastlog")
	e := newSSHDEnv(t, "")
	e.addUser("recorded")
	// systemd-update-utmp makes the file at boot; the container has none.
	e.c.WriteFile(t, "/run/utmp", nil, 0o664)
	e.c.Run(t, "chgrp", "utmp", "/run/utmp")

	r := e.ssh("recorded", "id_ed25519", "", []string{"-tt"}, "tty; who")
	if r.exit != 0 {
		t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
	}
	tty := regexp.MustCompile(`/dev/(pts/\d+)`).FindStringSubmatch(r.out)
	if tty == nil {
		t.Fatalf("no terminal in the output:\n%s", r.out)
	}
	line := tty[1]
	if !regexp.MustCompile(`(?m)^recorded +` + regexp.QuoteMeta(line) + ` .*\(127\.0\.0\.1\)`).MatchString(r.out) {
		t.Errorf("who inside the session does not list recorded on %s from 127.0.0.1:\n%s", line, r.out)
	}

	// The session's end is written after the exit is reported; wait for
	// it.
	deadline := time.Now().Add(5 * time.Second)
	for strings.Contains(e.c.Run(t, "who"), "recorded") {
		if time.Now().After(deadline) {
			t.Fatalf("who still lists the session after logout:\n%s", e.c.Run(t, "who"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	last := e.c.Run(t, "last", "-w", "-i", "recorded")
	if !regexp.MustCompile(`(?m)^recorded +` + regexp.QuoteMeta(line) + ` +127\.0\.0\.1 `).MatchString(last) {
		t.Errorf("last does not show the session on %s from 127.0.0.1:\n%s", line, last)
	}
	if strings.Contains(last, "still logged in") {
		t.Errorf("last shows the session as still open:\n%s", last)
	}
	if ll := e.c.Run(t, "lastlog", "-u", "recorded"); !strings.Contains(ll, line) || !strings.Contains(ll, "127.0.0.1") {
		t.Errorf("lastlog has no entry for the session:\n%s", ll)
	}

	// A command without a terminal is not a login: no record.
	before := strings.Count(e.c.Run(t, "last", "-w", "recorded"), "\nrecorded ")
	if r := e.ssh("recorded", "id_ed25519", "", nil, "true"); r.exit != 0 {
		t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
	}
	if after := strings.Count(e.c.Run(t, "last", "-w", "recorded"), "\nrecorded "); after != before {
		t.Errorf("a session without a terminal was recorded (%d records, then %d)", before, after)
	}
}
