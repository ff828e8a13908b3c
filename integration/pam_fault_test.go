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
	// keep goes on with the dialogue after a damaged reply; otherwise the
	// proxy closes the connection.
	keep bool
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

// setStep returns an edit that replaces the reply's step.
func setStep(step map[string]any) func(map[string]any) {
	return func(m map[string]any) {
		delete(m, "step")
		if step != nil {
			m["step"] = step
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

// handle relays one connection (one login dialogue) to its own upstream
// connection, frame by frame, damaging the replies the mode selects.
func (p *faultProxy) handle(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	up, err := net.DialTimeout("unix", p.upstream, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	_ = up.SetDeadline(time.Now().Add(20 * time.Second))
	for {
		req, err := protocol.ReadFrame(conn)
		if err != nil {
			return
		}
		var head struct {
			Op protocol.Op `json:"op"`
		}
		_ = json.Unmarshal(req, &head)
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
			if protocol.WriteFrame(conn, reply) != nil {
				return
			}
			continue
		}
		mode.damage(conn, reply)
		if !mode.keep {
			return
		}
	}
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
		{"garbage reply", "", garbage, false},
		{"truncated reply", "", truncated, false},
		{"oversized frame header", "", oversized, false},
		{"connection closed without a reply", "", drop, false},
		{"reply to another request id", "", otherID, false},
		{"first step with an unknown verdict", protocol.OpLoginStart, mutateJSON(setStep(map[string]any{"verdict": "maybe"})), false},
		{"first step with prompts and a verdict", protocol.OpLoginStart, mutateJSON(setStep(map[string]any{"verdict": "success",
			"prompts": []any{map[string]any{"text": "Code: "}}})), false},
		{"first reply without a step", protocol.OpLoginStart, mutateJSON(setStep(nil)), false},
		{"first step with an escape sequence", protocol.OpLoginStart, mutateJSON(setStep(map[string]any{"verdict": "deny",
			"messages": []any{map[string]any{"style": "error", "text": "\x1b]0;owned\x07"}}})), false},
		{"answer's step with an unknown verdict", protocol.OpLoginAnswer, mutateJSON(setStep(map[string]any{"verdict": "accepted"})), false},
		{"answer's step with neither prompts nor verdict", protocol.OpLoginAnswer, mutateJSON(setStep(map[string]any{})), false},
		{"answer's reply is garbage", protocol.OpLoginAnswer, garbage, false},
		{"answer's reply dropped", protocol.OpLoginAnswer, drop, false},
	}
	for i, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			proxy.setMode(mode)
			// Enrolled users get past the check; each uses a fresh user so
			// that a consumed code never masks the result.
			user := fmt.Sprintf("fault%d", i)
			e.enroll(user)
			users := []string{user}
			if mode.op != protocol.OpLoginAnswer {
				// A user without enrollment is never asked anything.
				users = append(users, "faultplain")
			}
			for _, u := range users {
				start := time.Now()
				res := e.pamtester("", "otp-fault", u, e.codeOrEmpty(u)+"\n")
				if !strings.Contains(res.out, pamUnavail) || !strings.Contains(res.out, protocol.UnavailableText) {
					t.Errorf("%s: want %q and %q, got (exit %d):\n%s", u, protocol.UnavailableText, pamUnavail, res.exit, res.out)
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
		for _, verdict := range []string{"accept", "maybe"} {
			proxy.setMode(faultMode{name: verdict, op: protocol.OpLoginStart, damage: mutateJSON(setStep(map[string]any{"verdict": verdict}))})
			if res := e.pamtester("", "otp-fault-open", "faultplain", "\n"); !strings.Contains(res.out, pamUnavail) {
				t.Errorf("first step with the verdict %q with fail=open: want %q, got:\n%s", verdict, pamUnavail, res.out)
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
		proxy.setMode(faultMode{name: "identity", damage: mutateJSON(func(map[string]any) {}), keep: true})
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
