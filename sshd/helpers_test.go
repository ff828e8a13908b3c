//go:build root

package sshd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/otpgate/otpgate/internal/accounts"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
)

// Test account: a uid/gid no real user has, with a home under a temp dir.
const (
	testUser = "otpgtest"
	testUID  = 48213
	testGID  = 48213
)

// fakeOtpgated speaks the login dialogue on a Unix socket as otpgated
// does, for one enrolled user whose valid code is code, and records the
// requests. Unit tests use it to see what otpgate-sshd relays, and
// whether it asked at all; the integration suite runs the real otpgated.
type fakeOtpgated struct {
	socket string
	ln     net.Listener

	// open counts the dialogues open now.
	open atomic.Int32

	mu sync.Mutex
	// starts are the login_start requests received; answers counts the
	// login_answer requests.
	starts  []protocol.Request
	answers int
	// first, if set, is the first step of every dialogue instead of the
	// code prompt (a skip, a refusal, an enrollment's QR code...).
	first *protocol.LoginStep
	// old answers login_start as an otpgated without the dialogue does.
	old bool
	// broken answers every request with a step that is not one.
	broken bool
	// code is the one code accepted (once: then it was used).
	code string
	used bool
	// recovery, if set, is accepted once, with recoveryMessage as the
	// success step's message.
	recovery        string
	recoveryMessage string
	// maxFailures wrong codes lock the user (0: never).
	maxFailures int
	failures    int
}

// Texts of the fake, which otpgated words in its own way.
const (
	fakePrompt    = "Verification code: "
	fakeWrongCode = "Wrong code."
	fakeCodeUsed  = "This code was already used."
	fakeFormat    = "A code is 6 digits."
	fakeLocked    = "Too many wrong codes: try again in 5 minutes."
)

// startFakeOtpgated serves a fake otpgated until the test ends.
func startFakeOtpgated(t *testing.T) *fakeOtpgated {
	t.Helper()
	dir, err := os.MkdirTemp("", "otpgd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &fakeOtpgated{socket: filepath.Join(dir, "s"), code: "123456"}
	if d.ln, err = net.Listen("unix", d.socket); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.ln.Close() })
	go func() {
		for {
			c, err := d.ln.Accept()
			if err != nil {
				return
			}
			go d.serve(c)
		}
	}()
	return d
}

// stop makes the socket refuse connections, as when otpgated is down.
func (d *fakeOtpgated) stop() { d.ln.Close() }

// serve runs one dialogue: login_start, then login_answer until a verdict.
func (d *fakeOtpgated) serve(c net.Conn) {
	d.open.Add(1)
	defer d.open.Add(-1)
	defer c.Close()
	var prompt string
	for {
		frame, err := protocol.ReadFrame(c)
		if err != nil {
			return
		}
		req, err := protocol.DecodeRequest(frame)
		var resp *protocol.Response
		switch {
		case err != nil:
			resp = &protocol.Response{ResponseHeader: protocol.ResponseHeader{Error: &protocol.Error{Code: protocol.ErrBadRequest, Message: err.Error()}}}
		case d.old && req.Op == protocol.OpLoginStart:
			// What an otpgated that predates the dialogue answers.
			resp = &protocol.Response{ResponseHeader: protocol.ResponseHeader{Error: &protocol.Error{Code: protocol.ErrBadRequest, Message: "unknown operation"}}}
		default:
			var step *protocol.LoginStep
			step, prompt = d.step(req, prompt)
			resp = &protocol.Response{ResponseHeader: protocol.ResponseHeader{ID: req.ID}, StepReply: protocol.StepReply{Step: step}}
		}
		resp.V = protocol.Version
		payload, err := protocol.EncodeResponse(resp)
		if err != nil || protocol.WriteFrame(c, payload) != nil || resp.Error != nil || resp.Step.Verdict != "" {
			return
		}
	}
}

// step answers one request of a dialogue whose code prompt is prompt.
func (d *fakeOtpgated) step(req *protocol.Request, prompt string) (*protocol.LoginStep, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken {
		return &protocol.LoginStep{}, prompt
	}
	ask := func(msgs ...protocol.LoginMessage) *protocol.LoginStep {
		return &protocol.LoginStep{Messages: msgs, Prompts: []protocol.LoginPrompt{{Text: prompt}}}
	}
	errorMsg := func(text string) protocol.LoginMessage {
		return protocol.LoginMessage{Style: protocol.MessageError, Text: text}
	}
	if req.Op == protocol.OpLoginStart {
		d.starts = append(d.starts, *req)
		if d.first != nil {
			return d.first, prompt
		}
		if prompt = req.Login.Prompt; prompt == "" {
			prompt = fakePrompt
		}
		return ask(), prompt
	}
	d.answers++
	answer := strings.ReplaceAll(strings.TrimSpace(req.Answers[0]), " ", "")
	switch {
	case d.recovery != "" && answer == d.recovery:
		d.recovery = ""
		st := &protocol.LoginStep{Verdict: protocol.VerdictSuccess}
		if d.recoveryMessage != "" {
			st.Messages = []protocol.LoginMessage{{Style: protocol.MessageInfo, Text: d.recoveryMessage}}
		}
		return st, prompt
	case len(answer) != 6 || strings.Trim(answer, "0123456789") != "":
		return ask(errorMsg(fakeFormat)), prompt
	case answer == d.code && !d.used:
		d.used = true
		return &protocol.LoginStep{Verdict: protocol.VerdictSuccess}, prompt
	case answer == d.code:
		return &protocol.LoginStep{Verdict: protocol.VerdictDeny, Messages: []protocol.LoginMessage{errorMsg(fakeCodeUsed)}}, prompt
	}
	d.failures++
	if d.maxFailures > 0 && d.failures >= d.maxFailures {
		return &protocol.LoginStep{Verdict: protocol.VerdictRefused, Messages: []protocol.LoginMessage{errorMsg(fakeLocked)}}, prompt
	}
	return &protocol.LoginStep{Verdict: protocol.VerdictDeny, Messages: []protocol.LoginMessage{errorMsg(fakeWrongCode)}}, prompt
}

// skipAll makes every dialogue end at once with the skip verdict (an
// exempt user).
func (d *fakeOtpgated) skipAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.first = &protocol.LoginStep{Verdict: protocol.VerdictSkip}
}

// set changes the fake under its lock.
func (d *fakeOtpgated) set(f func(d *fakeOtpgated)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d)
}

// counts returns how many dialogues were started and answers relayed.
func (d *fakeOtpgated) counts() (starts, answers int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.starts), d.answers
}

// lastStart returns the last login_start request.
func (d *fakeOtpgated) lastStart() protocol.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.starts[len(d.starts)-1]
}

// requireRoot fails (never skips) when the test cannot create files owned
// by another user or run processes as one.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test must run as root (make test runs it as root): it creates files owned by and runs processes as another uid")
	}
}

// newSigner returns a fresh ed25519 signer.
func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testEnv is a running server with one test account.
type testEnv struct {
	t      *testing.T
	srv    *Server
	addr   string
	daemon *fakeOtpgated
	home   string
	logs   *testutil.SyncBuffer
	cancel context.CancelFunc
}

// startServer runs a Server on loopback for the test account, whose
// authorized_keys holds authorized (one line each, may carry options).
// mod adjusts the configuration.
func startServer(t *testing.T, authorized []string, mod func(*Config)) *testEnv {
	t.Helper()
	requireRoot(t)
	base, err := os.MkdirTemp("", "otpgate-sshd-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(base, "home")
	sshDir := filepath.Join(home, ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sshDir, "authorized_keys"), []byte(strings.Join(authorized, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{home, sshDir, filepath.Join(sshDir, "authorized_keys")} {
		if err := os.Chown(p, testUID, testGID); err != nil {
			t.Fatal(err)
		}
	}
	useUsers(t, accounts.User{Name: "root", Home: "/root", Shell: "/bin/sh"},
		accounts.User{Name: testUser, UID: testUID, GID: testGID, Home: home, Shell: "/bin/sh"})

	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.HostKeyDir = filepath.Join(base, "hostkeys")
	cfg.LoginGraceTime = Duration{Duration: 5 * time.Second}
	cfg.ClientAliveInterval = Duration{}
	cfg.PerSourceMaxStartups = 0
	// The test account exists only in the test's passwd file, which the
	// system's PAM modules do not read (integration tests run PAM).
	cfg.UsePAM = false
	if mod != nil {
		mod(&cfg)
	}
	signers, err := LoadHostKeys(cfg.HostKeyDir, cfg.HostKeyTypes)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	srv, err := New(&cfg, signers, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Login records go to the test's own files, never the host's.
	srv.records = loginFiles{UTMP: filepath.Join(base, "utmp"), WTMP: filepath.Join(base, "wtmp")}
	d := startFakeOtpgated(t)
	srv.newDaemon = func(*Config) daemonClient { return &protocol.Client{Socket: d.socket, Timeout: 5 * time.Second} }
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	e := &testEnv{t: t, srv: srv, addr: ln.Addr().String(), daemon: d, home: home, logs: logs, cancel: cancel}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if strings.Contains(logs.String(), d.code) {
			t.Errorf("the server log contains the code %q", d.code)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return e
}

// authorizedLine renders a key as an authorized_keys line with options.
func authorizedLine(s ssh.Signer, options string) string {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
	if options != "" {
		return options + " " + line
	}
	return line
}

// clientResult records what a client saw during authentication.
type clientResult struct {
	prompts   int
	banners   []string
	instructs []string
	// questions are the questions asked, in order.
	questions []string
	// said are the instructions of challenges without questions: what
	// the server said before a verdict.
	said []string
}

// dial connects as user with the given auth methods; answer, if not nil,
// answers keyboard-interactive prompts.
func (e *testEnv) dial(user string, signers []ssh.Signer, answer func(try int) []string) (*ssh.Client, *clientResult, error) {
	e.t.Helper()
	res := &clientResult{}
	var mu sync.Mutex
	auth := []ssh.AuthMethod{ssh.PublicKeys(signers...)}
	if answer != nil {
		// Tries again after a failure, as OpenSSH's client does
		// (NumberOfPasswordPrompts).
		auth = append(auth, ssh.RetryableAuthMethod(ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
			mu.Lock()
			defer mu.Unlock()
			if len(questions) == 0 {
				res.said = append(res.said, instruction)
				return nil, nil
			}
			res.prompts++
			res.instructs = append(res.instructs, instruction)
			res.questions = append(res.questions, questions...)
			return answer(res.prompts), nil
		}), 3))
	}
	cfg := &ssh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		BannerCallback: func(msg string) error {
			mu.Lock()
			defer mu.Unlock()
			res.banners = append(res.banners, msg)
			return nil
		},
		Timeout: 10 * time.Second,
	}
	c, err := ssh.Dial("tcp", e.addr, cfg)
	return c, res, err
}

// run executes cmd in a new session and returns its output and exit
// status.
func run(t *testing.T, c *ssh.Client, cmd string, setup func(*ssh.Session)) (string, int) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if setup != nil {
		setup(s)
	}
	out, err := s.CombinedOutput(cmd)
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitStatus()
	}
	t.Fatalf("run %q: %v (output %q)", cmd, err, out)
	return "", 0
}

// fakeMeta is ConnMetadata for calling callbacks directly.
type fakeMeta struct{ user string }

func (m fakeMeta) User() string          { return m.user }
func (m fakeMeta) SessionID() []byte     { return []byte("session") }
func (m fakeMeta) ClientVersion() []byte { return []byte("SSH-2.0-test") }
func (m fakeMeta) ServerVersion() []byte { return []byte("SSH-2.0-otpgate") }
func (m fakeMeta) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000}
}
func (m fakeMeta) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22} }

var _ io.Writer = (*testutil.SyncBuffer)(nil)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func mkfifoErr(p string) error { return syscall.Mkfifo(p, 0o600) }
