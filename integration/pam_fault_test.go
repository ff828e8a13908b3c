//go:build integration

package integration

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
)

// faultMode is how the fault proxy damages the daemon's reply.
type faultMode struct {
	name string
	// op limits the damage to replies to this operation ("" for all).
	op protocol.Op
	// damage writes the reply (or not) to the module's connection.
	damage func(conn net.Conn, reply []byte)
}

// mutateJSON returns a damage function that edits the reply's JSON.
func mutateJSON(edit func(map[string]any)) func(net.Conn, []byte) {
	return func(conn net.Conn, reply []byte) {
		// UseNumber keeps the 64-bit request id exact.
		dec := json.NewDecoder(bytes.NewReader(reply))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return
		}
		edit(m)
		out, _ := json.Marshal(m)
		_ = protocol.WriteFrame(conn, out)
	}
}

// setOutcome returns an edit that replaces the verify outcome.
func setOutcome(outcome string) func(map[string]any) {
	return func(m map[string]any) {
		if v, ok := m["verify"].(map[string]any); ok {
			v["outcome"] = outcome
		}
	}
}

// faultProxy stands between pam_otpgate and the real otpgated, the way a
// broken network or a confused daemon would: it forwards each request to
// the daemon and damages the reply according to the current mode.
type faultProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	mode     faultMode
	wg       sync.WaitGroup
}

// startFaultProxy listens on the host path listen (inside the container
// through Path) and forwards to the host path upstream.
func startFaultProxy(t testing.TB, listen, upstream string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("unix", listen)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(listen, 0o666); err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, upstream: upstream}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *faultProxy) setMode(m faultMode) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
}

func (p *faultProxy) serve() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer conn.Close()
			p.handle(conn)
		}()
	}
}

func (p *faultProxy) handle(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	req, err := protocol.ReadFrame(conn)
	if err != nil {
		return
	}
	var head struct {
		Op protocol.Op `json:"op"`
	}
	_ = json.Unmarshal(req, &head)
	up, err := net.DialTimeout("unix", p.upstream, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	_ = up.SetDeadline(time.Now().Add(15 * time.Second))
	if err := protocol.WriteFrame(up, req); err != nil {
		return
	}
	reply, err := protocol.ReadFrame(up)
	if err != nil {
		return
	}
	p.mu.Lock()
	mode := p.mode
	p.mu.Unlock()
	if mode.damage == nil || (mode.op != "" && mode.op != head.Op) {
		_ = protocol.WriteFrame(conn, reply)
		return
	}
	mode.damage(conn, reply)
}

// TestPAMFaultyReplies puts a fault proxy between the module and the real
// otpgated. Whatever the damage, the module must deny with
// PAM_AUTHINFO_UNAVAIL, never PAM_SUCCESS or PAM_IGNORE (the stack ends
// with pam_permit, so PAM_IGNORE would let the user in).
func TestPAMFaultyReplies(t *testing.T) {
	e := newPAMEnv(t)
	proxy := startFaultProxy(t, e.c.Path("/run/otpgate/fault.sock"), e.c.Path(pamSocket))
	e.writePAMService("otp-fault", "auth required pam_otpgate.so socket=/run/otpgate/fault.sock timeout=3\nauth required pam_permit.so\n")
	e.addUser("faultplain")

	garbage := func(conn net.Conn, _ []byte) { _ = protocol.WriteFrame(conn, []byte("\x00not json{")) }
	truncated := func(conn net.Conn, reply []byte) {
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(len(reply)))
		_, _ = conn.Write(append(hdr[:], reply[:len(reply)/2]...))
	}
	oversized := func(conn net.Conn, _ []byte) { _, _ = conn.Write([]byte{0xff, 0xff, 0xff, 0xff, '{'}) }
	drop := func(net.Conn, []byte) {}
	otherID := mutateJSON(func(m map[string]any) { m["id"] = 12345 })
	modes := []faultMode{
		{"garbage reply", "", garbage},
		{"truncated reply", "", truncated},
		{"oversized frame header", "", oversized},
		{"connection closed without a reply", "", drop},
		{"reply to another request id", "", otherID},
		{"check answers accept", protocol.OpCheck, mutateJSON(setOutcome("accept"))},
		{"check answers an unknown outcome", protocol.OpCheck, mutateJSON(setOutcome("maybe"))},
		{"check reply without a result", protocol.OpCheck, mutateJSON(func(m map[string]any) { delete(m, "verify") })},
		{"verify answers an unknown outcome", protocol.OpVerify, mutateJSON(setOutcome("accepted"))},
		{"verify answers code_required", protocol.OpVerify, mutateJSON(setOutcome("code_required"))},
		{"verify reply is garbage", protocol.OpVerify, garbage},
		{"verify reply dropped", protocol.OpVerify, drop},
	}
	for i, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			proxy.setMode(mode)
			// Enrolled users get past the check; each uses a fresh user so
			// that a consumed code never masks the result.
			user := fmt.Sprintf("fault%d", i)
			e.enroll(user)
			users := []string{user}
			if mode.op != protocol.OpVerify {
				// A user without enrollment never reaches verify.
				users = append(users, "faultplain")
			}
			for _, u := range users {
				start := time.Now()
				res := e.pamtester("", "otp-fault", u, e.codeOrEmpty(u)+"\n")
				if !strings.Contains(res.out, pamUnavail) {
					t.Errorf("%s: want %q, got (exit %d):\n%s", u, pamUnavail, res.exit, res.out)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("%s: denial took %v with timeout=3", u, d)
				}
			}
		})
	}
	// fail=open relaxes only "no usable answer"; an answer the module does
	// not understand still denies.
	t.Run("fail=open does not relax unknown answers", func(t *testing.T) {
		e.writePAMService("otp-fault-open", "auth required pam_otpgate.so socket=/run/otpgate/fault.sock timeout=3 fail=open\nauth required pam_permit.so\n")
		for _, outcome := range []string{"accept", "maybe"} {
			proxy.setMode(faultMode{name: outcome, op: protocol.OpCheck, damage: mutateJSON(setOutcome(outcome))})
			if res := e.pamtester("", "otp-fault-open", "faultplain", "\n"); !strings.Contains(res.out, pamUnavail) {
				t.Errorf("check outcome %q with fail=open: want %q, got:\n%s", outcome, pamUnavail, res.out)
			}
		}
		proxy.setMode(faultMode{name: "drop", damage: drop})
		if res := e.pamtester("", "otp-fault-open", "faultplain", "\n"); !strings.Contains(res.out, pamOK) {
			t.Errorf("no answer with fail=open: want the module skipped (%q), got:\n%s", pamOK, res.out)
		}
	})
	// The JSON edits above change only what they say: replies decoded and
	// re-encoded unchanged still let the user in.
	t.Run("re-encoded but unchanged replies pass through", func(t *testing.T) {
		proxy.setMode(faultMode{name: "identity", damage: mutateJSON(func(map[string]any) {})})
		e.enroll("faultok")
		if res := e.pamtester("", "otp-fault", "faultok", e.code("faultok")+"\n"); !strings.Contains(res.out, pamOK) {
			t.Fatalf("through the proxy without damage: %s", res.out)
		}
	})
}

// codeOrEmpty is user's current code if enrolled, else "".
func (e *pamEnv) codeOrEmpty(user string) string {
	if _, ok := e.secrets[user]; !ok {
		return ""
	}
	return e.code(user)
}
