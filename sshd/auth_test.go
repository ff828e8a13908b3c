//go:build root

package sshd

import (
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
	"github.com/otpgate/otpgate/internal/testutil"
)

func TestLoginWithCodeRunsCommand(t *testing.T) {
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, nil)
	c, res, err := e.dial(testUser, []ssh.Signer{key}, func(int) []string { return []string{"123456"} })
	if err != nil {
		t.Fatalf("login with the right code failed: %v", err)
	}
	defer c.Close()
	if res.prompts != 1 || res.questions[0] != fakePrompt {
		t.Errorf("questions = %q, want one %q", res.questions, fakePrompt)
	}
	out, status := run(t, c, "id -u; echo $HOME; exit 3", nil)
	if want := "48213\n" + e.home + "\n"; out != want || status != 3 {
		t.Errorf("exec = %q, status %d; want %q, status 3", out, status, want)
	}
	if starts, answers := e.daemon.counts(); starts != 1 || answers != 1 {
		t.Errorf("dialogues started %d, answers relayed %d; want 1 and 1", starts, answers)
	}
	req := e.daemon.lastStart()
	want := "publickey ssh-ed25519 " + ssh.FingerprintSHA256(key.PublicKey())
	if req.User != testUser || req.Service != Service || req.RHost != "127.0.0.1" || req.TTY != "ssh" || req.AuthInfo != want {
		t.Errorf("login_start = %+v, want AuthInfo %q", req, want)
	}
	if *req.Login != (protocol.LoginStart{}) {
		t.Errorf("login_start's login = %+v, want no prompt and an unknown terminal size", *req.Login)
	}
	if !strings.Contains(e.logs.String(), "second_factor=success") {
		t.Errorf("the log does not say the verdict:\n%s", e.logs.String())
	}
}

// TestFirstStepVerdicts: otpgated's first step decides alone. A skip or a
// success admits with the key alone (no keyboard-interactive needed); any
// other verdict, and any failure to get one, is said to the person in a
// challenge the client acknowledges before the connection ends, and
// fails closed.
func TestFirstStepVerdicts(t *testing.T) {
	said := func(v protocol.Verdict, text string) *protocol.LoginStep {
		return &protocol.LoginStep{Verdict: v, Messages: []protocol.LoginMessage{{Style: protocol.MessageError, Text: text}}}
	}
	tests := []struct {
		name      string
		first     *protocol.LoginStep
		set       func(d *fakeOtpgated)
		wantLogin bool
		wantSaid  string
		wantLog   string
	}{
		{name: "skip logs in with the key alone", first: &protocol.LoginStep{Verdict: protocol.VerdictSkip}, wantLogin: true, wantLog: "second_factor=skip"},
		{name: "success logs in with the key alone", first: &protocol.LoginStep{Verdict: protocol.VerdictSuccess}, wantLogin: true, wantLog: "second_factor=success"},
		{name: "refused is said and fails", first: said(protocol.VerdictRefused, "enroll first"), wantSaid: "enroll first\n"},
		// A deny lets the client try again: each try is a new dialogue.
		{name: "deny is said at each try and fails", first: said(protocol.VerdictDeny, "no key"), wantSaid: "no key\nno key\nno key\n"},
		{name: "unavailable with words says them", first: said(protocol.VerdictUnavailable, "store down"), wantSaid: "store down\n"},
		{name: "unavailable without words says the relay's text", first: &protocol.LoginStep{Verdict: protocol.VerdictUnavailable}, wantSaid: protocol.UnavailableText + "\n"},
		{name: "otpgated down", set: func(d *fakeOtpgated) { d.stop() }, wantSaid: protocol.UnavailableText + "\n", wantLog: "otpgated unavailable"},
		{name: "an otpgated without the dialogue", set: func(d *fakeOtpgated) { d.old = true }, wantSaid: protocol.UnavailableText + "\n", wantLog: "otpgated does not know the login dialogue (it is older than otpgate-sshd); upgrade otpgated"},
		{name: "a step that is not one", set: func(d *fakeOtpgated) { d.broken = true }, wantSaid: protocol.UnavailableText + "\n", wantLog: "otpgated unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newSigner(t)
			e := startServer(t, []string{authorizedLine(key, "")}, nil)
			e.daemon.set(func(d *fakeOtpgated) {
				d.first = tt.first
				if tt.set != nil {
					tt.set(d)
				}
			})
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
				t.Errorf("asked %q; no code should be asked", res.questions)
			}
			if got := strings.Join(res.said, ""); got != tt.wantSaid {
				t.Errorf("said %q, want %q", got, tt.wantSaid)
			}
			if !strings.Contains(e.logs.String(), tt.wantLog) {
				t.Errorf("the log lacks %q:\n%s", tt.wantLog, e.logs.String())
			}
			if _, answers := e.daemon.counts(); answers != 0 {
				t.Errorf("%d answers relayed", answers)
			}
		})
	}
}

// TestCodeDialogue relays otpgated's steps: its prompts and words reach
// the client as they are, the answers reach otpgated as typed, and its
// verdict decides. A deny lets the client try again; a refusal ends the
// connection after its words were said.
func TestCodeDialogue(t *testing.T) {
	tests := []struct {
		name        string
		maxFailures int
		answers     []string // one per question asked
		wantLogin   bool
		wantStarts  int
		wantSaid    []string
		// wantQuestions are the questions asked, in order.
		wantQuestions []string
	}{
		{name: "a code typed as apps show it", answers: []string{"123 456"}, wantLogin: true, wantStarts: 1,
			wantQuestions: []string{fakePrompt}},
		{name: "a wrong code is said, then the client tries again", answers: []string{"000000", "123456"}, wantLogin: true, wantStarts: 2,
			wantSaid: []string{fakeWrongCode + "\n"}, wantQuestions: []string{fakePrompt, fakePrompt}},
		{name: "a malformed answer gets otpgated's words before the same prompt", answers: []string{"12345", "123456"}, wantLogin: true, wantStarts: 1,
			wantQuestions: []string{fakePrompt, fakeFormat + "\n" + fakePrompt}},
		{name: "a long paste gets otpgated's words too", answers: []string{strings.Repeat("7", 64*1024), "123456"}, wantLogin: true, wantStarts: 1,
			wantQuestions: []string{fakePrompt, fakeFormat + "\n" + fakePrompt}},
		{name: "a lockout is said and ends the connection", maxFailures: 2, answers: []string{"000000", "111111", "123456"}, wantStarts: 2,
			wantSaid: []string{fakeWrongCode + "\n", fakeLocked + "\n"}, wantQuestions: []string{fakePrompt, fakePrompt}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newSigner(t)
			e := startServer(t, []string{authorizedLine(key, "")}, nil)
			e.daemon.set(func(d *fakeOtpgated) { d.maxFailures = tt.maxFailures })
			c, res, err := e.dial(testUser, []ssh.Signer{key}, func(try int) []string { return []string{tt.answers[try-1]} })
			if (err == nil) != tt.wantLogin {
				t.Fatalf("login error = %v, want success %v", err, tt.wantLogin)
			}
			if c != nil {
				c.Close()
			}
			if !slices.Equal(res.questions, tt.wantQuestions) {
				t.Errorf("questions = %q, want %q", res.questions, tt.wantQuestions)
			}
			if !slices.Equal(res.said, tt.wantSaid) {
				t.Errorf("said %q, want %q", res.said, tt.wantSaid)
			}
			if starts, _ := e.daemon.counts(); starts != tt.wantStarts {
				t.Errorf("dialogues started = %d, want %d", starts, tt.wantStarts)
			}
		})
	}
}

// TestAnswersRelayedAsTyped: otpgate-sshd does not read answers; only
// what the protocol cannot carry (invalid UTF-8, beyond 1 KiB) is fitted.
func TestAnswersRelayedAsTyped(t *testing.T) {
	long := strings.Repeat("é", protocol.MaxAnswerLen) // 2 bytes each
	tests := []struct{ typed, want string }{
		{" 123 456\t", " 123 456\t"},
		{"١٢٣٤٥٦", "١٢٣٤٥٦"},
		{"123456\x00", "123456\x00"},
		{"abcd-efgh-jkmn", "abcd-efgh-jkmn"},
		{"12\xff34", "12\uFFFD34"},
		{long, long[:protocol.MaxAnswerLen]},
		{"x" + long, "x" + long[:protocol.MaxAnswerLen-2]},
	}
	for _, tt := range tests {
		answers := []string{tt.typed}
		fitAnswers(answers)
		if answers[0] != tt.want {
			t.Errorf("fitAnswers(%q) = %q, want %q", tt.typed, answers[0], tt.want)
		}
	}
}

// TestPromptSetting: sshd.prompt reaches otpgated, whose prompt the
// client is then asked.
func TestPromptSetting(t *testing.T) {
	key := newSigner(t)
	const prompt = "Password (verification code): "
	e := startServer(t, []string{authorizedLine(key, "")}, func(c *Config) { c.Prompt = prompt })
	c, res, err := e.dial(testUser, []ssh.Signer{key}, func(int) []string { return []string{"123456"} })
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := e.daemon.lastStart().Login.Prompt; got != prompt {
		t.Errorf("login_start prompt = %q, want %q", got, prompt)
	}
	if !slices.Equal(res.questions, []string{prompt}) {
		t.Errorf("questions = %q, want %q", res.questions, prompt)
	}
}

// TestMessagesEndLines: words before a question or a verdict end with a
// newline, so that no client (dropbear's dbclient prints them as they
// are) runs them into the prompt or into its own words.
func TestMessagesEndLines(t *testing.T) {
	info := func(text string) protocol.LoginMessage {
		return protocol.LoginMessage{Style: protocol.MessageInfo, Text: text}
	}
	step := &protocol.LoginStep{
		Messages: []protocol.LoginMessage{info("Scan this QR code:"), info("█▀▀█\n█▄▄█\n"), info("Or enter this key in the app: ABC")},
		Prompts:  []protocol.LoginPrompt{{Text: "Verification code: "}, {Text: "Again: ", Echo: true}},
	}
	q, echos := renderPrompts(step)
	want := []string{"Scan this QR code:\n█▀▀█\n█▄▄█\nOr enter this key in the app: ABC\nVerification code: ", "Again: "}
	if !slices.Equal(q, want) || !slices.Equal(echos, []bool{false, true}) {
		t.Errorf("questions %q echos %v, want %q [false true]", q, echos, want)
	}
	if got := messageText([]protocol.LoginMessage{info("Wrong code.")}); got != "Wrong code.\n" {
		t.Errorf("messageText = %q", got)
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
	_, res, err := e.dial(testUser, []ssh.Signer{key}, func(int) []string { return []string{"123456"} })
	if err == nil {
		t.Fatal("a replayed code logged in")
	}
	if len(res.said) == 0 || res.said[0] != fakeCodeUsed+"\n" {
		t.Errorf("said %q, want %q first", res.said, fakeCodeUsed+"\n")
	}
}

// TestDialogueEndsWithTheConnection: a dialogue opened at the publickey
// step is closed when the client goes away without answering.
func TestDialogueEndsWithTheConnection(t *testing.T) {
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, nil)
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	// A client that offers the key and nothing else.
	_, _, _, err = ssh.NewClientConn(nc, e.addr, &ssh.ClientConfig{
		User: testUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}, HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	if err == nil {
		t.Fatal("logged in with the key alone while a code is required")
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.daemon.open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d dialogues still open after the client left", e.daemon.open.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if starts, _ := e.daemon.counts(); starts != 1 {
		t.Errorf("dialogues started = %d, want 1", starts)
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

// TestKeyBinding: authorization follows only keys the client proved.
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
				if starts, _ := e.daemon.counts(); starts != 0 {
					t.Errorf("a dialogue was started without a proven key")
				}
				return
			}
			defer c.Close()
			if got, want := e.daemon.lastStart().AuthInfo, "publickey ssh-ed25519 "+ssh.FingerprintSHA256(authorized.PublicKey()); got != want {
				t.Errorf("AuthInfo = %q, want the proven key %q", got, want)
			}
		})
	}
}

// TestKeyBindingCallbacks checks the binding at the callback level: the
// permissions of the final step carry only the proven key, and the
// keyboard-interactive step refuses a different user.
func TestKeyBindingCallbacks(t *testing.T) {
	requireRoot(t)
	keyA, keyB := newSigner(t), newSigner(t)
	d := startFakeOtpgated(t)
	a := &authenticator{cfg: ptr(DefaultConfig()), daemon: &protocol.Client{Socket: d.socket}, log: slog.New(slog.DiscardHandler), now: time.Now}
	defer a.close()
	permsA := &ssh.Permissions{Extensions: map[string]string{extFingerprint: ssh.FingerprintSHA256(keyA.PublicKey())}}

	// Verified callback with key B but A's permissions: refused.
	if _, err := a.verifiedKey(fakeMeta{user: "alice"}, keyB.PublicKey(), permsA, ssh.KeyAlgoED25519); !errors.Is(err, errDenied) {
		t.Errorf("mismatched key and permissions: err = %v, want errDenied", err)
	}
	if starts, _ := d.counts(); starts != 0 {
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
	perms, err := ps.Next.KeyboardInteractiveCallback(fakeMeta{user: "alice"}, func(_, _ string, q []string, _ []bool) ([]string, error) {
		if len(q) == 0 {
			return nil, nil
		}
		return []string{"123456"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if perms.Extensions[extFingerprint] != ssh.FingerprintSHA256(keyA.PublicKey()) || perms.Extensions[extSecondStep] != "success" {
		t.Errorf("final permissions = %v", perms.Extensions)
	}
	if d.lastStart().User != "alice" {
		t.Errorf("login_start user = %q", d.lastStart().User)
	}
}

func ptr[T any](v T) *T { return &v }

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
	if starts, _ := e.daemon.counts(); starts != 0 {
		t.Errorf("%d dialogues started", starts)
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
	e.daemon.skipAll()
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
	s, err := ssh.NewSignerFromSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLoginGraceTime (pre-authentication limits): silent and stalled connections are
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
				if _, err := nc.Write(tt.send); err != nil {
					t.Fatal(err)
				}
			}
			testutil.Must(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
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

// TestGraceTimeMidHandshake (pre-authentication limits): a client that stops after its
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
		if _, answers := e.daemon.counts(); answers != 0 {
			t.Error("a code arriving after the grace time reached the daemon")
		}
	})
}

// TestMaxStartups (pre-authentication limits): unauthenticated connections beyond the
// cap are closed at once, and a login works once the slots are free.
func TestMaxStartups(t *testing.T) {
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, func(c *Config) {
		c.MaxStartups = Startups{Start: 3, Rate: 100, Full: 3} // a hard cap
		c.PerSourceMaxStartups = 2
		c.LoginGraceTime = Duration{Duration: 2 * time.Second}
	})
	e.daemon.skipAll()
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
		testutil.Must(t, c.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
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
	e.daemon.skipAll()
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
// (codes left, how to make new ones) is said before the session.
func TestRecoveryCodeNotice(t *testing.T) {
	key := newSigner(t)
	e := startServer(t, []string{authorizedLine(key, "")}, nil)
	const note = "Recovery code accepted; only 1 left: run 'otpgate recovery-codes' to make new ones."
	e.daemon.set(func(d *fakeOtpgated) { d.recovery, d.recoveryMessage = "abcd-efgh-jkmn", note })
	c, res, err := e.dial(testUser, []ssh.Signer{key}, func(int) []string { return []string{"abcd-efgh-jkmn"} })
	if err != nil {
		t.Fatalf("recovery code refused: %v", err)
	}
	c.Close()
	if !slices.Equal(res.said, []string{note + "\n"}) {
		t.Errorf("said %q, want %q", res.said, note+"\n")
	}
	// A plain code is followed by no words.
	e.daemon.set(func(d *fakeOtpgated) { d.code = "654321" })
	c, res, err = e.dial(testUser, []ssh.Signer{key}, func(int) []string { return []string{"654321"} })
	if err != nil {
		t.Fatalf("code refused: %v", err)
	}
	c.Close()
	if len(res.said) != 0 || len(res.banners) != 0 {
		t.Errorf("said %q, banners %q after a plain code", res.said, res.banners)
	}
}
