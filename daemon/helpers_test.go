//go:build root

package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon/seal"
	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/daemon/store/bolt"
	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
	"github.com/otpgate/otpgate/otp"
)

// Test users: real accounts of every Debian system, so that the daemon's
// user lookups and peer-credential checks are the real ones.
const (
	alice    = "daemon" // uid 1
	aliceUID = 1
	bob      = "bin" // uid 2
	bobUID   = 2
)

// TestMain doubles as a socket client run under another uid (see
// clientAs): the peer-credential matrix needs real non-root processes.
func TestMain(m *testing.M) {
	switch os.Getenv("OTPGATE_TEST_CLIENT") {
	case "1":
		os.Exit(clientMain())
	case "hold":
		os.Exit(holdMain())
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "daemon tests must run as root (they read peer credentials and switch uids); run make test as root")
		os.Exit(1)
	}
	code := m.Run()
	if clientBin != "" {
		os.RemoveAll(filepath.Dir(clientBin))
	}
	os.Exit(code)
}

// holdMain connects, says so on stdout, and keeps the connection open
// until stdin closes.
func holdMain() int {
	c, err := net.Dial("unix", os.Getenv("OTPGATE_SOCKET"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer c.Close()
	// A ping answered proves the daemon has accepted and counted us.
	if err := protocol.WriteFrame(c, []byte(`{"v":1,"id":7,"op":"ping"}`)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if _, err := protocol.ReadFrame(c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	fmt.Println("connected")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// holdAs keeps one connection open from a process running as uid until
// the test ends. It returns once the connection is established.
func holdAs(t *testing.T, socket string, uid uint32) {
	t.Helper()
	cmd := exec.Command(clientBinary(t), "-test.run=^$")
	cmd.Env = []string{"OTPGATE_TEST_CLIENT=hold", "OTPGATE_SOCKET=" + socket}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "connected\n" {
		t.Fatalf("holding client as uid %d: %q %v", uid, line, err)
	}
}

type clientResult struct {
	Resp *protocol.Response `json:"resp"`
	Err  string             `json:"err"`
}

func clientMain() int {
	var reqs []*protocol.Request
	if err := json.NewDecoder(os.Stdin).Decode(&reqs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	c := protocol.Client{Socket: os.Getenv("OTPGATE_SOCKET")}
	results := make([]clientResult, len(reqs))
	var dlg *protocol.Dialogue // a login_answer answers the last login_start
	defer func() {
		if dlg != nil {
			dlg.Close()
		}
	}()
	for i, req := range reqs {
		var resp *protocol.Response
		var err error
		switch {
		case req.Op == protocol.OpLoginStart:
			if dlg != nil {
				dlg.Close()
			}
			var st *protocol.LoginStep
			if dlg, st, err = c.StartDialogue(req); err == nil {
				resp = &protocol.Response{StepReply: protocol.StepReply{Step: st}}
			}
		case req.Op == protocol.OpLoginAnswer && dlg != nil:
			var st *protocol.LoginStep
			if st, err = dlg.Answer(req.Answers); err == nil {
				resp = &protocol.Response{StepReply: protocol.StepReply{Step: st}}
			}
		default:
			resp, err = c.Do(context.Background(), req)
		}
		results[i].Resp = resp
		if err != nil {
			results[i].Err = err.Error()
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		return 3
	}
	return 0
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	// Mid-step, so codes do not straddle a step boundary by accident.
	return &testClock{t: time.Unix(1_800_000_015, 0)}
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testDaemon struct {
	t      testing.TB
	cfg    *config.Config
	clock  *testClock
	log    *testutil.SyncBuffer
	srv    *Server
	db     *bolt.DB
	sealer *seal.Sealer
	cancel context.CancelFunc
	done   chan error
	// host, when set, is the server's host name (WithHostname).
	host string
}

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg := config.Default()
	// Other uids must reach the socket: t.TempDir's parent is 0700.
	base, err := os.MkdirTemp("", "otpgated-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Daemon.Socket = filepath.Join(base, "run", "otpgated.sock")
	cfg.Daemon.StateDir = filepath.Join(base, "state")
	return &cfg
}

// startDaemon runs a real Server with a real bolt store on a real socket.
func startDaemon(t testing.TB, cfg *config.Config, clock *testClock) *testDaemon {
	t.Helper()
	return startDaemonOn(t, cfg, clock, "")
}

// startDaemonOn is startDaemon for a server whose host name is host ("":
// the machine's).
func startDaemonOn(t testing.TB, cfg *config.Config, clock *testClock, host string) *testDaemon {
	t.Helper()
	if clock == nil {
		clock = newTestClock()
	}
	d := &testDaemon{t: t, cfg: cfg, clock: clock, log: &testutil.SyncBuffer{}, host: host}
	d.start()
	t.Cleanup(d.stop)
	return d
}

func (d *testDaemon) start() {
	t := d.t
	t.Helper()
	dir := d.cfg.Daemon.StateDir
	if err := store.PrepareStateDir(dir); err != nil {
		t.Fatal(err)
	}
	key, err := seal.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	d.sealer = sealer
	if d.db, err = bolt.Open(dir); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(d.cfg.Daemon.Socket)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(d.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := []Option{WithClock(d.clock), WithLogger(logger)}
	if d.host != "" {
		opts = append(opts, WithHostname(d.host))
	}
	d.srv = New(d.cfg, d.db, sealer, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.done = make(chan error, 1)
	go func() { d.done <- d.srv.Serve(ctx, ln, 2*time.Second) }()
}

func (d *testDaemon) stop() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	if err := <-d.done; err != nil {
		d.t.Errorf("Serve: %v", err)
	}
	if err := d.db.Close(); err != nil {
		d.t.Errorf("close store: %v", err)
	}
	d.cancel = nil
	if d.t.Failed() {
		d.t.Logf("daemon log:\n%s", d.log.String())
	}
}

func (d *testDaemon) restart() {
	d.t.Helper()
	d.stop()
	d.start()
}

func (d *testDaemon) client() *protocol.Client {
	return &protocol.Client{Socket: d.cfg.Daemon.Socket, Timeout: 10 * time.Second}
}

// do sends a request as root.
func (d *testDaemon) do(req *protocol.Request) (*protocol.Response, error) {
	return d.client().Do(context.Background(), req)
}

// mustDo sends a request as root and fails the test on any error reply.
func (d *testDaemon) mustDo(req *protocol.Request) *protocol.Response {
	d.t.Helper()
	resp, err := d.do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", req.Op, req.User, err)
	}
	return resp
}

// dialogueRun is one login dialogue: every step otpgated gave, in order.
type dialogueRun struct {
	steps []*protocol.LoginStep
}

// last is the step with the verdict (or the last one asked).
func (r dialogueRun) last() *protocol.LoginStep { return r.steps[len(r.steps)-1] }

// texts joins every message of every step.
func (r dialogueRun) texts() string {
	var b strings.Builder
	for _, st := range r.steps {
		for _, m := range st.Messages {
			b.WriteString(m.Text + "\n")
		}
	}
	return b.String()
}

// login runs a dialogue for start, answering each step's prompt with the
// next of answers (a function, so that an answer can depend on what the
// steps showed), until a verdict or the answers run out.
func (d *testDaemon) login(start protocol.Request, answers ...func(dialogueRun) string) dialogueRun {
	d.t.Helper()
	start.Op = protocol.OpLoginStart
	if start.Login == nil {
		start.Login = &protocol.LoginStart{}
	}
	if start.Service == "" {
		start.Service = "sshd"
	}
	dlg, step, err := d.client().StartDialogue(&start)
	if err != nil {
		d.t.Fatalf("login_start: %v", err)
	}
	defer dlg.Close()
	run := dialogueRun{steps: []*protocol.LoginStep{step}}
	for step.Verdict == "" && len(answers) > 0 {
		a := answers[0](run)
		answers = answers[1:]
		if step, err = dlg.Answer([]string{a}); err != nil {
			d.t.Fatalf("login_answer after %d steps: %v", len(run.steps), err)
		}
		run.steps = append(run.steps, step)
	}
	return run
}

// says is an answer given whatever the dialogue showed.
func says(s string) func(dialogueRun) string { return func(dialogueRun) string { return s } }

// tryLogin runs a login dialogue as root for req's user and context
// (service "test" unless given): login_start, then code as the answer if
// the first step asks for one. It returns the last step; it may be called
// from any goroutine.
func (d *testDaemon) tryLogin(req protocol.Request, code string) (*protocol.LoginStep, error) {
	if req.Service == "" {
		req.Service = "test"
	}
	st, err := testutil.Login(d.client(), req, code)
	if err != nil {
		return nil, fmt.Errorf("login of %s: %w", req.User, err)
	}
	return st, nil
}

// loginCode is tryLogin failing the test on an error reply.
func (d *testDaemon) loginCode(req protocol.Request, code string) *protocol.LoginStep {
	d.t.Helper()
	st, err := d.tryLogin(req, code)
	if err != nil {
		d.t.Fatal(err)
	}
	return st
}

// verify logs user in as root with code and returns the last step.
func (d *testDaemon) verify(user, code string) *protocol.LoginStep {
	d.t.Helper()
	return d.loginCode(protocol.Request{User: user}, code)
}

// startLogin opens a login dialogue as root for req's user and context and
// returns its first step (what the login asks or decides before any code).
func (d *testDaemon) startLogin(req protocol.Request) *protocol.LoginStep {
	d.t.Helper()
	if req.Service == "" {
		req.Service = "test"
	}
	return d.login(req).last()
}

// asksCode reports whether st asks for an answer (a code) rather than
// giving a verdict.
func asksCode(st *protocol.LoginStep) bool { return st.Verdict == "" && len(st.Prompts) > 0 }

// stepText joins st's messages.
func stepText(st *protocol.LoginStep) string {
	var b strings.Builder
	for _, m := range st.Messages {
		b.WriteString(m.Text + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// shows reports whether st is what a login dialogue shows for a decision
// of outcome o: its verdict, and the words that tell such decisions apart
// (a failure that starts a lockout is refused, its words followed by the
// lockout's).
func shows(st *protocol.LoginStep, o protocol.Outcome) bool {
	text := stepText(st)
	failed := st.Verdict == protocol.VerdictDeny || st.Verdict == protocol.VerdictRefused
	locked := st.Verdict == protocol.VerdictRefused && strings.HasPrefix(text, "Too many failed attempts")
	switch o {
	case protocol.OutcomeAccept, protocol.OutcomeRemembered:
		return st.Verdict == protocol.VerdictSuccess
	case protocol.OutcomeExempt, protocol.OutcomeNotEnrolled:
		return st.Verdict == protocol.VerdictSkip
	case protocol.OutcomeCodeRequired:
		return asksCode(st) && text == ""
	case protocol.OutcomeEnrollOffered:
		return asksCode(st) && strings.Contains(text, textEnrollKey)
	case protocol.OutcomeEnrollRequired:
		return st.Verdict == protocol.VerdictRefused && strings.Contains(text, "two-factor authentication is not set up")
	case protocol.OutcomeLocked:
		return locked
	case protocol.OutcomeReplay:
		return failed && strings.HasPrefix(text, "This code was already used")
	case protocol.OutcomeReject:
		return failed && (strings.HasPrefix(text, textWrongCode) || text == textCodeBurned)
	}
	return false
}

// enrollKey is the secret an enrollment offer shows to type into the app,
// nil if st shows none.
func enrollKey(st *protocol.LoginStep) []byte {
	_, k, ok := strings.Cut(stepText(st), textEnrollKey)
	if !ok {
		return nil
	}
	secret, err := otp.DecodeSecret(strings.TrimSpace(k))
	if err != nil {
		return nil
	}
	return secret
}

// enrollAtLogin runs a login of req that enrolls: it answers the offer
// with the current code of the key shown, then the recovery codes' prompt.
// It returns the key and the dialogue's steps; the test fails unless the
// login succeeds.
func (d *testDaemon) enrollAtLogin(req protocol.Request) ([]byte, dialogueRun) {
	d.t.Helper()
	var secret []byte
	run := d.login(req, func(r dialogueRun) string {
		if secret = enrollKey(r.last()); secret == nil {
			d.t.Fatalf("the login offers no key: %+v", r.last())
		}
		return d.code(secret, 0)
	}, says(""))
	d.mustSucceed(run.last())
	return secret, run
}

// mustSucceed fails the test unless st is a success verdict.
func (d *testDaemon) mustSucceed(st *protocol.LoginStep) {
	d.t.Helper()
	if st.Verdict != protocol.VerdictSuccess {
		d.t.Fatalf("login: %s %q, want success", st.Verdict, stepText(st))
	}
}

// rawExchange sends payload as one frame on a new connection, as root,
// and returns the decoded reply (for requests Client.Do would not encode).
func (d *testDaemon) rawExchange(payload []byte) *protocol.Response {
	d.t.Helper()
	c, err := net.Dial("unix", d.cfg.Daemon.Socket)
	if err != nil {
		d.t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		d.t.Fatal(err)
	}
	if err := protocol.WriteFrame(c, payload); err != nil {
		d.t.Fatal(err)
	}
	reply, err := protocol.ReadFrame(c)
	if err != nil {
		d.t.Fatalf("no reply to %s: %v", payload, err)
	}
	resp, err := protocol.DecodeResponse(reply)
	if err != nil {
		d.t.Fatalf("reply %s: %v", reply, err)
	}
	return resp
}

// importUser enrolls user with a fresh random secret and returns it.
func (d *testDaemon) importUser(user string, recovery ...string) []byte {
	d.t.Helper()
	secret, err := otp.GenerateSecret(20)
	if err != nil {
		d.t.Fatal(err)
	}
	d.mustDo(&protocol.Request{Op: protocol.OpAdminImport, User: user, Import: &protocol.Import{
		Secret: otp.EncodeSecret(secret), Algorithm: "SHA1", Digits: 6, Period: 30, RecoveryCodes: recovery, Replace: true,
	}})
	return secret
}

// code is the TOTP code for secret at the daemon's clock plus offset steps.
func (d *testDaemon) code(secret []byte, offsetSteps int) string {
	return otp.TOTP(secret, d.clock.Now().Add(time.Duration(offsetSteps)*30*time.Second), otp.DefaultParams())
}

// oathtoolCode asks the independent generator for the code at the
// daemon's clock.
func (d *testDaemon) oathtoolCode(secret []byte) string {
	d.t.Helper()
	path, err := exec.LookPath("oathtool")
	if err != nil {
		d.t.Fatal("oathtool not found: apt-get install oathtool")
	}
	out, err := exec.Command(path, "--totp", "-b", "--now", d.clock.Now().UTC().Format("2006-01-02 15:04:05 UTC"), otp.EncodeSecret(secret)).Output()
	if err != nil {
		d.t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// clientAs sends req from a separate process running as uid, and returns
// the reply or the error text.
func (d *testDaemon) clientAs(uid uint32, req *protocol.Request) (*protocol.Response, string) {
	d.t.Helper()
	res := d.clientAsMany(uid, []*protocol.Request{req})
	return res[0].Resp, res[0].Err
}

// clientAsMany sends reqs in order from one process running as uid. A
// login_start opens a dialogue that the login_answer requests after it
// answer, on its connection.
func (d *testDaemon) clientAsMany(uid uint32, reqs []*protocol.Request) []clientResult {
	d.t.Helper()
	body, err := json.Marshal(reqs)
	if err != nil {
		d.t.Fatal(err)
	}
	cmd := exec.Command(clientBinary(d.t), "-test.run=^$")
	cmd.Env = []string{"OTPGATE_TEST_CLIENT=1", "OTPGATE_SOCKET=" + d.cfg.Daemon.Socket}
	cmd.Stdin = bytes.NewReader(body)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		d.t.Fatalf("client as uid %d: %v: %s", uid, err, stderr.String())
	}
	var res []clientResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(reqs) {
		d.t.Fatalf("client output %q: %v", out, err)
	}
	return res
}

// errCode extracts the protocol error code from an error.
func errCode(err error) protocol.ErrorCode {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

var (
	clientBinOnce sync.Once
	clientBin     string
	clientBinErr  error
)

// clientBinary is a copy of the test binary that other uids can execute
// (go test builds into a 0700 directory).
func clientBinary(t testing.TB) string {
	t.Helper()
	clientBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "otpgate-client-")
		if err != nil {
			clientBinErr = err
			return
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			clientBinErr = err
			return
		}
		data, err := os.ReadFile(os.Args[0])
		if err != nil {
			clientBinErr = err
			return
		}
		clientBin = filepath.Join(dir, "client")
		clientBinErr = os.WriteFile(clientBin, data, 0o755)
	})
	if clientBinErr != nil {
		t.Fatalf("prepare client binary: %v", clientBinErr)
	}
	return clientBin
}

// rawStore returns the bytes of every state file but the key, as text.
func (d *testDaemon) rawStore(t *testing.T) string {
	t.Helper()
	entries, err := os.ReadDir(d.cfg.Daemon.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, e := range entries {
		if e.Name() == "secret.key" || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.cfg.Daemon.StateDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return string(all)
}
