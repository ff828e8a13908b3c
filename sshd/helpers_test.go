package sshd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/otpgate/otpgate/internal/protocol"
)

// Test account: a uid/gid no real user has, with a home under a temp dir.
const (
	testUser = "otpgtest"
	testUID  = 48213
	testGID  = 48213
)

// recordingDaemon answers check and verify like otpgated would for one
// enrolled user whose valid code is code, and records every request. It is
// used only by unit tests, which need to see whether the daemon was asked
// at all; the integration suite runs the real otpgated.
type recordingDaemon struct {
	mu       sync.Mutex
	requests []protocol.Request
	// check is the outcome of OpCheck (default code_required).
	check protocol.Outcome
	// checkErr, if set, is returned for every request.
	err error
	// noResult makes replies carry no VerifyResult.
	noResult bool
	// code is the one code verify accepts (once: then replay).
	code string
	used bool
	// recovery, if set, is accepted once as a recovery code with
	// recoveryMessage.
	recovery        string
	recoveryMessage string
}

func (d *recordingDaemon) Do(_ context.Context, req *protocol.Request) (*protocol.Response, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.requests = append(d.requests, *req)
	if d.err != nil {
		return nil, d.err
	}
	if d.noResult {
		return &protocol.Response{}, nil
	}
	switch req.Op {
	case protocol.OpCheck:
		out := d.check
		if out == "" {
			out = protocol.OutcomeCodeRequired
		}
		res := &protocol.VerifyResult{Outcome: out, Digits: 6}
		switch out {
		case protocol.OutcomeEnrollRequired:
			res.Message = "enroll first"
		case protocol.OutcomeLocked:
			res.Message = "locked out"
		}
		return &protocol.Response{Verify: res}, nil
	case protocol.OpVerify:
		switch {
		case d.recovery != "" && req.Code == d.recovery:
			d.recovery = ""
			return &protocol.Response{Verify: &protocol.VerifyResult{Outcome: protocol.OutcomeAccept, Recovery: true, Message: d.recoveryMessage}}, nil
		case req.Code == d.code && !d.used:
			d.used = true
			return &protocol.Response{Verify: &protocol.VerifyResult{Outcome: protocol.OutcomeAccept}}, nil
		case req.Code == d.code:
			return &protocol.Response{Verify: &protocol.VerifyResult{Outcome: protocol.OutcomeReplay}}, nil
		}
		return &protocol.Response{Verify: &protocol.VerifyResult{Outcome: protocol.OutcomeReject}}, nil
	}
	return nil, &protocol.Error{Code: protocol.ErrBadRequest, Message: "unexpected op"}
}

// ops returns the operations received, in order.
func (d *recordingDaemon) ops() []protocol.Op {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ops []protocol.Op
	for _, r := range d.requests {
		ops = append(ops, r.Op)
	}
	return ops
}

func (d *recordingDaemon) last() protocol.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.requests[len(d.requests)-1]
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
	daemon *recordingDaemon
	home   string
	logs   *syncBuffer
	cancel context.CancelFunc
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
	passwd := filepath.Join(base, "passwd")
	entry := fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\n%s:x:%d:%d::%s:/bin/sh\n", testUser, testUID, testGID, home)
	if err := os.WriteFile(passwd, []byte(entry), 0o644); err != nil {
		t.Fatal(err)
	}
	old := passwdFile
	passwdFile = passwd
	t.Cleanup(func() { passwdFile = old })

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
	logs := &syncBuffer{}
	srv, err := New(&cfg, signers, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Login records go to the test's own files, never the host's.
	srv.records = loginFiles{UTMP: filepath.Join(base, "utmp"), WTMP: filepath.Join(base, "wtmp")}
	d := &recordingDaemon{code: "123456"}
	srv.newDaemon = func(*Config) daemonClient { return d }
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
		srv.Shutdown(sctx)
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
}

// dial connects as user with the given auth methods; answer, if not nil,
// answers keyboard-interactive prompts.
func (e *testEnv) dial(user string, signers []ssh.Signer, answer func(try int) []string) (*ssh.Client, *clientResult, error) {
	e.t.Helper()
	res := &clientResult{}
	var mu sync.Mutex
	auth := []ssh.AuthMethod{ssh.PublicKeys(signers...)}
	if answer != nil {
		auth = append(auth, ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
			mu.Lock()
			defer mu.Unlock()
			if len(questions) == 0 {
				return nil, nil
			}
			res.prompts++
			res.instructs = append(res.instructs, instruction)
			return answer(res.prompts), nil
		}))
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

var _ io.Writer = (*syncBuffer)(nil)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func mkfifoErr(p string) error { return syscall.Mkfifo(p, 0o600) }
