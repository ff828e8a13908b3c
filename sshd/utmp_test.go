//go:build root

package sshd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoginRecord writes a login and a logout to files of its own and reads
// them back with the system's who and last.
func TestLoginRecord(t *testing.T) {
	for _, tool := range []string{"who", "last"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s (util-linux, coreutils)", tool)
		}
	}
	dir := t.TempDir()
	files := loginFiles{UTMP: filepath.Join(dir, "utmp"), WTMP: filepath.Join(dir, "wtmp"), Lastlog: filepath.Join(dir, "lastlog")}
	for _, f := range []string{files.UTMP, files.WTMP, files.Lastlog} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &loginRecord{Files: files, User: "alice", UID: 3, TTY: "/dev/pts/7", Host: "192.0.2.9", PID: int32(os.Getpid())}
	if err := r.login(); err != nil {
		t.Fatal(err)
	}
	who, err := exec.Command("who", files.UTMP).Output()
	if err != nil || !strings.HasPrefix(string(who), "alice    pts/7") || !strings.Contains(string(who), "(192.0.2.9)") {
		t.Errorf("who after login: %v\n%s", err, who)
	}
	ll, err := os.ReadFile(files.Lastlog)
	if err != nil || len(ll) != 4*292 || !strings.Contains(string(ll[3*292:]), "pts/7") || !strings.Contains(string(ll[3*292:]), "192.0.2.9") {
		t.Errorf("lastlog: %v, %d bytes, want uid 3's 292-byte entry naming pts/7 and 192.0.2.9", err, len(ll))
	}
	if err := r.logout(); err != nil {
		t.Fatal(err)
	}
	if who, err := exec.Command("who", files.UTMP).Output(); err != nil || len(who) != 0 {
		t.Errorf("who after logout: %v\n%s", err, who)
	}
	last, err := exec.Command("last", "-w", "-i", "-f", files.WTMP).Output()
	if err != nil || !strings.HasPrefix(string(last), "alice    pts/7        192.0.2.9") || strings.Contains(string(last), "still logged in") {
		t.Errorf("last after logout: %v\n%s", err, last)
	}
	// The lines of the session are two: the login and the logout.
	if fi, err := os.Stat(files.WTMP); err != nil || fi.Size() != 2*384 {
		t.Errorf("wtmp: %v, want two 384-byte records", err)
	}
	// Without a utmp file the login is reported, not silently lost.
	r.Files.UTMP = filepath.Join(dir, "missing")
	if err := r.login(); err == nil {
		t.Error("login without a utmp file reported no error")
	}
}

func TestMergeEnv(t *testing.T) {
	env := []string{"USER=alice", "HOME=/home/alice", "PATH=/usr/bin", "SSH_CONNECTION=a b c d", "LANG=C"}
	got := mergeEnv(env, map[string]string{
		"PATH": "/opt/bin:/usr/bin", "USER": "mallory", "HOME": "/", "SSH_CONNECTION": "x",
		"SSH_AUTH_SOCK": "/tmp/evil", "LANG": "de_DE.UTF-8", "EDITOR": "vi", "BAD=NAME": "x",
	})
	want := []string{"USER=alice", "HOME=/home/alice", "SSH_CONNECTION=a b c d", "EDITOR=vi", "LANG=de_DE.UTF-8", "PATH=/opt/bin:/usr/bin"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("mergeEnv:\n got %q\nwant %q", got, want)
	}
}
