package sshd

import (
	"crypto"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/otpgate/otpgate/internal/protocol"
)

func TestLoginWithCodeRunsCommand(t *testing.T) {
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, nil)
	c, res, err := e.dial(testUser, []ssh.Signer{key}, func(int) []string { return []string{"123456"} })
	if err != nil {
		t.Fatalf("login with the right code failed: %v", err)
	}
	defer c.Close()
	if res.prompts != 1 {
		t.Errorf("prompts = %d, want 1", res.prompts)
	}
	out, status := run(t, c, "id -u; echo $HOME; exit 3", nil)
	if want := "48213\n" + e.home + "\n"; out != want || status != 3 {
		t.Errorf("exec = %q, status %d; want %q, status 3", out, status, want)
	}
	if got := e.daemon.ops(); !slices.Equal(got, []protocol.Op{protocol.OpCheck, protocol.OpVerify}) {
		t.Errorf("daemon ops = %v", got)
	}
	req := e.daemon.last()
	want := "publickey ssh-ed25519 " + ssh.FingerprintSHA256(key.PublicKey())
	if req.User != testUser || req.Service != Service || req.RHost != "127.0.0.1" || req.TTY != "ssh" || req.AuthInfo != want {
		t.Errorf("verify request = %+v, want AuthInfo %q", req, want)
	}
}

func TestCheckOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		check      protocol.Outcome
		err        error
		noResult   bool
		wantLogin  bool
		wantPrompt bool
		wantBanner string
	}{
		{name: "exempt user logs in with the key alone", check: protocol.OutcomeExempt, wantLogin: true},
		{name: "user without enrollment logs in with the key alone", check: protocol.OutcomeNotEnrolled, wantLogin: true},
		{name: "remembered device logs in with the key alone", check: protocol.OutcomeRemembered, wantLogin: true},
		{name: "enroll required is refused with the daemon's message", check: protocol.OutcomeEnrollRequired, wantBanner: "enroll first"},
		{name: "locked user is refused with the daemon's message", check: protocol.OutcomeLocked, wantBanner: "locked out"},
		{name: "unknown outcome fails closed", check: "maybe", wantBanner: "unavailable"},
		{name: "accept on check fails closed", check: protocol.OutcomeAccept, wantBanner: "unavailable"},
		{name: "unreachable daemon fails closed", err: protocol.ErrUnavailable, wantBanner: "unavailable"},
		{name: "error reply fails closed", err: &protocol.Error{Code: protocol.ErrInternal, Message: "boom"}, wantBanner: "unavailable"},
		{name: "reply without result fails closed", noResult: true, wantBanner: "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newSigner(t)
			e := startServer(t, []string{authorizedLine(key, "")}, nil)
			e.daemon.check, e.daemon.err, e.daemon.noResult = tt.check, tt.err, tt.noResult
			c, res, err := e.dial(testUser, []ssh.Signer{key}, func(int) []string { return []string{"123456"} })
			if (err == nil) != tt.wantLogin {
				t.Fatalf("login error = %v, want success %v", err, tt.wantLogin)
			}
			if c != nil {
				out, status := run(t, c, "echo ok", nil)
				if out != "ok\n" || status != 0 {
					t.Errorf("exec = %q, %d", out, status)
				}
				c.Close()
			}
			if res.prompts != 0 {
				t.Errorf("prompted %d times; no code should be asked", res.prompts)
			}
			if tt.wantBanner != "" && !strings.Contains(strings.Join(res.banners, ""), tt.wantBanner) {
				t.Errorf("banners = %q, want one containing %q", res.banners, tt.wantBanner)
			}
			for _, op := range e.daemon.ops() {
				if op == protocol.OpVerify {
					t.Errorf("verify was sent")
				}
			}
		})
	}
}

func TestCodeOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		answers   []string // per prompt
		wantLogin bool
		prompts   int
		verifies  int
	}{
		{name: "wrong then right code", answers: []string{"000000", "123456"}, wantLogin: true, prompts: 2, verifies: 2},
		{name: "three wrong codes end the connection", answers: []string{"000000", "111111", "222222", "123456"}, prompts: 3, verifies: 3},
		{name: "malformed answers are not sent to the daemon", answers: []string{"12345", "abc!", "1234567"}, prompts: 3, verifies: 0},
		{name: "spaces inside and around a code are removed", answers: []string{" 123 456\t"}, wantLogin: true, prompts: 1, verifies: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newSigner(t)
			e := startServer(t, []string{authorizedLine(key, "")}, nil)
			c, res, err := e.dial(testUser, []ssh.Signer{key}, func(try int) []string { return []string{tt.answers[try-1]} })
			if (err == nil) != tt.wantLogin {
				t.Fatalf("login error = %v, want success %v", err, tt.wantLogin)
			}
			if c != nil {
				c.Close()
			}
			if res.prompts != tt.prompts {
				t.Errorf("prompts = %d, want %d", res.prompts, tt.prompts)
			}
			n := 0
			for _, op := range e.daemon.ops() {
				if op == protocol.OpVerify {
					n++
				}
			}
			if n != tt.verifies {
				t.Errorf("verify requests = %d, want %d", n, tt.verifies)
			}
			if tt.prompts > 1 && res.instructs[1] != msgInvalidCode {
				t.Errorf("second prompt's instruction = %q, want %q", res.instructs[1], msgInvalidCode)
			}
		})
	}
}

func TestReplayRefused(t *testing.T) {
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, nil)
	c, _, err := e.dial(testUser, []ssh.Signer{key}, func(int) []string { return []string{"123456"} })
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, _, err := e.dial(testUser, []ssh.Signer{key}, func(int) []string { return []string{"123456"} }); err == nil {
		t.Fatal("a replayed code logged in")
	}
}

// forgedSigner claims pub but signs with another key.
type forgedSigner struct {
	pub    ssh.PublicKey
	signer ssh.Signer
}

func (f forgedSigner) PublicKey() ssh.PublicKey { return f.pub }
func (f forgedSigner) Sign(r io.Reader, data []byte) (*ssh.Signature, error) {
	return f.signer.Sign(r, data)
}

// TestKeyBinding is T27: authorization follows only keys the client proved.
func TestKeyBinding(t *testing.T) {
	authorized, other := newSigner(t), newSigner(t)
	tests := []struct {
		name      string
		signers   []ssh.Signer
		wantLogin bool
	}{
		{name: "query authorized key, sign with another key", signers: []ssh.Signer{forgedSigner{pub: authorized.PublicKey(), signer: other}}},
		{name: "unauthorized key only", signers: []ssh.Signer{other}},
		{name: "unauthorized, then authorized key", signers: []ssh.Signer{other, authorized}, wantLogin: true},
		{name: "forged, then unauthorized key", signers: []ssh.Signer{forgedSigner{pub: authorized.PublicKey(), signer: other}, other}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startServer(t, []string{authorizedLine(authorized, "")}, nil)
			c, res, err := e.dial(testUser, tt.signers, func(int) []string { return []string{"123456"} })
			if (err == nil) != tt.wantLogin {
				t.Fatalf("login error = %v, want success %v", err, tt.wantLogin)
			}
			if !tt.wantLogin {
				if res.prompts != 0 {
					t.Errorf("a code was asked %d times without a proven key", res.prompts)
				}
				if ops := e.daemon.ops(); len(ops) != 0 {
					t.Errorf("daemon was asked %v without a proven key", ops)
				}
				return
			}
			defer c.Close()
			if got, want := e.daemon.last().AuthInfo, "publickey ssh-ed25519 "+ssh.FingerprintSHA256(authorized.PublicKey()); got != want {
				t.Errorf("AuthInfo = %q, want the proven key %q", got, want)
			}
		})
	}
}

// TestKeyBindingCallbacks checks the binding at the callback level: the
// permissions of the final step carry only the proven key, and the code
// step refuses a different user.
func TestKeyBindingCallbacks(t *testing.T) {
	requireRoot(t)
	keyA, keyB := newSigner(t), newSigner(t)
	d := &recordingDaemon{code: "123456"}
	a := &authenticator{cfg: ptr(DefaultConfig()), daemon: d, log: slog.New(slog.DiscardHandler), now: time.Now}
	permsA := &ssh.Permissions{Extensions: map[string]string{extFingerprint: ssh.FingerprintSHA256(keyA.PublicKey())}}

	// Verified callback with key B but A's permissions: refused.
	if _, err := a.verifiedKey(fakeMeta{user: "alice"}, keyB.PublicKey(), permsA, ssh.KeyAlgoED25519); !errors.Is(err, errDenied) {
		t.Errorf("mismatched key and permissions: err = %v, want errDenied", err)
	}
	if len(d.ops()) != 0 {
		t.Errorf("daemon asked for a mismatched key")
	}

	// A proper partial success, then the code step under another user.
	_, err := a.verifiedKey(fakeMeta{user: "alice"}, keyA.PublicKey(), permsA, ssh.KeyAlgoED25519)
	var ps *ssh.PartialSuccessError
	if !errors.As(err, &ps) || ps.Next.KeyboardInteractiveCallback == nil {
		t.Fatalf("err = %v, want partial success with keyboard-interactive", err)
	}
	asked := false
	_, err = ps.Next.KeyboardInteractiveCallback(fakeMeta{user: "bob"}, func(string, string, []string, []bool) ([]string, error) {
		asked = true
		return []string{"123456"}, nil
	})
	if err == nil || asked {
		t.Errorf("user change after partial success: err = %v, prompted = %v", err, asked)
	}
	perms, err := ps.Next.KeyboardInteractiveCallback(fakeMeta{user: "alice"}, func(string, string, []string, []bool) ([]string, error) {
		return []string{"123456"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if perms.Extensions[extFingerprint] != ssh.FingerprintSHA256(keyA.PublicKey()) || perms.Extensions[extSecondStep] != "code" {
		t.Errorf("final permissions = %v", perms.Extensions)
	}
	if d.last().User != "alice" {
		t.Errorf("verify user = %q", d.last().User)
	}
}

func ptr[T any](v T) *T { return &v }

// TestMalformedAnswers is T28: answers of the wrong shape are refused
// without a daemon call.
func TestMalformedAnswers(t *testing.T) {
	tests := []struct {
		name    string
		answers []string
	}{
		{name: "no answer", answers: []string{}},
		{name: "two answers", answers: []string{"123456", "123456"}},
		{name: "empty", answers: []string{""}},
		{name: "blank", answers: []string{"   "}},
		{name: "64 KiB", answers: []string{strings.Repeat("1", 64*1024)}},
		{name: "65 bytes of a valid recovery shape", answers: []string{strings.Repeat("a", 65)}},
		{name: "Arabic-Indic digits", answers: []string{"١٢٣٤٥٦"}},
		{name: "fullwidth digits", answers: []string{"１２３４５６"}},
		{name: "NUL padded", answers: []string{"123456\x00"}},
		{name: "newline padded", answers: []string{"123456\n"}},
		{name: "zero padded", answers: []string{"0123456"}},
		{name: "too short", answers: []string{"12345"}},
		{name: "sign", answers: []string{"+123456"}},
		{name: "punctuation", answers: []string{"1234;56"}},
		{name: "control byte", answers: []string{"12\x1b[0m3456"}},
		{name: "doubled hyphen", answers: []string{"abcd--efgh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, ok := normalizeAnswer(tt.answers, 6); ok {
				t.Fatalf("normalizeAnswer accepted %q as %q", tt.answers, code)
			}
			d := &recordingDaemon{code: "123456"}
			a := &authenticator{cfg: ptr(DefaultConfig()), daemon: d, log: slog.New(slog.DiscardHandler), now: time.Now}
			perms := &ssh.Permissions{Extensions: map[string]string{extFingerprint: "SHA256:x"}}
			cb := a.codeStep("alice", perms, newSigner(t).PublicKey(), 6)
			n := 0
			_, err := cb(fakeMeta{user: "alice"}, func(string, string, []string, []bool) ([]string, error) {
				n++
				return tt.answers, nil
			})
			if err == nil {
				t.Fatal("malformed answers authenticated")
			}
			if n != maxCodePrompts {
				t.Errorf("prompted %d times, want %d", n, maxCodePrompts)
			}
			if ops := d.ops(); len(ops) != 0 {
				t.Errorf("daemon received %v", ops)
			}
		})
	}
}

func TestNormalizeAnswerAccepts(t *testing.T) {
	tests := []struct {
		in     string
		digits int
		want   string
	}{
		{"123456", 6, "123456"},
		{" 123456 ", 6, "123456"},
		{"123 456", 6, "123456"},
		{"12345678", 8, "12345678"},
		{"12345678", 6, "12345678"}, // an imported 8-digit scratch code
		{"1234567", 0, "1234567"},
		{"abcd-efgh-jkmn", 6, "abcd-efgh-jkmn"},
		{"ABCD EFGH JKMN", 6, "ABCD EFGH JKMN"},
	}
	for _, tt := range tests {
		got, ok := normalizeAnswer([]string{tt.in}, tt.digits)
		if !ok || got != tt.want {
			t.Errorf("normalizeAnswer(%q, %d) = %q, %v; want %q", tt.in, tt.digits, got, ok, tt.want)
		}
	}
}

// TestLargeAnswerOverTheWire sends a 64 KiB answer through a real client.
func TestLargeAnswerOverTheWire(t *testing.T) {
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, nil)
	if _, _, err := e.dial(testUser, []ssh.Signer{key}, func(int) []string { return []string{strings.Repeat("7", 64*1024)} }); err == nil {
		t.Fatal("64 KiB answer logged in")
	}
	for _, op := range e.daemon.ops() {
		if op == protocol.OpVerify {
			t.Fatal("64 KiB answer reached the daemon")
		}
	}
}

func FuzzNormalizeAnswer(f *testing.F) {
	for _, s := range []string{"123456", " 123 456 ", "١٢٣٤٥٦", "abcd-efgh-jkmn", "\x00", strings.Repeat("9", 70)} {
		f.Add(s, 6)
	}
	f.Fuzz(func(t *testing.T, s string, digits int) {
		code, ok := normalizeAnswer([]string{s}, digits)
		if !ok {
			return
		}
		if len(code) > maxAnswer || code == "" {
			t.Fatalf("accepted %q as %q", s, code)
		}
		for i := 0; i < len(code); i++ {
			c := code[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == ' ') {
				t.Fatalf("accepted byte %q in %q", c, code)
			}
		}
	})
}

// TestUnknownUserLooksLikeWrongKey checks that a missing account and an
// unauthorized key fail the same way.
func TestUnknownUserLooksLikeWrongKey(t *testing.T) {
	key, other := newSigner(t), newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, nil)
	_, _, errWrongKey := e.dial(testUser, []ssh.Signer{other}, func(int) []string { return []string{"123456"} })
	_, _, errNoUser := e.dial("nosuchuser", []ssh.Signer{key}, func(int) []string { return []string{"123456"} })
	_, _, errRoot := e.dial("root", []ssh.Signer{key}, func(int) []string { return []string{"123456"} })
	if errWrongKey == nil || errNoUser == nil || errRoot == nil {
		t.Fatalf("errors: wrong key %v, unknown user %v, root %v", errWrongKey, errNoUser, errRoot)
	}
	if errWrongKey.Error() != errNoUser.Error() || errRoot.Error() != errNoUser.Error() {
		t.Errorf("different failures:\n wrong key:    %v\n unknown user: %v\n root:         %v", errWrongKey, errNoUser, errRoot)
	}
	if ops := e.daemon.ops(); len(ops) != 0 {
		t.Errorf("daemon was asked %v", ops)
	}
}

func TestRSASHA1SignaturesRefused(t *testing.T) {
	rsaSigner := rsaTestSigner(t)
	as := rsaSigner.(ssh.AlgorithmSigner)
	sha1Only, err := ssh.NewSignerWithAlgorithms(as, []string{ssh.KeyAlgoRSA})
	if err != nil {
		t.Fatal(err)
	}
	e := startServer(t, []string{authorizedLine(rsaSigner, "")}, func(c *Config) {})
	e.daemon.check = protocol.OutcomeExempt
	if _, _, err := e.dial(testUser, []ssh.Signer{sha1Only}, nil); err == nil {
		t.Error("an ssh-rsa (SHA-1) signature was accepted")
	}
	c, _, err := e.dial(testUser, []ssh.Signer{rsaSigner}, nil)
	if err != nil {
		t.Fatalf("rsa-sha2 signature refused: %v", err)
	}
	c.Close()
}

func rsaTestSigner(t *testing.T) ssh.Signer {
	t.Helper()
	k, err := hostKeyGenerators["rsa"]()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromSigner(k.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLoginGraceTime is part of T29: silent and stalled connections are
// closed at the grace time.
func TestLoginGraceTime(t *testing.T) {
	e := startServer(t, nil, func(c *Config) { c.LoginGraceTime = Duration{Duration: 700 * time.Millisecond} })
	tests := []struct {
		name string
		send []byte
	}{
		{name: "sends nothing"},
		{name: "version string only", send: []byte("SSH-2.0-test\r\n")},
		{name: "half a version string", send: []byte("SSH-2.0-te")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			nc, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if len(tt.send) > 0 {
				nc.Write(tt.send)
			}
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.Copy(io.Discard, nc)
			if err != nil {
				t.Fatalf("connection not closed by the server: %v", err)
			}
			if d := time.Since(start); d < 600*time.Millisecond || d > 5*time.Second {
				t.Errorf("closed after %v, want about 700ms", d)
			}
		})
	}
}

// stallingConn lets the first n writes through and blocks later ones
// until closed, like a client that stops mid-handshake.
type stallingConn struct {
	net.Conn
	n      int
	closed chan struct{}
}

func (c *stallingConn) Write(p []byte) (int, error) {
	if c.n <= 0 {
		<-c.closed
		return 0, net.ErrClosed
	}
	c.n--
	return c.Conn.Write(p)
}

func (c *stallingConn) Close() error {
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return c.Conn.Close()
}

// TestGraceTimeMidHandshake is part of T29: a client that stops after its
// KEXINIT, and one that never answers the code prompt, are both closed at
// the grace time.
func TestGraceTimeMidHandshake(t *testing.T) {
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, func(c *Config) { c.LoginGraceTime = Duration{Duration: 700 * time.Millisecond} })
	t.Run("half-finished key exchange", func(t *testing.T) {
		nc, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		// Version string and KEXINIT go out; the key exchange reply does not.
		sc := &stallingConn{Conn: nc, n: 2, closed: make(chan struct{})}
		defer sc.Close()
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			_, _, _, err := ssh.NewClientConn(sc, e.addr, &ssh.ClientConfig{User: testUser, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
			done <- err
		}()
		// The client is stuck in its own write, so the server's side is
		// what tells: it must log the grace timeout and close.
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(e.logs.String(), "login grace time exceeded") {
			if time.Now().After(deadline) {
				t.Fatal("stalled key exchange not closed")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if d := time.Since(start); d < 600*time.Millisecond {
			t.Errorf("closed after %v, before the grace time", d)
		}
		sc.Close()
		if err := <-done; err == nil {
			t.Fatal("handshake completed")
		}
	})
	t.Run("code prompt never answered", func(t *testing.T) {
		start := time.Now()
		_, res, err := e.dial(testUser, []ssh.Signer{key}, func(int) []string {
			time.Sleep(3 * time.Second)
			return []string{"123456"}
		})
		if err == nil {
			t.Fatal("logged in after the grace time")
		}
		if res.prompts != 1 {
			t.Errorf("prompts = %d", res.prompts)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("took %v", d)
		}
		for _, op := range e.daemon.ops() {
			if op == protocol.OpVerify {
				t.Error("a code arriving after the grace time reached the daemon")
			}
		}
	})
}

// TestMaxStartups is part of T29: unauthenticated connections beyond the
// cap are closed at once, and a login works once the slots are free.
func TestMaxStartups(t *testing.T) {
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, func(c *Config) {
		c.MaxStartups = Startups{Start: 3, Rate: 100, Full: 3} // a hard cap
		c.PerSourceMaxStartups = 2
		c.LoginGraceTime = Duration{Duration: 2 * time.Second}
	})
	e.daemon.check = protocol.OutcomeExempt
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	dialFrom := func(src string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	closedAtOnce := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 256)
		for {
			_, err := c.Read(buf)
			if err == nil {
				continue // the server's version string
			}
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
	// Two from one source fill its share; a third from it is dropped.
	idle = append(idle, dialFrom("127.0.0.1"), dialFrom("127.0.0.1"))
	time.Sleep(100 * time.Millisecond)
	if c := dialFrom("127.0.0.1"); !closedAtOnce(c) {
		t.Error("per-source cap did not hold")
	}
	// A legitimate login from elsewhere succeeds meanwhile.
	loginFrom := func(src string) error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		nc, err := d.Dial("tcp", e.addr)
		if err != nil {
			return err
		}
		cc, chans, reqs, err := ssh.NewClientConn(nc, e.addr, &ssh.ClientConfig{
			User: testUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}, HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		})
		if err != nil {
			return err
		}
		c := ssh.NewClient(cc, chans, reqs)
		defer c.Close()
		out, status := run(t, c, "echo in", nil)
		if out != "in\n" || status != 0 {
			t.Errorf("exec = %q %d", out, status)
		}
		return nil
	}
	if err := loginFrom("127.0.0.2"); err != nil {
		t.Errorf("login while the per-source cap is hit: %v", err)
	}
	// One more from a third source fills the global cap of 3.
	idle = append(idle, dialFrom("127.0.0.3"))
	time.Sleep(100 * time.Millisecond)
	if c := dialFrom("127.0.0.4"); !closedAtOnce(c) {
		t.Error("global cap did not hold")
	}
	// After the grace time the idle connections are gone and logins work.
	time.Sleep(2500 * time.Millisecond)
	if err := loginFrom("127.0.0.4"); err != nil {
		t.Errorf("login after the grace time: %v", err)
	}
}

func TestMaxAuthTries(t *testing.T) {
	authorized := newSigner(t)
	var wrong []ssh.Signer
	for range 8 {
		wrong = append(wrong, newSigner(t))
	}
	e := startServer(t, []string{authorizedLine(authorized, "")}, func(c *Config) { c.MaxAuthTries = 3 })
	e.daemon.check = protocol.OutcomeExempt
	// The authorized key comes after more failures than allowed.
	_, _, err := e.dial(testUser, append(wrong, authorized), nil)
	if err == nil {
		t.Fatal("logged in after more than max_auth_tries failures")
	}
	c, _, err := e.dial(testUser, append(wrong[:1], authorized), nil)
	if err != nil {
		t.Fatalf("login within max_auth_tries: %v", err)
	}
	c.Close()
}

// TestRecoveryCodeNotice: a recovery code logs in, and the daemon's note
// (codes left, how to make new ones) reaches the client as a banner.
func TestRecoveryCodeNotice(t *testing.T) {
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, nil)
	const note = "Recovery code accepted; only 1 left: run 'otpgate recovery-codes' to make new ones."
	e.daemon.mu.Lock()
	e.daemon.recovery, e.daemon.recoveryMessage = "abcd-efgh-jkmn", note
	e.daemon.mu.Unlock()
	c, res, err := e.dial(testUser, []ssh.Signer{key}, func(int) []string { return []string{"abcd-efgh-jkmn"} })
	if err != nil {
		t.Fatalf("recovery code refused: %v", err)
	}
	c.Close()
	if got := strings.Join(res.banners, ""); got != note+"\n" {
		t.Errorf("banners = %q, want %q", got, note+"\n")
	}
	// A plain code gets no banner.
	e.daemon.mu.Lock()
	e.daemon.code = "654321"
	e.daemon.mu.Unlock()
	c, res, err = e.dial(testUser, []ssh.Signer{key}, func(int) []string { return []string{"654321"} })
	if err != nil {
		t.Fatalf("code refused: %v", err)
	}
	c.Close()
	if len(res.banners) != 0 {
		t.Errorf("banners after a plain code: %q", res.banners)
	}
}
