//go:build integration

package integration

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
)

// The command lines of docs/workflows.md, run literally by the tests below.
const (
	wfScpUp        = "scp notes.txt server:"
	wfScpDown      = "scp server:notes.txt notes-copy.txt"
	wfSFTP         = "sftp server"
	wfRsync        = "rsync -a site/ server:site/"
	wfGitClone     = "git clone server:repo.git"
	wfOpenMaster   = "ssh server true"
	wfCheckMaster  = "ssh -O check server"
	wfExitMaster   = "ssh -O exit server"
	wfAnsiblePing  = "ansible all -m ping"
	wfAnsibleID    = "ansible all -m command -a id"
	wfJump         = "ssh -J jump server true"
	wfSudoValidate = "sudo -v"
	wfSudoID       = "sudo id"
	wfSudoKill     = "sudo -k"
)

// The files of docs/workflows.md: each is the ```text block whose first
// line is this comment.
const (
	wfDocSSHConfig     = "# ~/.ssh/config"
	wfDocAnsibleCfg    = "# ansible.cfg"
	wfDocInventory     = "# inventory"
	wfDocPolicy        = "# /etc/otpgate/config.toml"
	wfDocDeployAnsible = "# ansible.cfg of the service account"
	// wfDeniedMessage is what docs/workflows.md says ansible prints
	// without a master.
	wfDeniedMessage = "Permission denied (keyboard-interactive)."
)

// wfPerson and wfService are the person and the service account of
// docs/workflows.md.
const (
	wfPerson  = "alice"
	wfService = "deploy"
)

// wfAskpass answers each prompt with the first line of $WF_CODES (and
// removes it) and logs the prompt to $WF_PROMPTS: a person typing the
// codes they were given, in order.
const wfAskpass = `#!/bin/sh
printf '%s\n' "$1" >> "$WF_PROMPTS"
code=$(head -n 1 "$WF_CODES")
sed -i 1d "$WF_CODES"
printf '%s\n' "$code"
`

// wfClientConfig is what precedes the documented ~/.ssh/config block: the
// test's names for the hosts ("jump" is the same server under another
// name, so that ssh -J sees two hosts), the key, and no host key prompts.
const wfClientConfig = `Host server
    HostName 127.0.0.1
Host jump
    HostName localhost
Host *
    Port %d
    IdentityFile ~/.ssh/id_ed25519
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    ConnectTimeout 10

`

// wfDocBlock returns the ```text block of docs/workflows.md whose first
// line is first, without that line.
func wfDocBlock(t *testing.T, first string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(container.RepoRoot(), "docs", "workflows.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range strings.Split(string(data), "```text\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		if head, rest, _ := strings.Cut(block, "\n"); head == first {
			return rest
		}
	}
	t.Fatalf("docs/workflows.md has no ```text block starting with %q", first)
	return ""
}

// wfPolicyLine is the exempt_users line of the documented policy block.
func wfPolicyLine(t *testing.T) string {
	t.Helper()
	block := wfDocBlock(t, wfDocPolicy)
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(line, "exempt_users") {
			if !strings.Contains(line, `"`+wfService+`"`) {
				t.Fatalf("the documented policy does not exempt %s: %q", wfService, line)
			}
			return line
		}
	}
	t.Fatalf("no exempt_users line in the documented policy:\n%s", block)
	return ""
}

// wfClient is a user on the client side of docs/workflows.md: a working
// directory with the documented ansible.cfg and inventory, ~/.ssh/config
// with the documented block, and an askpass that types given codes.
type wfClient struct {
	t    *testing.T
	c    *container.Container
	user string
	home string
	dir  string // the working directory, ~/ops
}

// wfResult is one command line's run.
type wfResult struct {
	out     string
	exit    int
	prompts []string // what askpass was asked
}

// newWFClient sets user up as a client of the server on port, whose
// authorized key is the private key at key (in the container), without
// multiplexing.
func newWFClient(t *testing.T, c *container.Container, user string, port int, key, ansibleCfg string) *wfClient {
	t.Helper()
	container.Require(t, "ansible", "scp", "sftp", "rsync", "git", "sed", "head")
	u, err := c.LookupUser(user)
	if err != nil {
		t.Fatal(err)
	}
	w := &wfClient{t: t, c: c, user: user, home: u.Home, dir: u.Home + "/ops"}
	files := []struct {
		path string
		mode os.FileMode
		data string
	}{
		{w.home + "/.ssh/id_ed25519", 0o600, string(c.ReadFile(t, key))},
		{w.home + "/.ssh/config", 0o600, fmt.Sprintf(wfClientConfig, port)},
		{w.dir + "/ansible.cfg", 0o644, ansibleCfg},
		{w.dir + "/inventory", 0o644, wfDocBlock(t, wfDocInventory)},
		{w.dir + "/askpass", 0o755, wfAskpass},
		{w.dir + "/notes.txt", 0o644, "notes of " + user + "\n"},
		{w.dir + "/site/index.html", 0o644, "<p>site of " + user + "</p>\n"},
	}
	c.MkdirAll(t, w.dir+"/site", 0o755)
	for _, f := range files {
		c.WriteFile(t, f.path, []byte(f.data), f.mode)
	}
	c.Run(t, "chown", "-R", user+":"+user, w.home)
	return w
}

// multiplex adds the documented block to ~/.ssh/config.
func (w *wfClient) multiplex() {
	w.t.Helper()
	p := w.home + "/.ssh/config"
	w.c.WriteFile(w.t, p, append(w.c.ReadFile(w.t, p), wfDocBlock(w.t, wfDocSSHConfig)...), 0o600)
	w.c.Chown(w.t, p, w.user)
}

// run runs a documented command line with sh in the working directory,
// answering the prompts with codes in order, and stdin on its input.
func (w *wfClient) run(line, stdin string, codes ...string) wfResult {
	w.t.Helper()
	codesFile, promptsFile := w.dir+"/codes", w.dir+"/prompts"
	w.c.WriteFile(w.t, codesFile, []byte(strings.Join(codes, "\n")+"\n"), 0o600)
	w.c.WriteFile(w.t, promptsFile, nil, 0o600)
	w.c.Chown(w.t, codesFile, w.user)
	w.c.Chown(w.t, promptsFile, w.user)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := w.c.CommandAsContext(ctx, w.user, "env",
		"SSH_ASKPASS="+w.dir+"/askpass", "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0",
		"WF_CODES="+codesFile, "WF_PROMPTS="+promptsFile, "ANSIBLE_NOCOLOR=1",
		"timeout", "-k", "5", "80", "sh", "-c", `cd "$1" && eval "$2"`, "sh", w.dir, line)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	r := wfResult{out: string(out)}
	if err != nil {
		r.exit = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil || r.exit == 124 || r.exit == 137 {
		w.t.Fatalf("%s as %s hung (%v):\n%s", line, w.user, err, out)
	}
	for _, p := range strings.Split(string(w.c.ReadFile(w.t, promptsFile)), "\n") {
		if p != "" {
			r.prompts = append(r.prompts, p)
		}
	}
	return r
}

// mustRun is run that must exit 0 after exactly wantPrompts prompts.
func (w *wfClient) mustRun(line, stdin string, wantPrompts int, codes ...string) string {
	w.t.Helper()
	r := w.run(line, stdin, codes...)
	if r.exit != 0 {
		w.t.Fatalf("%s as %s: exit %d\n%s", line, w.user, r.exit, r.out)
	}
	if len(r.prompts) != wantPrompts {
		w.t.Errorf("%s as %s: %d prompts %q, want %d", line, w.user, len(r.prompts), r.prompts, wantPrompts)
	}
	return r.out
}

// wfServer is one of the two servers with what the scenarios need of it.
type wfServer struct {
	c        *container.Container
	port     int
	key      string // the private key authorized for every user
	addUser  func(user string)
	codeOf   func(user string) string
	enrollRC func(user string, recovery []string) // enroll with recovery codes
	// exemptNeedsKbdInt: an exempt account must still complete an (empty)
	// keyboard-interactive round (OpenSSH with AuthenticationMethods
	// publickey,keyboard-interactive).
	exemptNeedsKbdInt bool
	// audit returns the log that records each login's second factor,
	// and exempt is what it says of an exempt account's login.
	audit  func() string
	exempt string
}

// wfRecoveryCodes returns n fresh recovery codes (xxxx-xxxx-xxxx).
func wfRecoveryCodes(t *testing.T, n int) []string {
	t.Helper()
	codes := make([]string, n)
	for i := range codes {
		raw := make([]byte, 8)
		if _, err := rand.Read(raw); err != nil {
			t.Fatal(err)
		}
		s := strings.ToLower(base32.StdEncoding.EncodeToString(raw))[:12]
		codes[i] = s[0:4] + "-" + s[4:8] + "-" + s[8:12]
	}
	return codes
}

// wfScenarios runs the person's recipes (files, multiplexing, ansible) and
// the service account's against s.
func wfScenarios(t *testing.T, s wfServer, withJump bool) {
	s.addUser(wfPerson)
	recovery := wfRecoveryCodes(t, 12)
	s.enrollRC(wfPerson, recovery)
	next := func() string {
		code := recovery[0]
		recovery = recovery[1:]
		return code
	}
	alice := newWFClient(t, s.c, wfPerson, s.port, s.key, wfDocBlock(t, wfDocAnsibleCfg))
	s.c.RunAs(t, wfPerson, "git", "init", "-q", "--bare", alice.home+"/repo.git")

	t.Run("files", func(t *testing.T) {
		alice.t = t
		alice.mustRun(wfScpUp, "", 1, next())
		if got := string(s.c.ReadFile(t, alice.home+"/notes.txt")); got != "notes of alice\n" {
			t.Errorf("%s put %q", wfScpUp, got)
		}
		alice.mustRun(wfScpDown, "", 1, next())
		if got := string(s.c.ReadFile(t, alice.dir+"/notes-copy.txt")); got != "notes of alice\n" {
			t.Errorf("%s got %q", wfScpDown, got)
		}
		out := alice.mustRun(wfSFTP, "ls -1 site notes.txt\nget notes.txt sftp-copy.txt\n", 1, next())
		if got := string(s.c.ReadFile(t, alice.dir+"/sftp-copy.txt")); got != "notes of alice\n" {
			t.Errorf("%s got %q:\n%s", wfSFTP, got, out)
		}
		alice.mustRun(wfRsync, "", 1, next())
		if got := string(s.c.ReadFile(t, alice.home+"/site/index.html")); !strings.Contains(got, "site of alice") {
			t.Errorf("%s copied %q", wfRsync, got)
		}
		alice.mustRun(wfGitClone, "", 1, next())
		if out := s.c.RunAs(t, wfPerson, "git", "-C", alice.dir+"/repo", "rev-parse", "--git-dir"); strings.TrimSpace(out) != ".git" {
			t.Errorf("%s: no clone in %s/repo: %q", wfGitClone, alice.dir, out)
		}
	})

	t.Run("ansible", func(t *testing.T) {
		alice.t = t
		alice.multiplex()
		// Without a master: refused with the documented message, and
		// no code was ever asked for.
		r := alice.run(wfAnsiblePing, "")
		if r.exit == 0 || !strings.Contains(r.out, "UNREACHABLE!") || !strings.Contains(r.out, wfDeniedMessage) {
			t.Fatalf("%s without a master: exit %d, want UNREACHABLE with %q:\n%s", wfAnsiblePing, r.exit, wfDeniedMessage, r.out)
		}
		if len(r.prompts) != 0 {
			t.Errorf("ansible asked for a code: %q", r.prompts)
		}
		// The documented sequence: one code opens the master, then
		// ansible needs none.
		alice.mustRun(wfOpenMaster, "", 1, s.codeOf(wfPerson))
		if out := alice.mustRun(wfCheckMaster, "", 0); !strings.Contains(out, "Master running") {
			t.Errorf("%s: %s", wfCheckMaster, out)
		}
		if out := alice.mustRun(wfAnsiblePing, "", 0); !strings.Contains(out, `"ping": "pong"`) {
			t.Errorf("%s:\n%s", wfAnsiblePing, out)
		}
		if out := alice.mustRun(wfAnsibleID, "", 0); !strings.Contains(out, "uid=") || !strings.Contains(out, "("+wfPerson+")") {
			t.Errorf("%s:\n%s", wfAnsibleID, out)
		}
	})

	t.Run("multiplexing", func(t *testing.T) {
		alice.t = t
		// The master opened above carries the file tools too.
		alice.mustRun(wfScpUp, "", 0)
		alice.mustRun(wfRsync, "", 0)
		alice.mustRun(wfExitMaster, "", 0)
		if r := alice.run(wfCheckMaster, ""); r.exit == 0 {
			t.Errorf("%s after %s: exit 0\n%s", wfCheckMaster, wfExitMaster, r.out)
		}
		// Closed: the next ssh asks for a code again, and ansible fails.
		if r := alice.run(wfAnsiblePing, ""); r.exit == 0 || !strings.Contains(r.out, wfDeniedMessage) {
			t.Errorf("%s after %s: exit %d\n%s", wfAnsiblePing, wfExitMaster, r.exit, r.out)
		}
		alice.mustRun(wfOpenMaster, "", 1, next())
		alice.mustRun(wfExitMaster, "", 0)
	})

	if withJump {
		t.Run("jump host", func(t *testing.T) {
			alice.t = t
			// Two logins, two prompts: jump's code, then server's.
			alice.mustRun(wfJump, "", 2, next(), next())
			alice.mustRun(wfExitMaster, "", 0)
			// With jump in the multiplexing block, a master to jump
			// saves its code: only server asks.
			cfg := alice.home + "/.ssh/config"
			s.c.WriteFile(t, cfg, []byte(strings.Replace(string(s.c.ReadFile(t, cfg)), "\nHost server\n    ControlMaster", "\nHost server jump\n    ControlMaster", 1)), 0o600)
			s.c.Chown(t, cfg, wfPerson)
			alice.mustRun("ssh jump true", "", 1, next())
			alice.mustRun(wfJump, "", 1, next())
			alice.mustRun("ssh -O exit jump", "", 0)
		})
	}

	t.Run("service account", func(t *testing.T) {
		s.addUser(wfService)
		// First with Ansible's own ssh options: otpgate-sshd admits the
		// exempt account after the key; OpenSSH still wants
		// keyboard-interactive, which they switch off.
		deploy := newWFClient(t, s.c, wfService, s.port, s.key, "[defaults]\ninventory = inventory\ninterpreter_python = /usr/bin/python3\n")
		// Unattended: no askpass, no terminal.
		s.c.Run(t, "rm", deploy.dir+"/askpass")
		r := deploy.run(wfAnsiblePing, "")
		if s.exemptNeedsKbdInt {
			if r.exit == 0 || !strings.Contains(r.out, wfDeniedMessage) {
				t.Errorf("%s as %s with Ansible's defaults: exit %d, want %q:\n%s", wfAnsiblePing, wfService, r.exit, wfDeniedMessage, r.out)
			}
		} else if r.exit != 0 || !strings.Contains(r.out, `"ping": "pong"`) {
			t.Errorf("%s as %s with Ansible's defaults: exit %d\n%s", wfAnsiblePing, wfService, r.exit, r.out)
		}
		// Then with the documented ansible.cfg of the service account.
		s.c.WriteFile(t, deploy.dir+"/ansible.cfg", []byte(wfDocBlock(t, wfDocDeployAnsible)), 0o644)
		r = deploy.run(wfAnsiblePing, "")
		if r.exit != 0 || !strings.Contains(r.out, `"ping": "pong"`) {
			t.Fatalf("%s as the exempt %s: exit %d\n%s", wfAnsiblePing, wfService, r.exit, r.out)
		}
		// Exempt, not merely unenrolled: an enrolled exempt account
		// still needs no code.
		s.enrollRC(wfService, nil)
		if r := deploy.run(wfAnsiblePing, ""); r.exit != 0 {
			t.Fatalf("%s as the enrolled exempt %s: exit %d\n%s", wfAnsiblePing, wfService, r.exit, r.out)
		}
		// Every exempt login is audited as such (the log arrives
		// through a pipe, a little after the login).
		deadline := time.Now().Add(10 * time.Second)
		for !wfAudited(s.audit(), wfService, s.exempt) {
			if time.Now().After(deadline) {
				t.Fatalf("no log line for %s with %q:\n%s", wfService, s.exempt, s.audit())
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// wfAudited reports whether a line of log names user and says what.
func wfAudited(log, user, what string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "user="+user+" ") && strings.Contains(line, what) {
			return true
		}
	}
	return false
}

// TestWorkflowsOpenSSH runs docs/workflows.md against OpenSSH with
// pam_otpgate.
func TestWorkflowsOpenSSH(t *testing.T) {
	e := newPAMEnv(t)
	// The documented policy line, in the suite's otpgated configuration.
	if err := e.daemon.Stop(); err != nil {
		t.Fatal(err)
	}
	e.c.WriteFile(t, pamConfig, []byte(strings.Replace(pamDaemonConfig, "[policy]\n", "[policy]\n"+wfPolicyLine(t)+"\n", 1)), 0o644)
	e.restartDaemon()
	// Debian's sshd_config has the sftp subsystem; the suite's has not.
	s := startSSHDOpts(t, e, "", "-o", "Subsystem sftp internal-sftp")
	wfScenarios(t, wfServer{
		c: e.c, port: pamSSHDPort, key: pamWorkDir + "/id_ed25519",
		addUser: s.addSSHUser,
		codeOf:  e.code,
		enrollRC: func(user string, recovery []string) {
			e.enroll(user, recovery...)
		},
		exemptNeedsKbdInt: true,
		audit:             func() string { return e.daemon.Output() },
		exempt:            "outcome=exempt",
	}, true)
}

// TestWorkflowsOtpgateSSHD runs docs/workflows.md against otpgate-sshd.
func TestWorkflowsOtpgateSSHD(t *testing.T) {
	cfg := strings.Replace(sshdDaemonConfig, fmt.Sprintf("exempt_users = [%q]", sshdExempt), wfPolicyLine(t), 1)
	e := newSSHDEnvDaemon(t, cfg, "")
	wfScenarios(t, wfServer{
		c: e.c, port: sshdPort, key: sshdWorkDir + "/id_ed25519",
		addUser: e.addUser,
		codeOf:  e.code,
		enrollRC: func(user string, recovery []string) {
			e.enroll(user)
			if len(recovery) > 0 {
				e.do(&protocol.Request{Op: protocol.OpAdminImport, User: user, Import: &protocol.Import{
					Secret: e.secrets[user], Algorithm: "SHA1", Digits: 6, Period: 30, RecoveryCodes: recovery, Replace: true,
				}})
			}
		},
		// otpgated audits why; otpgate-sshd logs only its verdict.
		audit:  e.auditLog,
		exempt: "outcome=exempt",
	}, false)
}

// wfTerminal is a real terminal (a tmux pane) with a shell of user.
type wfTerminal struct {
	t    *testing.T
	c    *container.Container
	user string
}

func (p *wfTerminal) tmux(args ...string) string {
	p.t.Helper()
	cmd := p.c.CommandAs(p.user, "tmux", args...)
	cmd.Env = mergeEnv(cmd.Env, []string{"TERM=xterm-256color"})
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// waitCount waits until the screen shows want n times, and returns it.
func (p *wfTerminal) waitCount(want string, n int) string {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := p.tmux("capture-pane", "-p", "-J", "-t", "wf", "-S", "-")
		if strings.Count(out, want) >= n {
			return out
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %q (%d times) in the terminal:\n%s", want, n, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// typeLine types s and Enter.
func (p *wfTerminal) typeLine(s string) {
	p.t.Helper()
	p.tmux("send-keys", "-t", "wf", "-l", s)
	p.tmux("send-keys", "-t", "wf", "Enter")
}

// TestWorkflowsSudo runs the sudo recipe of docs/workflows.md in a real
// terminal: sudo -v asks for the password and a code, sudo then runs
// without either while the timestamp lasts, and after sudo -k both are
// asked again.
func TestWorkflowsSudo(t *testing.T) {
	container.Require(t, "sudo", "tmux", "chpasswd")
	e := newPAMEnv(t)
	e.writePAMService("sudo", pamSudoStack)
	e.enroll(wfPerson)
	e.setPassword(wfPerson, pamSudoPassword)
	// Debian's sudo defaults: a 15-minute timestamp per terminal.
	e.c.WriteFile(t, "/etc/sudoers.d/workflows", []byte(wfPerson+" ALL=(ALL:ALL) ALL\n"), 0o440)
	term := &wfTerminal{t: t, c: e.c, user: wfPerson}
	term.tmux("new-session", "-d", "-s", "wf", "-x", "200", "-y", "50", "env PS1='$ ' bash --norc -i")
	const passwordPrompt = "[sudo] password for " + wfPerson + ":"
	// run types a documented line followed, on the same line, by a
	// marker the shell prints once the line is done (sudo relays its
	// terminal while it runs, so nothing is typed ahead); the typed text
	// shows "$((n+1))", not the sum.
	marks := 0
	run := func(line string) {
		marks++
		term.typeLine(fmt.Sprintf("%s; echo WF-MARK-$((%d+1))", line, marks-1))
	}
	done := func() string {
		return term.waitCount(fmt.Sprintf("WF-MARK-%d\n", marks), 1)
	}
	code := func(offset int) string {
		at := fmt.Sprintf("--now=@%d", time.Now().Unix()+int64(offset*30))
		return strings.TrimSpace(e.c.Run(t, "oathtool", "--totp", at, "-b", e.secrets[wfPerson]))
	}
	term.waitCount("$ ", 1)

	run(wfSudoValidate)
	term.waitCount(passwordPrompt, 1)
	term.typeLine(pamSudoPassword)
	term.waitCount(pamCodePrompt, 1)
	term.typeLine(code(0))
	done()

	run(wfSudoID)
	screen := done()
	if strings.Count(screen, "uid=0(root)") != 1 {
		t.Fatalf("%s within the timestamp did not run as root:\n%s", wfSudoID, screen)
	}
	if n := strings.Count(screen, passwordPrompt) + strings.Count(screen, pamCodePrompt); n != 2 {
		t.Fatalf("%s within the timestamp asked again (%d prompts in all, want 2):\n%s", wfSudoID, n, screen)
	}

	run(wfSudoKill)
	done()
	run(wfSudoID)
	term.waitCount(passwordPrompt, 2)
	term.typeLine(pamSudoPassword)
	term.waitCount(pamCodePrompt, 2)
	// The code of the next step: the first one has been used.
	term.typeLine(code(1))
	if screen := done(); strings.Count(screen, "uid=0(root)") != 2 {
		t.Fatalf("%s after %s did not run as root:\n%s", wfSudoID, wfSudoKill, screen)
	}
}
