//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
)

// The commands of docs/quickstart.md, docs/recovery.md and docs/migrating.md
// that TestDocsRecovery and TestDocsMigrating run literally (without
// "sudo "; root runs them).
const (
	docEnroll        = "otpgate enroll"
	docStatus        = "otpgate status"
	docRecoveryCodes = "otpgate recovery-codes"
	docAdminList     = "otpgate admin list"
	docAdminShow     = "otpgate admin show alice"
	docAdminUnlock   = "otpgate admin unlock alice"
	docAdminReset    = "otpgate admin reset alice"
	docAdminEnroll   = "otpgate admin enroll alice --force"
	docCheckConfig   = "otpgated -check-config -config /etc/otpgate/config.toml"
	docSSHDTest      = "sshd -t"
	docGAUserDry     = "otpgate admin import --from google-authenticator --user alice --dry-run"
	docGAUser        = "otpgate admin import --from google-authenticator --user alice"
	docGAAllDry      = "otpgate admin import --from google-authenticator --all-users --dry-run"
	docGAAll         = "otpgate admin import --from google-authenticator --all-users"
	docOathDry       = "otpgate admin import --from oath /etc/users.oath --dry-run"
	docOath          = "otpgate admin import --from oath /etc/users.oath"
)

// docCommands maps every command line of the docs' ```sh blocks to what
// runs it. A command added to the docs without a test fails
// TestDocsCommandsAreTested.
var docCommands = map[string]string{
	"make demo":                       "TestDemoCheck (otpgate-demo -check, which make demo runs)",
	"make deb":                        "TestDeb",
	"apt install ./bin/otpgate_*.deb": "TestDeb (apt-get install of the built package)",
	"make install":                    "TestMakeInstall",
	"systemctl enable --now otpgated": "not run: no systemd in the test containers; TestMakeInstall and TestDeb run systemd-analyze verify on the unit",
	"systemctl reload ssh":            "not run: no systemd in the test containers",
	"systemctl status otpgated":       "not run: no systemd in the test containers",
	"journalctl -u otpgated -n 50":    "not run: no systemd in the test containers",
	"systemctl restart otpgated":      "not run: no systemd in the test containers",
	docEnroll:                         "TestDocsRecovery",
	docStatus:                         "TestDocsRecovery",
	docRecoveryCodes:                  "TestDocsRecovery",
	docAdminList:                      "TestDocsMigrating",
	docAdminShow:                      "TestDocsRecovery",
	docAdminUnlock:                    "TestDocsRecovery",
	docAdminReset:                     "TestDocsRecovery",
	docAdminEnroll:                    "TestDocsRecovery",
	docCheckConfig:                    "TestDocsRecovery, TestMakeInstall, TestDeb",
	docSSHDTest:                       "TestDocsRecovery (the quickstart's sshd_config lines)",
	"otpgate setup sshd":              "TestSetup (as root with SUDO_USER set; the dry run)",
	"otpgate setup sshd --apply":      "TestSetup",
	"otpgate setup sudo --apply":      "TestSetup",
	docGAUserDry:                      "TestDocsMigrating",
	docGAUser:                         "TestDocsMigrating",
	docGAAllDry:                       "TestDocsMigrating",
	docGAAll:                          "TestDocsMigrating",
	docOathDry:                        "TestDocsMigrating",
	docOath:                           "TestDocsMigrating",
}

// docShellLines returns the command lines of the ```sh blocks of a doc,
// without a leading "sudo ".
func docShellLines(t *testing.T, doc string) []string {
	t.Helper()
	lines := docShellLinesAsWritten(t, doc)
	for i, line := range lines {
		lines[i] = strings.TrimPrefix(line, "sudo ")
	}
	return lines
}

// docShellLinesAsWritten returns the command lines of the ```sh blocks of
// a doc as written.
func docShellLinesAsWritten(t *testing.T, doc string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(container.RepoRoot(), "docs", doc))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in && strings.TrimSpace(line) != "":
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	return lines
}

// TestDocsCommandsAreTested fails when a doc shows a command that no test
// runs.
func TestDocsCommandsAreTested(t *testing.T) {
	for _, doc := range []string{"quickstart.md", "recovery.md", "migrating.md"} {
		lines := docShellLines(t, doc)
		if len(lines) == 0 {
			t.Errorf("docs/%s has no ```sh block", doc)
		}
		for _, line := range lines {
			if _, ok := docCommands[line]; !ok {
				t.Errorf("docs/%s: %q is run by no test: run it in integration/docs_test.go and add it to docCommands", doc, line)
			}
		}
	}
}

// workflowsCommands maps every command line of the ```sh blocks of
// docs/workflows.md, as written (its sudo lines are the recipe), to the
// test that runs it.
var workflowsCommands = map[string]string{
	wfScpUp:        "TestWorkflowsOpenSSH, TestWorkflowsOtpgateSSHD",
	wfScpDown:      "TestWorkflowsOpenSSH, TestWorkflowsOtpgateSSHD",
	wfSFTP:         "TestWorkflowsOpenSSH, TestWorkflowsOtpgateSSHD",
	wfRsync:        "TestWorkflowsOpenSSH, TestWorkflowsOtpgateSSHD",
	wfGitClone:     "TestWorkflowsOpenSSH, TestWorkflowsOtpgateSSHD",
	wfOpenMaster:   "TestWorkflowsOpenSSH, TestWorkflowsOtpgateSSHD",
	wfCheckMaster:  "TestWorkflowsOpenSSH, TestWorkflowsOtpgateSSHD",
	wfExitMaster:   "TestWorkflowsOpenSSH, TestWorkflowsOtpgateSSHD",
	wfAnsiblePing:  "TestWorkflowsOpenSSH, TestWorkflowsOtpgateSSHD (as the person and as the service account)",
	wfAnsibleID:    "TestWorkflowsOpenSSH, TestWorkflowsOtpgateSSHD",
	wfJump:         "TestWorkflowsOpenSSH",
	wfSudoValidate: "TestWorkflowsSudo",
	wfSudoID:       "TestWorkflowsSudo",
	wfSudoKill:     "TestWorkflowsSudo",
}

// TestDocsWorkflowsCommandsAreTested fails when docs/workflows.md shows a
// command that no test runs.
func TestDocsWorkflowsCommandsAreTested(t *testing.T) {
	lines := docShellLinesAsWritten(t, "workflows.md")
	if len(lines) == 0 {
		t.Error("docs/workflows.md has no ```sh block")
	}
	for _, line := range lines {
		if _, ok := workflowsCommands[line]; !ok {
			t.Errorf("docs/workflows.md: %q is run by no test: run it in integration/workflows_test.go and add it to workflowsCommands", line)
		}
	}
}

// docEnv is a pamEnv with otpgate and otpgated on the PATH, as installed.
type docEnv struct {
	*pamEnv
}

func newDocEnv(t *testing.T) *docEnv {
	t.Helper()
	e := &docEnv{newPAMEnv(t)}
	e.c.Run(t, "ln", "-s", e.bin, "/usr/local/bin/otpgate")
	e.c.Run(t, "ln", "-s", e.otpgatedBin, "/usr/local/sbin/otpgated")
	return e
}

// docPrompt is one question of a dialogue and the answer to give (computed
// when the question appears, from the output so far).
type docPrompt struct {
	waitFor string
	answer  func(out string) string
}

// dialogue runs a doc command line with sh as user ("root" for root),
// answers the prompts in order, closes stdin and returns the output and
// exit code.
func (e *docEnv) dialogue(user, line string, prompts ...docPrompt) (string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.c.CommandContext(ctx, "sh", "-c", line)
	if user != "root" {
		cmd = e.c.CommandAsContext(ctx, user, "sh", "-c", line)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	var out bytes.Buffer
	r := bufio.NewReader(io.TeeReader(pr, &out))
	for _, p := range prompts {
		if err := docReadUntil(r, p.waitFor); err != nil {
			io.Copy(io.Discard, r)
			e.t.Fatalf("%s as %s: %v\n%s", line, user, err, out.String())
		}
		if _, err := io.WriteString(stdin, p.answer(out.String())+"\n"); err != nil {
			e.t.Fatalf("%s as %s: %v\n%s", line, user, err, out.String())
		}
	}
	stdin.Close()
	io.Copy(io.Discard, r)
	err = <-done
	code := 0
	if err != nil {
		code = cmd.ProcessState.ExitCode()
	}
	return out.String(), code
}

// mustRun is dialogue without prompts that must exit 0.
func (e *docEnv) mustRun(user, line string, prompts ...docPrompt) string {
	e.t.Helper()
	out, code := e.dialogue(user, line, prompts...)
	if code != 0 {
		e.t.Fatalf("%s as %s: exit %d\n%s", line, user, code, out)
	}
	return out
}

// docReadUntil reads r until the text read so far on the current line
// contains want.
func docReadUntil(r *bufio.Reader, want string) error {
	var line strings.Builder
	for {
		b, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("output ended before %q", want)
		}
		if b == '\n' {
			line.Reset()
			continue
		}
		line.WriteByte(b)
		if strings.Contains(line.String(), want) {
			return nil
		}
	}
}

// keyFrom returns the base32 key of the last "Key:" line in out.
func (e *docEnv) keyFrom(out string) string {
	e.t.Helper()
	key := ""
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Key:"); ok {
			key = strings.ReplaceAll(strings.TrimSpace(v), " ", "")
		}
	}
	if key == "" {
		e.t.Fatalf("no Key: line in:\n%s", out)
	}
	return key
}

// totp is the code of a base32 secret at now+offset steps, from oathtool.
func (e *docEnv) totp(secret string, offset int) string {
	e.t.Helper()
	return e.oathtool(secret, fmt.Sprintf("--now=@%d", time.Now().Unix()+int64(offset*30)))
}

// userStatus asks otpgated for user's status.
func (e *docEnv) userStatus(user string) protocol.UserStatus {
	e.t.Helper()
	return *e.do(&protocol.Request{Op: protocol.OpStatus, User: user}).Status
}

// TestDocsRecovery runs docs/recovery.md (and the quickstart's enroll,
// status, -check-config and sshd -t) in a container.
func TestDocsRecovery(t *testing.T) {
	e := newDocEnv(t)
	e.enroll("alice", "12345678")

	t.Run("lost phone with a recovery code: enroll again", func(t *testing.T) {
		out := e.mustRun("alice", docEnroll,
			docPrompt{"(or a recovery code):", func(string) string { return "12345678" }},
			docPrompt{"Enter the code shown in your app to finish:", func(out string) string {
				e.secrets["alice"] = e.keyFrom(out)
				return e.totp(e.secrets["alice"], 0)
			}})
		if !strings.Contains(out, "Two-factor authentication is now active for alice.") {
			t.Fatalf("no activation:\n%s", out)
		}
		out = e.mustRun("alice", docRecoveryCodes,
			docPrompt{"Enter a current code", func(string) string { return e.totp(e.secrets["alice"], 1) }})
		if !strings.Contains(out, "Your old recovery codes no longer work.") {
			t.Errorf("recovery-codes output:\n%s", out)
		}
		if out := e.mustRun("alice", docStatus); !strings.Contains(out, "10 left") {
			t.Errorf("status after new recovery codes:\n%s", out)
		}
	})

	t.Run("locked out: show and unlock", func(t *testing.T) {
		e.lock("alice")
		if out := e.mustRun("root", docAdminShow); !strings.Contains(strings.ToLower(out), "locked") {
			t.Errorf("admin show of a locked user does not say locked:\n%s", out)
		}
		e.mustRun("root", docAdminUnlock)
		if st := e.userStatus("alice"); st.Failures != 0 || !st.LockedUntil.IsZero() {
			t.Errorf("after unlock: %+v", st)
		}
	})

	t.Run("no recovery code: admin enroll --force, then reset", func(t *testing.T) {
		out := e.mustRun("root", docAdminEnroll+" --no-qr",
			docPrompt{"Enter the code shown in your app to finish:", func(out string) string {
				e.secrets["alice"] = e.keyFrom(out)
				return e.totp(e.secrets["alice"], 0)
			}})
		if !strings.Contains(out, "now active for alice") {
			t.Fatalf("admin enroll --force:\n%s", out)
		}
		e.mustRun("root", docAdminReset)
		if st := e.userStatus("alice"); st.State != protocol.StateNone {
			t.Errorf("state after reset %q, want none", st.State)
		}
	})

	t.Run("daemon down: check the configuration", func(t *testing.T) {
		e.mustRun("root", docCheckConfig)
		e.c.WriteFile(t, "/tmp/broken.toml", []byte("[totp]\nskew = 99\n"), 0o644)
		if out, code := e.dialogue("root", strings.Replace(docCheckConfig, "/etc/otpgate/config.toml", "/tmp/broken.toml", 1)); code == 0 || !strings.Contains(out, "skew") {
			t.Errorf("-check-config of a broken file: exit %d\n%s", code, out)
		}
	})

	t.Run("quickstart sshd_config passes sshd -t", func(t *testing.T) {
		// The ```text block of docs/quickstart.md that follows "sshd_config".
		data, err := os.ReadFile(filepath.Join(container.RepoRoot(), "docs", "quickstart.md"))
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(data), "```text\n")
		block, _, _ := strings.Cut(rest, "```")
		if !strings.Contains(block, "AuthenticationMethods publickey,keyboard-interactive") {
			t.Fatalf("unexpected first text block:\n%s", block)
		}
		cfg := string(e.c.ReadFile(t, "/etc/ssh/sshd_config"))
		e.c.WriteFile(t, "/etc/ssh/sshd_config", []byte(block+cfg), 0o644)
		e.c.MkdirAll(t, "/run/sshd", 0o755)
		e.c.Run(t, "ssh-keygen", "-A")
		e.mustRun("root", docSSHDTest)
	})
}

// TestDocsMigrating runs docs/migrating.md: imports from
// ~/.google_authenticator files and a pam_oath usersfile, after which the
// users' existing apps (oathtool here) and scratch codes work.
func TestDocsMigrating(t *testing.T) {
	e := newDocEnv(t)
	newSecret := func(n int) []byte {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding)
	gaFile := func(user string, secret []byte, scratch string) {
		e.addUser(user)
		p := "/home/" + user + "/.google_authenticator"
		body := b32.EncodeToString(secret) + "\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n" + scratch + "\n"
		e.c.WriteFile(t, p, []byte(body), 0o400)
		e.c.Chown(t, p, user)
	}
	alice, carol, bob := newSecret(20), newSecret(20), newSecret(20)
	gaFile("alice", alice, "11223344")
	e.addUser("bob")
	e.c.WriteFile(t, "/etc/users.oath", []byte("# pam_oath usersfile\nHOTP/T30 bob - "+hex.EncodeToString(bob)+"\n"), 0o600)

	accepts := func(user string, secret []byte) {
		t.Helper()
		code := e.totp(b32.EncodeToString(secret), 0)
		v := e.login(protocol.Request{User: user, Service: "docs-test"}, code)
		if stepOutcome(v) != protocol.OutcomeAccept {
			t.Errorf("%s's existing app code after the import: %+v", user, v)
		}
	}

	out := e.mustRun("root", docGAUserDry)
	if st := e.userStatus("alice"); st.State != protocol.StateNone {
		t.Fatalf("--dry-run imported alice:\n%s", out)
	}
	e.mustRun("root", docGAUser)
	accepts("alice", alice)
	v := e.login(protocol.Request{User: "alice", Service: "docs-test"}, "11223344")
	if recoveryLeft(v) < 0 {
		t.Errorf("alice's scratch code as a recovery code: %+v", v)
	}

	// Step 4 of the plan: the old file goes; then another user's is found
	// by --all-users. Accounts without the file must be skipped, whatever
	// their home: on stock Debian 12 the account mail has the home
	// /var/mail, mode 2775 root:mail, and no file.
	e.c.Run(t, "rm", "/home/alice/.google_authenticator")
	gaFile("carol", carol, "55667788")
	e.mustRun("root", docGAAllDry)
	if st := e.userStatus("carol"); st.State != protocol.StateNone {
		t.Fatal("--all-users --dry-run imported carol")
	}
	e.mustRun("root", docGAAll)
	accepts("carol", carol)

	e.mustRun("root", docOathDry)
	if st := e.userStatus("bob"); st.State != protocol.StateNone {
		t.Fatal("oath --dry-run imported bob")
	}
	e.mustRun("root", docOath)
	accepts("bob", bob)

	list := e.mustRun("root", docAdminList)
	for _, u := range []string{"alice", "bob", "carol"} {
		if !strings.Contains(list, u) {
			t.Errorf("admin list lacks %s:\n%s", u, list)
		}
	}
}
