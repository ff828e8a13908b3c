//go:build integration

package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
)

// Ports of TestSSHDForwardingAsUser: the destination and ssh -L's local end.
const (
	fwdDestPort  = 7010
	fwdLocalPort = 7011
	fwdDeadPort  = 7012 // permitted, nothing listens
)

// fwdListener accepts connections on 127.0.0.1:fwdDestPort and holds them
// open (perl is in every Debian system).
var fwdListener = fmt.Sprintf(`use IO::Socket::INET;
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:%d", Listen => 16, ReuseAddr => 1) or die "listen: $!";
my @held;
while (my $c = $s->accept) { push @held, $c }
`, fwdDestPort)

// TestSSHDForwardingAsUser: otpgate-sshd connects a direct-tcpip channel
// (here ssh -L) with the user's uid, as OpenSSH does, so uid-based egress
// rules (iptables -m owner) apply to forwarded connections: while the
// forwarded connection is open, ss -e shows the user's uid on its
// client-side socket. A connection the destination refuses reaches the
// client as a channel open failure, as before.
func TestSSHDForwardingAsUser(t *testing.T) {
	container.Require(t, "ss", "perl")
	e := newSSHDEnv(t, fmt.Sprintf("allow_tcp_forwarding = true\npermit_open = [\"127.0.0.1:%d\", \"127.0.0.1:%d\"]\n", fwdDestPort, fwdDeadPort))
	e.addUser(sshdExempt)
	u, err := e.c.LookupUser(sshdExempt)
	if err != nil {
		t.Fatal(err)
	}
	e.c.Background(t, "perl", "-e", fwdListener)
	e.c.WaitForPort(t, fwdDestPort, 15*time.Second)
	e.c.Background(t, "ssh", "-F", sshdWorkDir+"/ssh_config", "-p", strconv.Itoa(sshdPort),
		"-o", "IdentityFile="+sshdWorkDir+"/id_ed25519", "-o", "ExitOnForwardFailure=yes", "-o", "BatchMode=yes",
		"-N", "-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", fwdLocalPort, fwdDestPort), sshdExempt+"@127.0.0.1")
	e.c.WaitForPort(t, fwdLocalPort, 30*time.Second)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := e.c.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", fwdLocalPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if !e.waitLog("forwarding opened", 15*time.Second) {
		t.Fatalf("the forwarded connection did not open:\n%s", e.server.Output())
	}
	// The socket connected to the destination, from otpgate-sshd's side.
	out := e.c.Run(t, "ss", "-tenpH", "state", "established", "dst", fmt.Sprintf("127.0.0.1:%d", fwdDestPort))
	var lines []string // ss may also warn about cgroups, which the container lacks
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, fmt.Sprintf("127.0.0.1:%d ", fwdDestPort)) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "otpgate-sshd") {
		t.Fatalf("want one socket of otpgate-sshd connected to the destination, ss -tenp shows:\n%s", out)
	}
	if want := fmt.Sprintf(" uid:%d ", u.UID); !strings.Contains(lines[0]+" ", want) {
		t.Errorf("the forwarded connection is not %s's (uid %d): ss -tenp shows\n%s", sshdExempt, u.UID, out)
	}

	r := e.ssh(sshdExempt, "id_ed25519", "", []string{"-W", fmt.Sprintf("127.0.0.1:%d", fwdDeadPort)})
	if r.exit == 0 || !strings.Contains(r.out, "connect failed") {
		t.Errorf("forwarding to a closed port: exit %d, want a channel open failure \"connect failed\":\n%s", r.exit, r.out)
	}
	if !e.waitLog("connection refused", 5*time.Second) {
		t.Error("the server did not log the helper's connect error")
	}
}
