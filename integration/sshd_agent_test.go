//go:build integration

package integration

import (
	"context"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
)

// sshdAgentSession is the remote command of the agent test: it lists the
// forwarded agent's keys, publishes the socket's path in the home
// directory, and holds the session open until the test creates ~/go.
const sshdAgentSession = `echo "SOCK=$SSH_AUTH_SOCK"; ssh-add -l; echo "$SSH_AUTH_SOCK" > "$HOME/sock.tmp"; mv "$HOME/sock.tmp" "$HOME/sock"; ` +
	`n=0; while [ ! -e "$HOME/go" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done`

// TestSSHDAgentForwarding forwards a real ssh-agent with ssh -A: the
// session lists the client's key with ssh-add -l, the socket is in a
// directory only the user can reach (another user cannot connect), and
// both are gone after logout. Keys marked no-agent-forwarding or restrict
// and allow_agent_forwarding = false get no agent.
func TestSSHDAgentForwarding(t *testing.T) {
	container.Require(t, "ssh-agent", "ssh-add", "setpriv")
	e := newSSHDEnv(t, "allow_agent_forwarding = true\n")
	e.addUser("agentuser")
	e.addUser("snoop")
	clientAgent := sshdWorkDir + "/client-agent.sock"
	e.c.Background(t, "ssh-agent", "-D", "-a", clientAgent)
	e.c.WaitForSocket(t, clientAgent, 10*time.Second)
	e.c.Run(t, "env", "SSH_AUTH_SOCK="+clientAgent, "ssh-add", "-q", sshdWorkDir+"/id_ed25519")
	fp := strings.Fields(e.c.Run(t, "ssh-keygen", "-lf", sshdWorkDir+"/id_ed25519.pub"))[1]
	home := "/home/agentuser"
	forward := []string{"-A", "-o", "IdentityAgent=" + clientAgent}

	t.Run("ssh -A lists the client's key and no one else can use it", func(t *testing.T) {
		done := make(chan sshRun, 1)
		go func() { done <- e.ssh("agentuser", "id_ed25519", "", forward, sshdAgentSession) }()
		var sock string
		deadline := time.Now().Add(20 * time.Second)
		for {
			if b, err := os.ReadFile(e.c.Path(home + "/sock")); err == nil {
				sock = strings.TrimSpace(string(b))
				break
			}
			if time.Now().After(deadline) {
				e.c.WriteFile(t, home+"/go", nil, 0o644)
				r := <-done
				t.Fatalf("the session did not publish its agent socket: exit %d\n%s", r.exit, r.out)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if sock == "" {
			e.c.WriteFile(t, home+"/go", nil, 0o644)
			r := <-done
			t.Fatalf("SSH_AUTH_SOCK is empty:\n%s", r.out)
		}
		dir := path.Dir(sock)
		if got := strings.TrimSpace(e.c.Run(t, "stat", "-c", "%a %U", dir, sock)); got != "700 agentuser\n600 agentuser" {
			t.Errorf("agent directory and socket: %q, want 700 and 600 owned by agentuser", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, exit, _ := e.c.Exec(ctx, "setpriv", "--reuid=snoop", "--regid=snoop", "--clear-groups",
			"env", "SSH_AUTH_SOCK="+sock, "ssh-add", "-l")
		if exit == 0 || strings.Contains(out, fp) {
			t.Errorf("another user reached the forwarded agent: exit %d\n%s", exit, out)
		}
		e.c.WriteFile(t, home+"/go", nil, 0o644)
		r := <-done
		if r.exit != 0 || !strings.Contains(r.out, fp) {
			t.Fatalf("ssh-add -l in the session: exit %d, want the key %s:\n%s", r.exit, fp, r.out)
		}
		deadline = time.Now().Add(5 * time.Second)
		for {
			if _, err := os.Lstat(e.c.Path(dir)); os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still exists after logout", dir)
			}
			time.Sleep(20 * time.Millisecond)
		}
		os.Remove(e.c.Path(home + "/sock"))
		os.Remove(e.c.Path(home + "/go"))
	})

	pub := e.c.ReadFile(t, sshdWorkDir+"/id_ed25519.pub")
	for _, opt := range []string{"no-agent-forwarding", "restrict"} {
		t.Run("a key with "+opt+" gets no agent", func(t *testing.T) {
			e.c.WriteFile(t, home+"/.ssh/authorized_keys", append([]byte(opt+" "), pub...), 0o600)
			e.c.Chown(t, home+"/.ssh/authorized_keys", "agentuser")
			r := e.ssh("agentuser", "id_ed25519", "", forward, `echo "SOCK=$SSH_AUTH_SOCK."`)
			if r.exit != 0 || !strings.Contains(r.out, "SOCK=.") {
				t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
			}
		})
	}
	t.Run("allow_agent_forwarding = false forwards no agent", func(t *testing.T) {
		e.c.WriteFile(t, home+"/.ssh/authorized_keys", pub, 0o600)
		e.c.Chown(t, home+"/.ssh/authorized_keys", "agentuser")
		e.reload("")
		r := e.ssh("agentuser", "id_ed25519", "", forward, `echo "SOCK=$SSH_AUTH_SOCK."`)
		if r.exit != 0 || !strings.Contains(r.out, "SOCK=.") {
			t.Fatalf("exit %d, output:\n%s", r.exit, r.out)
		}
	})
}
