//go:build integration

package integration

import (
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// largeImportUsers is the size of the large-site imports: enough that the
// usersfile (about 180 KB) and /etc/passwd are well over the 64 KiB the
// importer once read of a file, and quick enough for every run.
const largeImportUsers = 2000

// bulkUser is one of many accounts written straight into the container's
// /etc/passwd and /etc/group (useradd would take minutes for thousands).
type bulkUser struct {
	name   string
	uid    int
	home   string
	secret []byte
}

// addBulkUsers appends n accounts prefix000000… (uid from firstUID, home
// /home/NAME, 0700 and theirs) with a random 160-bit secret each.
func addBulkUsers(t *testing.T, e *cliEnv, prefix string, n, firstUID int) []bulkUser {
	t.Helper()
	users := make([]bulkUser, n)
	var passwd, group strings.Builder
	for i := range users {
		u := bulkUser{name: fmt.Sprintf("%s%06d", prefix, i), uid: firstUID + i, secret: randomSecret(t, 20)}
		u.home = "/home/" + u.name
		users[i] = u
		fmt.Fprintf(&passwd, "%s:x:%d:%d::%s:/bin/sh\n", u.name, u.uid, u.uid, u.home)
		fmt.Fprintf(&group, "%s:x:%d:\n", u.name, u.uid)
		if err := os.Mkdir(e.c.Path(u.home), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(e.c.Path(u.home), u.uid, u.uid); err != nil {
			t.Fatal(err)
		}
	}
	appendTo(t, e.c.Path("/etc/passwd"), passwd.String())
	appendTo(t, e.c.Path("/etc/group"), group.String())
	return users
}

func appendTo(t *testing.T, p, data string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}

// checkSample checks, for the first, a middle and the last user, that
// otpgated accepts oathtool's code for the secret the test wrote, and that
// everyone is enrolled.
func checkSample(t *testing.T, e *cliEnv, users []bulkUser) {
	t.Helper()
	for _, i := range []int{0, len(users) / 2, len(users) - 1} {
		u := users[i]
		if v := e.verify(u.name, e.oathtool(otp.EncodeSecret(u.secret))); stepOutcome(v) != protocol.OutcomeAccept {
			t.Errorf("%s: oathtool's code for the imported secret: %+v", u.name, v)
		}
	}
	active, after := 0, ""
	for {
		resp, err := e.client.Do(t.Context(), &protocol.Request{Op: protocol.OpAdminList, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range resp.Users {
			if st.State == protocol.StateActive {
				active++
			}
		}
		if after = resp.Next; after == "" {
			break
		}
	}
	if active != len(users) {
		t.Errorf("otpgated lists %d active users, want %d", active, len(users))
	}
}

// noTerminalOutput fails if out, captured through pipes, holds anything
// of the terminal-only progress display.
func noTerminalOutput(t *testing.T, out string) {
	t.Helper()
	if strings.ContainsAny(out, "\r\x1b") || strings.Contains(out, " users with otpgated") || strings.Contains(out, " users in ") {
		t.Errorf("progress display without a terminal:\n%.2000s", out)
	}
}

// TestCLIImportLargeUsersfile imports a pam_oath usersfile of 2 000 users
// (about 120 KB) in one command, with the real otpgated: first a dry run
// in a real terminal (tmux), which ends with the progress summary, then
// the import through pipes, which prints no progress; oathtool's codes
// are accepted for a sample of the users.
func TestCLIImportLargeUsersfile(t *testing.T) {
	e := newCLIEnv(t)
	users := addBulkUsers(t, e, "ou", largeImportUsers, 200000)
	var file strings.Builder
	file.WriteString("# pam_oath usersfile of a large site\n")
	for _, u := range users {
		fmt.Fprintf(&file, "HOTP/T30 %s - %s 0 123456 2026-01-01T00:00:00L\n", u.name, hex.EncodeToString(u.secret))
	}
	if file.Len() <= 64<<10 {
		t.Fatalf("the usersfile is only %d bytes", file.Len())
	}
	e.c.WriteFile(t, "/etc/users.oath", []byte(file.String()), 0o600)

	// The pane's raw output goes to a file (tmux pipe-pane) from before
	// otpgate starts: the command waits for /tmp/go.
	pane := &tmuxPane{e: e, user: "root"}
	pane.tmux("new-session", "-d", "-s", "cli", "-x", "200", "-y", "50",
		"while [ ! -e /tmp/go ]; do sleep 0.05; done; "+e.bin+" admin import --from oath /etc/users.oath --dry-run; echo EXIT=$?; sleep 600")
	pane.tmux("pipe-pane", "-t", "cli", "-o", "cat >> /tmp/pane.raw")
	e.c.WriteFile(t, "/tmp/go", nil, 0o644)
	screen := pane.waitFor("EXIT=")
	// What the terminal received: each status line drawn in place, the
	// first of each pass at once, and erased before a line printed above.
	raw := string(e.c.ReadFile(t, "/tmp/pane.raw"))
	for _, want := range []string{
		"\rread 1 users\x1b[K",
		"\rchecked 1 of 2 000 users with otpgated\x1b[K",
		"\rwould import 1 of 2 000 users\x1b[K",
		"\r\x1b[KWould import ou000001 from /etc/users.oath:3",
		"\rwould import 2 000 of 2 000 users in ",
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("the terminal did not receive %q (%d bytes received)", want, len(raw))
		}
	}
	last := users[len(users)-1].name
	for _, want := range []string{
		fmt.Sprintf("Would import %s from /etc/users.oath:%d: SHA1, 6 digits, 30 s, 0 recovery code(s)\n", last, len(users)+1),
		"would import 2 000 of 2 000 users in ",
		"Dry run: 2000 user(s) checked, nothing imported.\nEXIT=0",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("the terminal does not show %q:\n%s", want, screen)
		}
	}
	// The status line was erased before each line printed above it.
	for _, line := range strings.Split(screen, "\n") {
		if strings.Contains(line, "Would import ") && strings.Contains(line, " users") {
			t.Errorf("a status line ran into an output line: %q", line)
		}
	}
	if st := e.status(users[0].name); st.State != protocol.StateNone {
		t.Fatalf("--dry-run imported %s: %q", users[0].name, st.State)
	}

	out, code := e.otpgate("root", "", nil, "admin", "import", "--from", "oath", "/etc/users.oath")
	if code != 0 || !strings.Contains(out, "Imported 2000 user(s).") {
		t.Fatalf("import: exit %d\n%.3000s", code, out)
	}
	noTerminalOutput(t, out)
	if n := strings.Count(out, "\nImported "+"ou"); n != len(users)-1 { // the first line has no "\n" before it
		t.Errorf("%d per-user lines after the first, want %d", n, len(users)-1)
	}
	checkSample(t, e, users)
}

// TestCLIImportAllUsersManyAccounts imports --from google-authenticator
// --all-users on a host with 2 000 accounts that have a
// ~/.google_authenticator (/etc/passwd about 100 KB), in one command;
// every 100th has scratch codes.
func TestCLIImportAllUsersManyAccounts(t *testing.T) {
	e := newCLIEnv(t)
	users := addBulkUsers(t, e, "gu", largeImportUsers, 300000)
	if st, err := os.Stat(e.c.Path("/etc/passwd")); err != nil || st.Size() <= 64<<10 {
		t.Fatalf("/etc/passwd: %v, %v", st, err)
	}
	for i, u := range users {
		data := otp.EncodeSecret(u.secret) + "\n\" WINDOW_SIZE 3\n\" TOTP_AUTH\n"
		if i%100 == 0 {
			// Scratch codes for a few: otpgated hashes each with argon2id
			// (a few ms), which would make the test slow for all.
			data += fmt.Sprintf("%08d\n%08d\n", 10000000+i, 20000000+i)
		}
		p := e.c.Path(path.Join(u.home, ".google_authenticator"))
		if err := os.WriteFile(p, []byte(data), 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, u.uid, u.uid); err != nil {
			t.Fatal(err)
		}
	}
	out, code := e.otpgate("root", "", nil, "admin", "import", "--from", "google-authenticator", "--all-users")
	if code != 0 || !strings.Contains(out, "Imported 2000 user(s).") {
		t.Fatalf("import: exit %d\n%.3000s", code, out)
	}
	noTerminalOutput(t, out)
	checkSample(t, e, users)
	mid := users[len(users)/2]
	if v := e.verify(mid.name, fmt.Sprintf("%08d", 20000000+len(users)/2)); stepOutcome(v) != protocol.OutcomeAccept || recoveryLeft(v) < 0 {
		t.Errorf("%s's second scratch code: %+v", mid.name, v)
	}
}
