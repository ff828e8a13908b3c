//go:build root

package daemon

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
)

// TestPeerCredentialMatrix runs every operation from real processes with
// root, alice's and bob's uids.
func TestPeerCredentialMatrix(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	d.importUser(alice)
	d.importUser(bob)
	type caller struct {
		name string
		uid  uint32
	}
	root, a, b := caller{"root", 0}, caller{"alice", aliceUID}, caller{"bob", bobUID}
	tests := []struct {
		op      protocol.Op
		user    string
		allowed []caller
	}{
		{protocol.OpLoginStart, alice, []caller{root, a}},
		{protocol.OpStatus, alice, []caller{root, a}},
		{protocol.OpStatus, bob, []caller{root, b}},
		{protocol.OpEnrollBegin, bob, []caller{root, b}},
		{protocol.OpAdminList, "", []caller{root}},
		{protocol.OpAdminShow, alice, []caller{root}},
		{protocol.OpAdminUnlock, alice, []caller{root}},
		{protocol.OpAdminReset, bob, []caller{root}},
	}
	// One client process per caller sends the whole column of the matrix.
	for _, c := range []caller{root, a, b} {
		reqs := make([]*protocol.Request, len(tests))
		for i, tt := range tests {
			reqs[i] = &protocol.Request{Op: tt.op, User: tt.user, Code: "123456", Force: true}
			switch tt.op {
			case protocol.OpEnrollBegin:
				reqs[i].Code = ""
			case protocol.OpLoginStart:
				reqs[i].Login = &protocol.LoginStart{}
			}
		}
		results := d.clientAsMany(c.uid, reqs)
		for i, tt := range tests {
			allowed := slices.Contains(tt.allowed, c)
			errText := results[i].Err
			denied := strings.Contains(errText, "only act on your own account") || strings.Contains(errText, "needs root")
			if denied == allowed {
				t.Errorf("%s %s by %s: allowed=%v but got %q", tt.op, tt.user, c.name, allowed, errText)
			}
		}
	}
	if n := strings.Count(d.log.String(), "outcome=denied"); n == 0 {
		t.Error("refusals are not audited")
	}
}

func TestMalformedAndOversizedFramesGetErrorsNotCrashes(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	secret := d.importUser(alice)
	frame := func(payload []byte) []byte {
		b := make([]byte, 4+len(payload))
		binary.BigEndian.PutUint32(b, uint32(len(payload)))
		copy(b[4:], payload)
		return b
	}
	huge := make([]byte, 4)
	binary.BigEndian.PutUint32(huge, 16<<20)
	tests := []struct {
		name string
		send []byte
		want string
	}{
		{"garbage JSON", frame([]byte("{not json")), "malformed request"},
		{"unknown field", frame([]byte(`{"v":1,"id":1,"op":"ping","evil":1}`)), "unknown field"},
		{"wrong version", frame([]byte(`{"v":9,"id":1,"op":"ping"}`)), "unsupported protocol version"},
		{"unknown op", frame([]byte(`{"v":1,"id":1,"op":"drop_tables"}`)), "unknown operation"},
		{"code too long", frame([]byte(`{"v":1,"id":1,"op":"enroll_confirm","user":"daemon","code":"` + strings.Repeat("1", 1025) + `"}`)), "longer than"},
		{"16 MiB declared", huge, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("unix", d.cfg.Daemon.Socket)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			testutil.Must(t, c.SetDeadline(time.Now().Add(5*time.Second)))
			if _, err := c.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			reply, err := protocol.ReadFrame(c)
			if err != nil {
				t.Fatalf("no error reply: %v", err)
			}
			if !strings.Contains(string(reply), tt.want) {
				t.Fatalf("reply %s lacks %q", reply, tt.want)
			}
		})
	}
	// The daemon still serves.
	if r := d.verify(alice, d.code(secret, 0)); !shows(r, protocol.OutcomeAccept) {
		t.Fatalf("after abuse: %+v", r)
	}
}

func TestSilentClientIsDisconnectedAndCapped(t *testing.T) {
	cfg := testConfig(t)
	cfg.Daemon.RequestTimeout.Duration = 300 * time.Millisecond
	cfg.Daemon.MaxConnsPerUID = 3
	d := startDaemon(t, cfg, nil)
	d.importUser(alice)

	c, err := net.Dial("unix", cfg.Daemon.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0, 0}); err != nil { // half a header, then silence
		t.Fatal(err)
	}
	testutil.Must(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	if _, err := c.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Fatalf("silent client was not disconnected by the daemon: %v", err)
	}

}

func TestConnectionCapPerUID(t *testing.T) {
	cfg := testConfig(t)
	cfg.Daemon.MaxConnsPerUID = 3
	d := startDaemon(t, cfg, nil)
	d.importUser(alice)
	// A non-root uid may hold only MaxConnsPerUID connections; root is
	// not affected by a user's connections.
	for range 3 {
		holdAs(t, cfg.Daemon.Socket, aliceUID)
	}
	_, errText := d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpStatus, User: alice})
	if !strings.Contains(errText, "too many open connections") {
		t.Fatalf("fourth connection of alice: %q", errText)
	}
	if r := d.startLogin(protocol.Request{User: alice}); !shows(r, protocol.OutcomeCodeRequired) {
		t.Fatalf("root while alice is at her cap: %+v", r)
	}
}

func TestAuditEscapesControlCharacters(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	secret := d.importUser(alice)
	evil := "host\nFAKE outcome=accept\x1b[2J"
	d.loginCode(protocol.Request{User: alice, RHost: evil, Service: "sshd"}, d.code(secret, 0))
	log := d.log.String()
	if strings.Contains(log, "\nFAKE") || strings.Contains(log, "\x1b") {
		t.Fatalf("control characters reached the log:\n%q", log)
	}
	if !strings.Contains(log, "rhost=") || !strings.Contains(log, "service=sshd") {
		t.Fatalf("context missing from the audit line:\n%s", log)
	}
}

func TestPolicyDecidesWhoNeedsACode(t *testing.T) {
	cfg := testConfig(t)
	cfg.Policy.ExemptUsers = []string{"sys"}
	cfg.Policy.RequiredGroups = []string{"bin"}
	d := startDaemon(t, cfg, nil)
	tests := []struct {
		user string
		want protocol.Outcome
	}{
		{"sys", protocol.OutcomeExempt},
		{bob, protocol.OutcomeEnrollRequired}, // in group bin
		{alice, protocol.OutcomeNotEnrolled},  // optional
		{"no-such-user", protocol.OutcomeNotEnrolled},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			r := d.startLogin(protocol.Request{User: tt.user})
			if !shows(r, tt.want) {
				t.Fatalf("%s: %+v, want %s", tt.user, r, tt.want)
			}
			if tt.want == protocol.OutcomeEnrollRequired && !strings.Contains(stepText(r), "otpgate enroll") {
				t.Errorf("no enrollment hint: %q", stepText(r))
			}
		})
	}
	// Exemption wins even for an enrolled user.
	d.importUser("sys")
	if r := d.verify("sys", "000000"); !shows(r, protocol.OutcomeExempt) {
		t.Fatalf("exempt enrolled user: %+v", r)
	}
}

func TestAdminListPagesThroughAllUsers(t *testing.T) {
	d := startDaemon(t, testConfig(t), nil)
	seedUsers(t, d, 2*listPageSize+17)
	users, err := d.client().ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2*listPageSize+17 {
		t.Fatalf("listed %d users", len(users))
	}
	for i, u := range users {
		if want := fmt.Sprintf("bench%06d", i); u.User != want || u.State != protocol.StateActive {
			t.Fatalf("entry %d: %+v, want %s active", i, u, want)
		}
	}
	_, errText := d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpAdminList, After: "bench000001"})
	if !strings.Contains(errText, "needs root") {
		t.Fatalf("non-root list: %q", errText)
	}
}
