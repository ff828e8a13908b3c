//go:build integration

package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
)

// preDialogueCommit is the last commit whose PAM module and otpgate-sshd
// log in with check and verify, before the login dialogue.
const preDialogueCommit = "de3060d"

// buildOldClients builds, from the repository's history, the PAM module's
// Go library and otpgate-sshd as they were at preDialogueCommit, and
// returns the directory that holds them. It fails loudly without git or
// without that commit.
func buildOldClients(t *testing.T) string {
	t.Helper()
	container.Require(t, "git", "tar", "make", "go", "gcc")
	repo := container.RepoRoot()
	if repo == "" {
		t.Fatal("repository root not found")
	}
	if out, err := exec.Command("git", "-C", repo, "cat-file", "-e", preDialogueCommit+"^{commit}").CombinedOutput(); err != nil {
		t.Fatalf("this test builds the clients of commit %s from the repository's history, which this checkout lacks "+
			"(a shallow clone or an export: clone with the history, or git fetch --unshallow): %v %s", preDialogueCommit, err, out)
	}
	src, bin := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, c := range []*exec.Cmd{
		exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", repo, preDialogueCommit, src),
		exec.CommandContext(ctx, "make", "-s", "-C", filepath.Join(src, "pam"), "all", "BIN="+bin),
		exec.CommandContext(ctx, "go", "build", "-C", src, "-trimpath", "-o", filepath.Join(bin, "otpgate-sshd"), "./cmd/otpgate-sshd"),
	} {
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("build the clients of %s: %s: %v\n%s", preDialogueCommit, strings.Join(c.Args, " "), err, out)
		}
	}
	return bin
}

// TestPAMOldModuleIsRefused: the Go library of a PAM module from before the
// login dialogue, loaded with golib=, asks otpgated check and verify.
// otpgated refuses them, so every login through it fails closed, for a
// right code, for a user who would need no code, and with fail=open; the
// daemon's log says to upgrade the module, and the code stays unused.
func TestPAMOldModuleIsRefused(t *testing.T) {
	old := buildOldClients(t)
	e := newPAMEnv(t)
	oldLib := pamGoLibDir + "/libpam_otpgate_go_old.so"
	lib, err := os.ReadFile(filepath.Join(old, "libpam_otpgate_go.so"))
	if err != nil {
		t.Fatal(err)
	}
	e.c.WriteFile(t, oldLib, lib, 0o644)
	e.writePAMService("otp-old", "auth required pam_otpgate.so golib="+oldLib+"\nauth required pam_permit.so\n")
	e.writePAMService("otp-old-open", "auth required pam_otpgate.so golib="+oldLib+" fail=open\nauth required pam_permit.so\n")
	e.writePAMService("otp-new", "auth required pam_otpgate.so\nauth required pam_permit.so\n")
	e.enroll("olduser")
	e.addUser("oldplain")

	code := e.code("olduser")
	for _, tt := range []struct{ service, user, input string }{
		{"otp-old", "olduser", code + "\n"},
		{"otp-old-open", "olduser", code + "\n"},
		{"otp-old", "oldplain", "\n"},
	} {
		r := e.pamtester("", tt.service, tt.user, tt.input)
		if r.exit == 0 || strings.Contains(r.out, pamOK) || !strings.Contains(r.out, pamUnavail) {
			t.Errorf("%s through the old module (%s): exit %d, want %q:\n%s", tt.user, tt.service, r.exit, pamUnavail, r.out)
		}
		if strings.Contains(r.out, pamCodePrompt) {
			t.Errorf("%s through the old module (%s) was asked for a code:\n%s", tt.user, tt.service, r.out)
		}
	}
	log := e.auditLog()
	for _, want := range []string{
		"a client sent 'check', which this otpgated no longer answers: the login was refused; upgrade pam_otpgate and otpgate-sshd to the version of otpgated",
		"reason=old_client",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("otpgated's log lacks %q:\n%s", want, log)
		}
	}
	if r := e.pamtester("", "otp-new", "olduser", code+"\n"); !strings.Contains(r.out, pamOK) {
		t.Errorf("the same code through the current module (exit %d):\n%s", r.exit, r.out)
	}
}

// TestSSHDOldServerIsRefused: otpgate-sshd from before the login dialogue
// asks otpgated check and verify after the key. otpgated refuses them, so
// the login fails closed, for an enrolled user with a right code and for a
// user who would need no code, and otpgated's log says what to upgrade.
func TestSSHDOldServerIsRefused(t *testing.T) {
	old := buildOldClients(t)
	e := newSSHDEnv(t, "")
	if err := e.server.Stop(); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(old, "otpgate-sshd"))
	if err != nil {
		t.Fatal(err)
	}
	const oldServer = "/usr/local/sbin/otpgate-sshd-old"
	e.c.WriteFile(t, oldServer, bin, 0o755)
	e.server = e.c.Background(t, oldServer, "-config", sshdConf)
	e.c.WaitForPort(t, sshdPort, 15*time.Second)
	e.addUser("olduser")
	e.enroll("olduser")
	e.addUser("oldplain")

	for user, code := range map[string]string{"olduser": e.code("olduser"), "oldplain": ""} {
		r := e.ssh(user, "id_ed25519", code, nil, "echo IN")
		if r.exit != 255 || strings.Contains(r.out, "IN") || r.prompts != "" {
			t.Errorf("%s through the old otpgate-sshd: exit %d, prompts %q:\n%s", user, r.exit, r.prompts, r.out)
		}
	}
	if want := "a client sent 'check', which this otpgated no longer answers"; !strings.Contains(e.auditLog(), want) {
		t.Errorf("otpgated's log lacks %q:\n%s", want, e.auditLog())
	}
}
