//go:build root

package sshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func TestAgentKeyOptions(t *testing.T) {
	tests := []struct {
		opts []string
		want bool // noAgentForwarding
	}{
		{nil, false},
		{[]string{"no-agent-forwarding"}, true},
		{[]string{"restrict"}, true},
		{[]string{"restrict", "agent-forwarding"}, false},
		{[]string{"no-pty", "no-port-forwarding"}, false},
	}
	for _, tt := range tests {
		got, err := parseKeyOptions(tt.opts)
		if err != nil || got.noAgentForwarding != tt.want {
			t.Errorf("parseKeyOptions(%q): noAgentForwarding %v, err %v; want %v", tt.opts, got.noAgentForwarding, err, tt.want)
		}
	}
}

// agentLogin logs in with a client that forwards an in-memory agent
// holding one key, and returns the client and that key's fingerprint.
func agentLogin(t *testing.T, options string, allow bool) (*testEnv, *ssh.Client, string) {
	t.Helper()
	e, c := loginExempt(t, options, func(cfg *Config) { cfg.AllowAgentForwarding = allow })
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv, Comment: "forwarded"}); err != nil {
		t.Fatal(err)
	}
	if err := agent.ForwardToAgent(c, keyring); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return e, c, ssh.FingerprintSHA256(signer.PublicKey())
}

func TestAgentForwarding(t *testing.T) {
	if _, err := os.Stat("/usr/bin/ssh-add"); err != nil {
		t.Fatal("this test needs ssh-add (apt-get install openssh-client)")
	}
	t.Run("the session lists the forwarded key through a private socket", func(t *testing.T) {
		e, c, fp := agentLogin(t, "", true)
		var requested error
		out, status := run(t, c, `echo "SOCK=$SSH_AUTH_SOCK"; stat -c '%a %u' "$(dirname "$SSH_AUTH_SOCK")" "$SSH_AUTH_SOCK"; ssh-add -l`,
			func(s *ssh.Session) { requested = agent.RequestAgentForwarding(s) })
		if requested != nil {
			t.Fatalf("agent forwarding refused: %v", requested)
		}
		if status != 0 || !strings.Contains(out, fp) {
			t.Fatalf("status %d, want the key %s listed:\n%s", status, fp, out)
		}
		uid := "48213"
		if !strings.Contains(out, "\n700 "+uid+"\n600 "+uid+"\n") {
			t.Errorf("the socket's directory and the socket are not 0700 and 0600 owned by the user:\n%s", out)
		}
		sock := strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "SOCK=")
		if !strings.HasPrefix(sock, agentDirBase) || filepath.Base(filepath.Dir(sock)) == "" {
			t.Errorf("SSH_AUTH_SOCK = %q", sock)
		}
		// The connection's end removes the socket and its directory.
		c.Close()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err := os.Lstat(filepath.Dir(sock)); os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still exists after the connection closed\n%s", filepath.Dir(sock), e.logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	for _, tt := range []struct {
		name    string
		options string
		allow   bool
	}{
		{"allow_agent_forwarding off", "", false},
		{"key with no-agent-forwarding", "no-agent-forwarding", true},
		{"key with restrict", "restrict", true},
	} {
		t.Run(tt.name+" refuses the request", func(t *testing.T) {
			_, c, _ := agentLogin(t, tt.options, tt.allow)
			var requested error
			out, _ := run(t, c, `echo "SOCK=$SSH_AUTH_SOCK."`, func(s *ssh.Session) { requested = agent.RequestAgentForwarding(s) })
			if requested == nil || !strings.Contains(out, "SOCK=.") {
				t.Errorf("agent request answered %v; session output %q", requested, out)
			}
		})
	}
}
