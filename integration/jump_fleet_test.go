//go:build integration

package integration

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"regexp"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
)

// fleetKey is a fresh public key as OpenSSH's SSH_AUTH_INFO_0 shows it.
func fleetKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return "publickey " + k.Type() + " " + base64.StdEncoding.EncodeToString(k.Marshal())
}

// TestFleetJumpHost: two otpgated with host names of their own on one
// PostgreSQL. A code given on the bastion's server lets a login from the
// bastion's address with the same key through on the other server; the
// other server still refuses the code itself, saying it was used on the
// bastion's server, and asks for a code from elsewhere or with another key.
func TestFleetJumpHost(t *testing.T) {
	const laptop, bastion = "203.0.113.5", "192.0.2.10"
	f := startFleetWith(t, 2, "postgres", "[policy]\njump_hosts = [\""+bastion+"\"]\njump_window = \"60s\"\n", true)
	secret := f.enroll("jumpuser")
	key := fleetKey(t)
	// ask logs in through node from rhost with authInfo, answering code
	// ("": none, only the first step) when asked.
	ask := func(node int, code, rhost, authInfo string) *protocol.LoginStep {
		t.Helper()
		c := &protocol.Client{Socket: f.nodes[node].socket, Timeout: 10 * time.Second}
		req := protocol.Request{Op: protocol.OpLoginStart, User: "jumpuser", Service: "sshd", RHost: rhost, AuthInfo: authInfo, Login: &protocol.LoginStart{}}
		var st *protocol.LoginStep
		var err error
		if code == "" {
			var dlg *protocol.Dialogue
			if dlg, st, err = c.StartDialogue(&req); err == nil {
				err = dlg.Close()
			}
		} else {
			st, err = testutil.Login(c, req, code)
		}
		if err != nil {
			t.Fatalf("login through %s: %v", f.nodes[node].name, err)
		}
		return st
	}
	code := currentCode(secret)
	if r := ask(0, code, laptop, key); stepOutcome(r) != protocol.OutcomeAccept {
		t.Fatalf("the code on the bastion's server: %+v", r)
	}
	rec, err := f.db.Get("jumpuser")
	if err != nil {
		t.Fatal(err)
	}
	if rec.LastCode == nil || rec.LastCode.Host != "fleet-node0" || rec.LastCode.RHost != laptop || rec.LastCode.Fingerprint == "" {
		t.Fatalf("stored code use: %+v, want host fleet-node0, rhost %s and a fingerprint", rec.LastCode, laptop)
	}
	tests := []struct {
		name     string
		rhost    string
		authInfo string
		want     protocol.Outcome
	}{
		{"from the bastion with the same key", bastion, key, protocol.OutcomeAccept},
		{"from the bastion with another key", bastion, fleetKey(t), protocol.OutcomeCodeRequired},
		{"from elsewhere with the same key", laptop, key, protocol.OutcomeCodeRequired},
		{"without a remote address (sudo)", "", "", protocol.OutcomeCodeRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := ask(1, "", tt.rhost, tt.authInfo); stepOutcome(r) != tt.want {
				t.Errorf("login on node1: %+v, want %s", r, tt.want)
			}
		})
	}
	t.Run("the code itself is refused, naming the server that took it", func(t *testing.T) {
		r := ask(1, code, laptop, key)
		want := regexp.MustCompile(`^This code was already used at \d\d:\d\d:\d\d \S+ on fleet-node0 \(sshd from ` + laptop + `\): (the next code comes in \d+ seconds?|a new code is showing now)\.$`)
		if r.Verdict != protocol.VerdictDeny || !want.MatchString(stepText(r)) {
			t.Errorf("the bastion's code on node1: %s %q, want deny matching %s", r.Verdict, stepText(r), want)
		}
	})
}
