package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
	"github.com/otpgate/otpgate/internal/version"
)

// testApp returns an app with piped stdin, captured output, and a socket
// path where no daemon listens.
func testApp(t *testing.T, uid int, stdin string) (*app, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var out, errb bytes.Buffer
	sock := filepath.Join(t.TempDir(), "no-daemon.sock")
	a := &app{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		inFd: -1, outFd: -1, uid: uid,
		getenv: func(k string) string {
			if k == "OTPGATE_SOCKET" {
				return sock
			}
			return ""
		},
		now: func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
	}
	return a, &out, &errb
}

func TestExitCodes(t *testing.T) {
	oathBad := filepath.Join("..", "..", "internal", "importer", "testdata", "oath", "bad.oath")
	tests := []struct {
		name     string
		uid      int
		args     []string
		want     int
		stderr   string
		stdout   string
		noStderr bool
	}{
		{name: "no command", args: nil, want: exitUsage, stderr: "no command given"},
		{name: "unknown command", args: []string{"frobnicate"}, want: exitUsage, stderr: `unknown command "frobnicate"`},
		{name: "unknown flag", args: []string{"status", "--yaml"}, want: exitUsage, stderr: "flag provided but not defined: -yaml"},
		{name: "enroll takes no arguments", args: []string{"enroll", "bob"}, want: exitUsage, stderr: `enroll takes no arguments, got "bob"`},
		{name: "qr format", args: []string{"enroll", "--qr=jpg", "x"}, want: exitUsage, stderr: `--qr must be png (with a FILE), not "jpg"`},
		{name: "qr png needs a file", args: []string{"enroll", "--qr=png"}, want: exitUsage, stderr: "--qr=png needs a FILE"},
		{name: "qr png and no-qr", args: []string{"enroll", "--no-qr", "--qr=png", "f.png"}, want: exitUsage, stderr: "exclude each other"},
		{name: "admin without command", uid: 0, args: []string{"admin"}, want: exitUsage, stderr: "admin needs a command"},
		{name: "admin show needs a user", args: []string{"admin", "show"}, want: exitUsage, stderr: "admin show needs USER"},
		{name: "admin list takes no user", args: []string{"admin", "list", "bob"}, want: exitUsage, stderr: "admin list takes no arguments"},
		{name: "import without --from", args: []string{"admin", "import"}, want: exitUsage, stderr: "--from is required"},
		{name: "import unknown source", args: []string{"admin", "import", "--from", "authy"}, want: exitUsage, stderr: `--from must be google-authenticator or oath, not "authy"`},
		{name: "import ga needs users", args: []string{"admin", "import", "--from", "google-authenticator"}, want: exitUsage, stderr: "needs either --user USER or --all-users"},
		{name: "import ga not both", args: []string{"admin", "import", "--from", "google-authenticator", "--user", "a", "--all-users"}, want: exitUsage, stderr: "needs either"},
		{name: "import oath needs a file", args: []string{"admin", "import", "--from", "oath"}, want: exitUsage, stderr: "exactly one FILE"},
		{name: "import oath with --user", args: []string{"admin", "import", "--from", "oath", "--user", "a", "f"}, want: exitUsage, stderr: "apply to google-authenticator"},
		{name: "migrate-store is otpgated's", uid: 0, args: []string{"admin", "migrate-store", "--from", "bolt"}, want: exitUsage, stderr: "run 'otpgated -migrate-store bolt'"},
		{name: "no help for migrate-store", args: []string{"help", "admin", "migrate-store"}, want: exitUsage, stderr: `no help for "admin migrate-store"`},
		{name: "help", args: []string{"help"}, want: exitOK, stdout: "Usage: otpgate [--socket PATH] COMMAND", noStderr: true},
		{name: "help for a command", args: []string{"help", "admin", "import"}, want: exitOK, stdout: "All or nothing", noStderr: true},
		{name: "dash h", args: []string{"status", "-h"}, want: exitOK, stdout: "Usage: otpgate status [--json]", noStderr: true},
		{name: "help unknown topic", args: []string{"help", "nope"}, want: exitUsage, stderr: `no help for "nope"`},
		{name: "help with extra words", args: []string{"help", "status", "extra"}, want: exitUsage, stderr: `no help for "status extra"`},
		{name: "help for help", args: []string{"help", "--help"}, want: exitOK, stdout: "Usage: otpgate help [COMMAND]", noStderr: true},
		{name: "version", args: []string{"version"}, want: exitOK, stdout: "otpgate ", noStderr: true},
		{name: "version help", args: []string{"version", "--help"}, want: exitOK, stdout: "Usage: otpgate version", noStderr: true},
		{name: "version extra argument", args: []string{"version", "now"}, want: exitUsage, stderr: "version takes no arguments"},
		{name: "status without daemon", uid: os.Getuid(), args: []string{"status"}, want: exitUnavailable, stderr: "no-daemon.sock: there is no such file\n"},
		{name: "admin list without daemon", uid: 0, args: []string{"admin", "list"}, want: exitUnavailable, stderr: "nothing answers at "},
		{name: "admin as a user is refused before asking", uid: 1000, args: []string{"admin", "reset", "alice"}, want: exitPermission, stderr: "admin commands need root: run with sudo"},
		{name: "admin import as a user", uid: 1000, args: []string{"admin", "import", "--from", "oath", oathBad}, want: exitPermission, stderr: "admin commands need root"},
		{name: "bad usersfile imports nothing", uid: 0, args: []string{"admin", "import", "--from", "oath", "--dry-run", oathBad}, want: exitFailure,
			stderr: "bad.oath:2: token type HOTP is counter-based"},
		{name: "unknown user for ga import", uid: 0, args: []string{"admin", "import", "--from", "google-authenticator", "--user", "no-such-user-xyz"}, want: exitFailure,
			stderr: "--user no-such-user-xyz: no such user on this host"},
		{name: "admin enroll of an unknown user", uid: 0, args: []string{"admin", "enroll", "no-such-user-xyz"}, want: exitFailure, stderr: "no such user: no-such-user-xyz\n"},
		{name: "a uid without an account", uid: 2147480000, args: []string{"status"}, want: exitFailure, stderr: "cannot find the account of uid 2147480000: "},
		{name: "flags after positional", uid: 1000, args: []string{"admin", "show", "alice", "--json"}, want: exitPermission, stderr: "need root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, out, errb := testApp(t, tt.uid, "")
			got := a.run(context.Background(), tt.args)
			if got != tt.want {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", got, tt.want, out, errb)
			}
			if !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.stderr, errb)
			}
			if !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout does not contain %q:\n%s", tt.stdout, out)
			}
			if tt.noStderr && errb.Len() > 0 {
				t.Errorf("unexpected stderr:\n%s", errb)
			}
		})
	}
}

func TestBadUsersfileListsEveryProblem(t *testing.T) {
	a, _, errb := testApp(t, 0, "")
	path := filepath.Join("..", "..", "internal", "importer", "testdata", "oath", "bad.oath")
	if code := a.run(context.Background(), []string{"admin", "import", "--from", "oath", path}); code != exitFailure {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if last := lines[len(lines)-1]; last != "otpgate: nothing imported: 10 problem(s)" {
		t.Errorf("last line %q", last)
	}
	if strings.Contains(errb.String(), "3132333435") {
		t.Errorf("a secret reached stderr:\n%s", errb)
	}
}

// TestUnreachableSocket: when nothing answers at the socket, otpgate says
// so with the path that was used and why; it suggests starting otpgated
// only for the default socket, and never claims that otpgated is not
// running when the user named another path.
func TestUnreachableSocket(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope")
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	tests := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"--socket to a missing path", []string{"--socket", missing, "status"}, "", "otpgate: nothing answers at " + missing + ": there is no such file\n"},
		{"--socket after the command", []string{"status", "--socket=" + missing}, "", "otpgate: nothing answers at " + missing + ": there is no such file\n"},
		{"$OTPGATE_SOCKET", []string{"status"}, missing, "otpgate: nothing answers at " + missing + ": there is no such file\n"},
		{"a regular file", []string{"--socket", file, "status"}, "", "otpgate: nothing answers at " + file + ": it is not a socket\n"},
		{"a socket nobody listens on", []string{"--socket", stale, "status"}, "", "otpgate: nothing answers at " + stale + ": no process listens on the socket\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, out, errb := testApp(t, 1000, "")
			a.getenv = func(k string) string {
				if k == "OTPGATE_SOCKET" {
					return tt.env
				}
				return ""
			}
			if code := a.run(context.Background(), tt.args); code != exitUnavailable {
				t.Errorf("exit %d, want %d", code, exitUnavailable)
			}
			if errb.String() != tt.want {
				t.Errorf("stderr %q, want %q (stdout %q)", errb, tt.want, out)
			}
		})
	}
	// The default socket, and only it, gets the hint.
	got := unreachable(missing, true, errors.New("unreachable"))
	want := []string{"nothing answers at " + missing + ": there is no such file", "is otpgated running? Start it with: systemctl start otpgated"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("default socket: %q, want %q", got, want)
	}
}

func TestVersionFromLdflags(t *testing.T) {
	old := version.Version
	t.Cleanup(func() { version.Version = old })
	version.Version = "1.2.3-test"
	a, out, _ := testApp(t, 0, "")
	if code := a.run(context.Background(), []string{"version"}); code != 0 || out.String() != "otpgate 1.2.3-test\n" {
		t.Errorf("exit %d, output %q", code, out)
	}
}

func TestSocketFlagWins(t *testing.T) {
	a, _, errb := testApp(t, os.Getuid(), "")
	flagSock := filepath.Join(t.TempDir(), "from-flag.sock")
	a.run(context.Background(), []string{"--socket", flagSock, "status"})
	if !strings.Contains(errb.String(), flagSock) {
		t.Errorf("the --socket path is not the one dialled:\n%s", errb)
	}
	a, _, errb = testApp(t, os.Getuid(), "")
	a.run(context.Background(), []string{"status", "--socket=" + flagSock})
	if !strings.Contains(errb.String(), flagSock) {
		t.Errorf("a subcommand's --socket is not used:\n%s", errb)
	}
}

func TestWriteStatus(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = old })
	tests := []struct {
		name string
		st   protocol.UserStatus
		want []string
	}{
		{"active and locked", protocol.UserStatus{
			User: "alice", State: protocol.StateActive, Algorithm: "SHA1", Digits: 6, Period: 30, RecoveryRemaining: 10,
			Failures: 5, LockedUntil: now.Add(3*time.Minute + 10*time.Second), EnrolledAt: now.Add(-24 * time.Hour),
		}, []string{
			"User:             alice",
			"Two-factor:       active (SHA1, 6 digits, 30 s)",
			"Code required:    yes (enrolled)",
			"Recovery codes:   10 left",
			"Failed attempts:  5",
			"Locked:           until 12:03:10 (in 4m)",
			"Enrolled:         2026-02-28 12:00:00 UTC",
		}},
		{"not enrolled, exempt", protocol.UserStatus{User: "svc", State: protocol.StateNone, Exempt: true}, []string{
			"Two-factor:       not set up (run 'otpgate enroll')", "Code required:    no (exempt by policy)", "Locked:           no",
		}},
		{"admin lock", protocol.UserStatus{User: "bob", State: protocol.StateActive, LockedByAdmin: true}, []string{
			"Locked:           yes, until an administrator runs 'otpgate admin unlock bob'",
		}},
		{"an address blocked by the per-source limit", protocol.UserStatus{
			User: "carol", State: protocol.StateActive,
			BlockedSources: []protocol.BlockedSource{{Source: "192.0.2.7", Until: now.Add(5 * time.Minute)}},
		}, []string{
			"Blocked address:  192.0.2.7 until 2026-03-01 12:05:00 UTC (too many failures from there; 'otpgate admin unlock carol' clears it)",
		}},
		{"enrolled at an SSH login, with a remembered device", protocol.UserStatus{
			User: "dave", State: protocol.StateActive, EnrolledAt: now.Add(-time.Hour),
			EnrolledVia: "login", EnrolledFrom: "192.0.2.9", EnrolledKey: "SHA256:abc",
			Remembered: []protocol.RememberedDevice{{Source: "192.0.2.9", Fingerprint: "SHA256:abc", Until: now.Add(8 * time.Hour)}},
		}, []string{
			"Enrolled:           2026-03-01 11:00:00 UTC (at an SSH login from 192.0.2.9, key SHA256:abc)",
			"Remembered device:  192.0.2.9 with key SHA256:abc until 2026-03-01 20:00:00 UTC ('otpgate forget' ends it)",
		}},
		{"enrolled at a login after a password", protocol.UserStatus{
			User: "fred", State: protocol.StateActive, EnrolledAt: now.Add(-time.Hour), EnrolledVia: "login", EnrolledFrom: "192.0.2.10",
		}, []string{
			"Enrolled:         2026-03-01 11:00:00 UTC (at a login from 192.0.2.10, after a password)",
		}},
		{"enrolled by an administrator", protocol.UserStatus{
			User: "erin", State: protocol.StateActive, EnrolledAt: now.Add(-time.Hour), EnrolledVia: "admin",
		}, []string{
			"Enrolled:         2026-03-01 11:00:00 UTC (by an administrator with 'otpgate admin enroll')",
		}},
		{"escape sequences in names are neutralised", protocol.UserStatus{User: "ev\x1b]0;pwned\x07il", State: protocol.StateNone}, []string{
			"User:             ev?]0;pwned?il",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			testutil.Must(t, writeStatus(&buf, &tt.st, now))
			for _, w := range tt.want {
				if !strings.Contains(buf.String(), w+"\n") {
					t.Errorf("missing line %q in:\n%s", w, buf.String())
				}
			}
			if strings.Contains(buf.String(), "\x1b") {
				t.Errorf("an escape character reached the output")
			}
		})
	}
}

// failingWriter fails every write, as stdout does when it is a full disk
// or a closed pipe.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestStatusOutputWriteErrors checks that status and admin list report a
// failed write to stdout instead of exiting 0 with the output lost.
func TestStatusOutputWriteErrors(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	st := protocol.UserStatus{User: "alice", State: protocol.StateActive}
	tests := []struct {
		name  string
		write func(io.Writer) error
	}{
		{"status", func(w io.Writer) error { return writeStatus(w, &st, now) }},
		{"user table", func(w io.Writer) error { return writeUserTable(w, []protocol.UserStatus{st}, now) }},
		{"empty user table", func(w io.Writer) error { return writeUserTable(w, nil, now) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.write(failingWriter{}); err == nil {
				t.Error("a failed write to stdout was not reported")
			}
		})
	}
}

func TestWriteUserTable(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = old })
	var buf bytes.Buffer
	testutil.Must(t, writeUserTable(&buf, []protocol.UserStatus{
		{User: "alice", State: "active", EnrolledVia: "login", PolicyRequires: true, RecoveryRemaining: 10, LastSuccess: now.Add(-time.Hour)},
		{User: "bartholomew", State: "pending", Failures: 2, LockedUntil: now.Add(30 * time.Second)},
	}, now))
	want := "USER         STATE    VIA    REQUIRED      RECOVERY  FAILURES  LOCKED                   LAST SUCCESS\n" +
		"alice        active   login  yes (policy)  10        0         no                       2026-03-01 11:00\n" +
		"bartholomew  pending  -      no            0         2         until 12:00:30 (in 30s)  -\n"
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	testutil.Must(t, writeUserTable(&buf, nil, now))
	if buf.String() != "No users are enrolled.\n" {
		t.Errorf("empty table: %q", buf.String())
	}
}

func TestInDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Second, "in 1s"}, {59*time.Second + time.Millisecond, "in 60s"}, {time.Minute, "in 1m"},
		{3*time.Minute + time.Second, "in 4m"}, {time.Hour, "in 1h"}, {47 * time.Hour, "in 47h"}, {72 * time.Hour, "in 3d"},
	}
	for _, tt := range tests {
		if got := inDuration(tt.d); got != tt.want {
			t.Errorf("inDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestGroupAndClean(t *testing.T) {
	if g := group("JBSWY3DPEHPK3PXPJB"); g != "JBSW Y3DP EHPK 3PXP JB" {
		t.Errorf("group: %q", g)
	}
	if c := clean("a\x1b[2Jb\x9bc\td\n"); c != "a?[2Jb?c\td\n" {
		t.Errorf("clean: %q", c)
	}
}
