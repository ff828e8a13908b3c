//go:build integration

package integration

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/integration/container"
)

// clientsConfig is the OpenSSH client configuration of TestSSHDClients:
// "server" is otpgate-sshd, so that scp, sftp, rsync and git, which run
// ssh themselves, need no options of their own.
var clientsConfig = `Host server
  HostName 127.0.0.1
  Port ` + strconv.Itoa(sshdPort) + `
  IdentityFile ` + sshdWorkDir + `/id_ed25519
` + sshdClientConfig

// clientsRun runs a shell command line as root in dir, every ssh it starts
// answering the code prompt through SSH_ASKPASS with code.
func (e *sshdEnv) clientsRun(t *testing.T, dir, code, line string) sshRun {
	t.Helper()
	e.n++
	log := sshdWorkDir + "/askpass-clients-" + strconv.Itoa(e.n) + ".log"
	ctx, cancel := context.WithTimeout(context.Background(), sshdCmdLimit)
	defer cancel()
	out, exit, err := e.c.Exec(ctx, "env",
		"ASKPASS_CODE="+code, "ASKPASS_LOG="+log,
		"SSH_ASKPASS="+sshdWorkDir+"/askpass", "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0",
		"GIT_SSH_COMMAND=ssh -F "+sshdWorkDir+"/clients_config",
		"timeout", "-k", "5", "40", "sh", "-c", `cd "$1" && eval "$2"`, "sh", dir, line)
	if ctx.Err() != nil || exit == 124 || exit == 137 {
		t.Fatalf("%s hung (%v, exit %d):\n%s", line, err, exit, out)
	}
	prompts, rerr := os.ReadFile(e.c.Path(log))
	if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		t.Fatal(rerr)
	}
	return sshRun{out: out, exit: exit, prompts: string(prompts)}
}

// clientsAsyncSSH runs integration/testdata/asyncssh_login.py.
func (e *sshdEnv) clientsAsyncSSH(t *testing.T, user, code, command string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sshdCmdLimit)
	defer cancel()
	out, exit, err := e.c.Exec(ctx, "timeout", "-k", "5", "40", "/usr/bin/python3", "-W", "ignore",
		sshdWorkDir+"/asyncssh_login.py", "127.0.0.1", strconv.Itoa(sshdPort), user,
		sshdWorkDir+"/id_ed25519", code, command)
	if ctx.Err() != nil || exit == 124 || exit == 137 {
		t.Fatalf("asyncssh %s hung (%v, exit %d):\n%s", user, err, exit, out)
	}
	return out, exit
}

// clientsTerminal runs cmd in a terminal and types code at the prompt
// (plink, pscp and dbclient read it from the terminal), and returns the
// screen once cmd has exited.
func (e *sshdEnv) clientsTerminal(t *testing.T, cmd, code string) string {
	t.Helper()
	term := e.sshdTerminal(t, cmd)
	term.waitCount(sshdPrompt, 1)
	term.typeLine(code)
	return term.waitCount("EXIT=", 1)
}

// TestSSHDClients logs in to otpgate-sshd with each SSH client Debian 12
// ships, each answering the code prompt its own way (askpass for OpenSSH's
// tools, the terminal for PuTTY's and dropbear's, a handler for the Python
// libraries), with the key and a code from oathtool, and checks that the
// command ran or the file arrived. A wrong code is refused for ssh, plink
// and asyncssh. Each row has its own user, so that no code is replayed
// and no lockout spills over.
func TestSSHDClients(t *testing.T) {
	container.Require(t, "/usr/bin/python3", "scp", "rsync", "git", "plink", "pscp", "puttygen",
		"dbclient", "dropbearconvert", "tmux")
	e := newSSHDEnv(t, "")
	for _, mod := range []string{"paramiko", "asyncssh"} {
		if out, exit, _ := e.c.Exec(context.Background(), "/usr/bin/python3", "-W", "ignore", "-c", "import "+mod); exit != 0 {
			t.Fatalf("python3 cannot import %s (apt-get install python3-%s; scripts/install-deps.sh does):\n%s", mod, mod, out)
		}
	}
	e.c.WriteFile(t, sshdWorkDir+"/clients_config", []byte(clientsConfig), 0o644)
	e.c.WriteFile(t, sshdWorkDir+"/paramiko_login.py", readRepoFile(t, "integration/testdata/paramiko_login.py"), 0o755)
	e.c.WriteFile(t, sshdWorkDir+"/asyncssh_login.py", readRepoFile(t, "integration/testdata/asyncssh_login.py"), 0o755)
	e.c.Run(t, "puttygen", sshdWorkDir+"/id_ed25519", "-O", "private", "-o", sshdWorkDir+"/id.ppk")
	e.c.Run(t, "dropbearconvert", "openssh", "dropbear", sshdWorkDir+"/id_ed25519", sshdWorkDir+"/id_dropbear")
	fp := strings.Fields(e.c.Run(t, "sh", "-c", "ssh-keygen -y -f /etc/otpgate/sshd/ssh_host_ed25519_key | ssh-keygen -l -f -"))[1]
	putty := " -P " + strconv.Itoa(sshdPort) + " -hostkey " + fp + " -i " + sshdWorkDir + "/id.ppk "
	ssh := "ssh -F " + sshdWorkDir + "/clients_config"

	// Each row logs in as user, its own, with a fresh code: login runs
	// the client, and check says whether the command ran or the transfer
	// happened (home is user's home, local a directory of root's with
	// local.txt in it).
	type check = func(t *testing.T, user, home, local, out string)
	type row struct {
		name  string
		login func(t *testing.T, user, home, local, code string) string
		check check
	}
	// askpass runs an OpenSSH command line that must succeed after one
	// prompt, the code prompt.
	askpass := func(line func(user string) string) func(t *testing.T, user, home, local, code string) string {
		return func(t *testing.T, user, home, local, code string) string {
			r := e.clientsRun(t, local, code, line(user))
			if r.exit != 0 || strings.Count(r.prompts, sshdPrompt) != 1 {
				t.Fatalf("exit %d, prompts %q:\n%s", r.exit, r.prompts, r.out)
			}
			return r.out
		}
	}
	ran := func(t *testing.T, user, home, local, out string) {
		// A terminal may shift the lines (plink's output has no
		// carriage returns): compare the words.
		if !strings.Contains(" "+strings.Join(strings.Fields(out), " ")+" ", " IN "+user+" ") {
			t.Fatalf("the command did not run:\n%s", out)
		}
	}
	arrived := func(path string) check {
		return func(t *testing.T, user, home, local, out string) {
			p := strings.ReplaceAll(strings.ReplaceAll(path, "HOME", home), "LOCAL", local)
			if got, want := string(e.c.ReadFile(t, p)), "data of "+user+"\n"; got != want {
				t.Fatalf("%s = %q, want %q\n%s", p, got, want, out)
			}
		}
	}
	// scp -v says which protocol it speaks.
	scp := "scp -v -F " + sshdWorkDir + "/clients_config"
	const sftpMode, scpMode = "Sending subsystem: sftp", "Sending command: scp -v "
	said := func(text string) check {
		return func(t *testing.T, user, home, local, out string) {
			if !strings.Contains(out, text) {
				t.Fatalf("no %q in the output:\n%s", text, out)
			}
		}
	}
	both := func(a, b check) check {
		return func(t *testing.T, user, home, local, out string) {
			a(t, user, home, local, out)
			b(t, user, home, local, out)
		}
	}
	rows := []row{
		{"ssh exec", askpass(func(u string) string { return ssh + " " + u + "@server 'echo IN; id -un'" }), ran},
		{"scp, SFTP mode (the default)", askpass(func(u string) string { return scp + " local.txt " + u + "@server:up.txt" }),
			both(arrived("HOME/up.txt"), said(sftpMode))},
		{"scp -s, SFTP mode", askpass(func(u string) string { return scp + " -s " + u + "@server:remote.txt down.txt" }),
			both(arrived("LOCAL/down.txt"), said(sftpMode))},
		{"scp -O, legacy SCP", askpass(func(u string) string { return scp + " -O local.txt " + u + "@server:up.txt" }),
			both(arrived("HOME/up.txt"), said(scpMode+"-t"))},
		{"scp -O download", askpass(func(u string) string { return scp + " -O " + u + "@server:remote.txt down.txt" }),
			both(arrived("LOCAL/down.txt"), said(scpMode+"-f"))},
		{"sftp", askpass(func(u string) string {
			return "printf 'put local.txt up.txt\\nget remote.txt down.txt\\n' | sftp -F " + sshdWorkDir + "/clients_config " + u + "@server"
		}), both(arrived("HOME/up.txt"), arrived("LOCAL/down.txt"))},
		{"rsync -e ssh", askpass(func(u string) string {
			return "mkdir -p site && cp local.txt site/page.txt && rsync -a -e '" + ssh + "' site/ " + u + "@server:site/"
		}), arrived("HOME/site/page.txt")},
		{"git clone over ssh", askpass(func(u string) string { return "git clone -q " + u + "@server:repo.git clone" }), arrived("LOCAL/clone/remote.txt")},
		{"plink", func(t *testing.T, user, home, local, code string) string {
			return e.clientsTerminal(t, "plink -ssh -no-antispoof"+putty+user+"@127.0.0.1 'echo IN; id -un'", code)
		}, func(t *testing.T, user, home, local, out string) {
			if !strings.Contains(out, "EXIT=0") {
				t.Fatalf("plink failed:\n%s", out)
			}
			ran(t, user, home, local, out)
		}},
		{"pscp", func(t *testing.T, user, home, local, code string) string {
			return e.clientsTerminal(t, "pscp -q"+putty+local+"/local.txt "+user+"@127.0.0.1:up.txt", code)
		}, func(t *testing.T, user, home, local, out string) {
			if !strings.Contains(out, "EXIT=0") {
				t.Fatalf("pscp failed:\n%s", out)
			}
			arrived("HOME/up.txt")(t, user, home, local, out)
		}},
		{"dbclient", func(t *testing.T, user, home, local, code string) string {
			return e.clientsTerminal(t, "dbclient -y -y -i "+sshdWorkDir+"/id_dropbear -p "+strconv.Itoa(sshdPort)+" "+user+"@127.0.0.1 'echo IN; id -un'", code)
		}, func(t *testing.T, user, home, local, out string) {
			if !strings.Contains(out, "EXIT=0") {
				t.Fatalf("dbclient failed:\n%s", out)
			}
			ran(t, user, home, local, out)
		}},
		{"paramiko (the documented workaround)", func(t *testing.T, user, home, local, code string) string {
			out, exit := e.paramikoRun("same-service", user, code, "echo IN; id -un")
			if exit != 0 || !strings.Contains(out, "EXIT 0") {
				t.Fatalf("exit %d:\n%s", exit, out)
			}
			return out
		}, ran},
		{"asyncssh", func(t *testing.T, user, home, local, code string) string {
			out, exit := e.clientsAsyncSSH(t, user, code, "echo IN; id -un")
			if exit != 0 || !strings.Contains(out, "EXIT 0") || !strings.Contains(out, "PROMPT: "+sshdPrompt) {
				t.Fatalf("exit %d:\n%s", exit, out)
			}
			return out
		}, ran},
	}
	for i, r := range rows {
		user := "client" + strconv.Itoa(i)
		t.Run(r.name, func(t *testing.T) {
			home, local := clientsUser(t, e, user)
			out := r.login(t, user, home, local, e.code(user))
			r.check(t, user, home, local, out)
		})
	}

	// Wrong codes: each client is refused, and the command never runs.
	t.Run("ssh, wrong code", func(t *testing.T) {
		clientsUser(t, e, "wrongssh")
		r := e.ssh("wrongssh", "id_ed25519", e.wrongCode("wrongssh"), nil, "echo IN")
		if r.exit != 255 || strings.Contains(r.out, "IN") || !strings.Contains(r.prompts, sshdPrompt) {
			t.Fatalf("exit %d, prompts %q:\n%s", r.exit, r.prompts, r.out)
		}
	})
	t.Run("plink, wrong codes", func(t *testing.T) {
		clientsUser(t, e, "wrongplink")
		term := e.sshdTerminal(t, "plink -ssh -no-antispoof"+putty+"wrongplink@127.0.0.1 'echo IN'")
		for n := 1; n <= sshdMaxFailed; n++ {
			term.waitCount(sshdPrompt, n)
			term.typeLine(e.wrongCode("wrongplink"))
		}
		screen := term.waitCount("EXIT=", 1)
		if strings.Contains(screen, "EXIT=0") || strings.Contains(screen, "IN\n") || !strings.Contains(screen, "Wrong code.") {
			t.Fatalf("plink's screen:\n%s", screen)
		}
	})
	t.Run("asyncssh, wrong code", func(t *testing.T) {
		clientsUser(t, e, "wrongasync")
		out, exit := e.clientsAsyncSSH(t, "wrongasync", e.wrongCode("wrongasync"), "echo IN")
		if exit != 3 || !strings.Contains(out, "AUTH-FAILED") || strings.Contains(out, "EXIT") {
			t.Fatalf("exit %d:\n%s", exit, out)
		}
	})
}

// clientsUser creates and enrolls user, with remote.txt and a bare git
// repository repo.git (holding remote.txt) in the home directory, and a
// local directory of root's with local.txt; it returns both directories.
func clientsUser(t *testing.T, e *sshdEnv, user string) (home, local string) {
	t.Helper()
	e.addUser(user)
	e.enroll(user)
	u, err := e.c.LookupUser(user)
	if err != nil {
		t.Fatal(err)
	}
	local = sshdWorkDir + "/local-" + user
	data := "data of " + user + "\n"
	e.c.MkdirAll(t, local, 0o755)
	e.c.WriteFile(t, local+"/local.txt", []byte(data), 0o644)
	e.c.WriteFile(t, u.Home+"/remote.txt", []byte(data), 0o644)
	src := sshdWorkDir + "/src-" + user
	e.c.WriteFile(t, src+"/remote.txt", []byte(data), 0o644)
	e.c.Run(t, "sh", "-c", `cd "$1" && git init -q && git add remote.txt &&
git -c user.name=test -c user.email=test@example.org commit -q -m data &&
git clone -q --bare . "$2/repo.git" && chown -R "$3:" "$2"`, "sh", src, u.Home, user)
	return u.Home, local
}
