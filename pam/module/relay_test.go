//go:build root

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msteinert/pam/v2"

	"github.com/otpgate/otpgate/internal/protocol"
)

// fakeOtpgated is a stand-in for otpgated on a Unix socket in the test's
// directory: it speaks the framed protocol and answers each request of a
// connection with what its script returns (nil drops the connection).
// The client talks only to a root server, so these tests run as root.
type fakeOtpgated struct {
	socket string
	script func(n int, req *protocol.Request) *protocol.Response

	mu       sync.Mutex
	requests []*protocol.Request
}

func newFakeOtpgated(t *testing.T, script func(n int, req *protocol.Request) *protocol.Response) *fakeOtpgated {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test must run as root: the module talks only to an otpgated run by root")
	}
	f := &fakeOtpgated{socket: filepath.Join(t.TempDir(), "otpgated.sock"), script: script}
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return f
}

// serve runs one connection (one dialogue).
func (f *fakeOtpgated) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for n := 0; ; n++ {
		frame, err := protocol.ReadFrame(c)
		if err != nil {
			return
		}
		req, err := protocol.DecodeRequest(frame)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.requests = append(f.requests, req)
		f.mu.Unlock()
		resp := f.script(n, req)
		if resp == nil {
			return
		}
		resp.V, resp.ID = protocol.Version, req.ID
		b, err := protocol.EncodeResponse(resp)
		if err != nil || protocol.WriteFrame(c, b) != nil {
			return
		}
	}
}

func (f *fakeOtpgated) requestsSeen() []*protocol.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*protocol.Request(nil), f.requests...)
}

// steps is a script that answers the n-th request of a dialogue with the
// n-th step.
func steps(st ...*protocol.LoginStep) func(int, *protocol.Request) *protocol.Response {
	return func(n int, _ *protocol.Request) *protocol.Response {
		if n >= len(st) {
			return nil
		}
		return &protocol.Response{StepReply: protocol.StepReply{Step: st[n]}}
	}
}

// errorReply is a script that answers with an error reply.
func errorReply(code protocol.ErrorCode, msg string) func(int, *protocol.Request) *protocol.Response {
	return func(int, *protocol.Request) *protocol.Response {
		return &protocol.Response{ResponseHeader: protocol.ResponseHeader{Error: &protocol.Error{Code: code, Message: msg}}}
	}
}

// fakeSession is a PAM transaction without libpam: items, environment, a
// record of every conversation call, and the answers the person types.
type fakeSession struct {
	user  string
	items map[pam.Item]string
	env   map[string]string
	app   string
	// typed are the answers to the prompts, in order.
	typed []string

	calls   [][]convMessage
	given   [][]byte // every answer handed to the module, to check wiping
	authtok *string
}

func newFakeSession(typed ...string) *fakeSession {
	return &fakeSession{user: "alice",
		items: map[pam.Item]string{pam.Service: "sshd", pam.Rhost: "192.0.2.7", pam.Tty: "ssh"},
		env:   map[string]string{"SSH_AUTH_INFO_0": "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOh3k8n0uX1cJ0V0WqQ6mYtZl4kq8s1R3xgk2nq9aO4b\n"},
		app:   "/usr/bin/pamtester", typed: typed}
}

func (f *fakeSession) GetUser(string) (string, error)     { return f.user, nil }
func (f *fakeSession) GetItem(i pam.Item) (string, error) { return f.items[i], nil }
func (f *fakeSession) GetEnv(name string) string          { return f.env[name] }
func (f *fakeSession) application() string                { return f.app }
func (f *fakeSession) syslog(prio priority, line string) {
	if logSink != nil {
		logSink(prio, line)
	}
}
func (f *fakeSession) setAuthtok(tok string) error {
	f.authtok = &tok
	return nil
}

func (f *fakeSession) converse(msgs []convMessage) ([][]byte, error) {
	f.calls = append(f.calls, append([]convMessage(nil), msgs...))
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		if !m.prompt() {
			continue
		}
		if len(f.typed) == 0 {
			return nil, errors.New("fakeSession: nothing more is typed")
		}
		out[i] = []byte(f.typed[0])
		f.typed = f.typed[1:]
		f.given = append(f.given, out[i])
	}
	return out, nil
}

// transcript renders the conversation: one line per call, each message
// as style:text.
func (f *fakeSession) transcript() []string {
	names := map[pam.Style]string{pam.TextInfo: "info", pam.ErrorMsg: "error", pam.PromptEchoOff: "ask", pam.PromptEchoOn: "ask-echo"}
	var out []string
	for _, call := range f.calls {
		var parts []string
		for _, m := range call {
			parts = append(parts, names[m.style]+":"+m.text)
		}
		out = append(out, strings.Join(parts, " | "))
	}
	return out
}

// captureLog collects the module's log lines for one test.
func captureLog(t *testing.T) *[]string {
	var mu sync.Mutex
	var lines []string
	prev := logSink
	logSink = func(_ priority, line string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, line)
	}
	t.Cleanup(func() { logSink = prev })
	return &lines
}

var (
	codePrompt = protocol.LoginPrompt{Text: "Verification code: "}
	askCode    = &protocol.LoginStep{Prompts: []protocol.LoginPrompt{codePrompt}}
	unavailErr = "error:" + protocol.UnavailableText
)

func info(text string) protocol.LoginMessage {
	return protocol.LoginMessage{Style: protocol.MessageInfo, Text: text}
}
func errMsg(text string) protocol.LoginMessage {
	return protocol.LoginMessage{Style: protocol.MessageError, Text: text}
}

// TestVerdicts maps each verdict to its PAM code and shows its last
// words; refused is the code that stops the application asking again.
func TestVerdicts(t *testing.T) {
	tests := []struct {
		name       string
		app        string
		args       []string
		last       *protocol.LoginStep
		want       int
		transcript []string
		authtok    string // "-" when PAM_AUTHTOK must stay unset
	}{
		{"success", "/usr/sbin/sshd", nil, &protocol.LoginStep{Verdict: protocol.VerdictSuccess}, 0,
			[]string{"ask:Verification code: "}, "-"},
		{"success with a note", "/usr/sbin/sshd", nil,
			&protocol.LoginStep{Verdict: protocol.VerdictSuccess, Messages: []protocol.LoginMessage{info("Recovery code accepted; 7 left.")}}, 0,
			[]string{"ask:Verification code: ", "info:Recovery code accepted; 7 left."}, "-"},
		{"success hands the password on with password_and_code", "/usr/sbin/sshd", []string{"password_and_code"},
			&protocol.LoginStep{Verdict: protocol.VerdictSuccess, AuthTok: "hunter2"}, 0,
			[]string{"ask:Verification code: "}, "hunter2"},
		{"an authtok without password_and_code is not set", "/usr/sbin/sshd", nil,
			&protocol.LoginStep{Verdict: protocol.VerdictSuccess, AuthTok: "hunter2"}, 0,
			[]string{"ask:Verification code: "}, "-"},
		{"skip lets the stack decide", "/usr/sbin/sshd", []string{"password_and_code"},
			&protocol.LoginStep{Verdict: protocol.VerdictSkip, AuthTok: "hunter2"}, int(pam.ErrIgnore),
			[]string{"ask:Verification code: "}, "hunter2"},
		{"deny", "/usr/sbin/sshd", nil,
			&protocol.LoginStep{Verdict: protocol.VerdictDeny, Messages: []protocol.LoginMessage{errMsg("Wrong code.")}}, int(pam.ErrAuth),
			[]string{"ask:Verification code: ", "error:Wrong code."}, "-"},
		{"deny never hands a password on", "/usr/sbin/sshd", []string{"password_and_code"},
			&protocol.LoginStep{Verdict: protocol.VerdictDeny, AuthTok: "hunter2"}, int(pam.ErrAuth),
			[]string{"ask:Verification code: "}, "-"},
		{"refused is PAM_MAXTRIES", "/usr/bin/pamtester", nil,
			&protocol.LoginStep{Verdict: protocol.VerdictRefused, Messages: []protocol.LoginMessage{errMsg("Too many wrong codes; try again in 5 minutes.")}}, int(pam.ErrMaxtries),
			[]string{"ask:Verification code: ", "error:Too many wrong codes; try again in 5 minutes."}, "-"},
		{"refused under sshd ends keyboard-interactive for the connection", "/usr/sbin/sshd", nil,
			&protocol.LoginStep{Verdict: protocol.VerdictRefused, Messages: []protocol.LoginMessage{errMsg("Too many wrong codes; try again in 5 minutes.")}}, int(pam.ErrAcctExpired),
			[]string{"ask:Verification code: ", "error:Too many wrong codes; try again in 5 minutes."}, "-"},
		{"refused under sshd-session (OpenSSH 9.8 on)", "/usr/lib/openssh/sshd-session", nil,
			&protocol.LoginStep{Verdict: protocol.VerdictRefused}, int(pam.ErrAcctExpired),
			[]string{"ask:Verification code: "}, "-"},
		{"refused under login is PAM_MAXTRIES", "/usr/bin/login", nil,
			&protocol.LoginStep{Verdict: protocol.VerdictRefused}, int(pam.ErrMaxtries),
			[]string{"ask:Verification code: "}, "-"},
		{"refused under sudo stops sudo asking again", "/usr/bin/sudo", nil,
			&protocol.LoginStep{Verdict: protocol.VerdictRefused, Messages: []protocol.LoginMessage{errMsg("Locked.")}}, int(pam.ErrCredInsufficient),
			[]string{"ask:Verification code: ", "error:Locked."}, "-"},
		{"unavailable shows the relay's text", "/usr/bin/pamtester", []string{"fail=open"},
			&protocol.LoginStep{Verdict: protocol.VerdictUnavailable}, int(pam.ErrAuthinfoUnavail),
			[]string{"ask:Verification code: ", unavailErr}, "-"},
		{"unavailable with otpgated's words", "/usr/bin/pamtester", nil,
			&protocol.LoginStep{Verdict: protocol.VerdictUnavailable, Messages: []protocol.LoginMessage{errMsg("The disk is full.")}}, int(pam.ErrAuthinfoUnavail),
			[]string{"ask:Verification code: ", "error:The disk is full. | " + unavailErr}, "-"},
		{"unavailable under sshd ends keyboard-interactive for the connection", "/usr/sbin/sshd", nil,
			&protocol.LoginStep{Verdict: protocol.VerdictUnavailable}, int(pam.ErrAcctExpired),
			[]string{"ask:Verification code: ", unavailErr}, "-"},
		{"unavailable under sudo stops sudo asking again", "/usr/bin/sudo", nil,
			&protocol.LoginStep{Verdict: protocol.VerdictUnavailable}, int(pam.ErrCredInsufficient),
			[]string{"ask:Verification code: ", unavailErr}, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeOtpgated(t, steps(askCode, tt.last))
			s := newFakeSession("123456")
			s.app = tt.app
			err := authenticate(s, append([]string{"socket=" + d.socket}, tt.args...))
			if got := pamStatus(err); got != tt.want {
				t.Errorf("status %d (%v), want %d", got, err, tt.want)
			}
			if got := s.transcript(); !reflect.DeepEqual(got, tt.transcript) {
				t.Errorf("transcript\n%q\nwant\n%q", got, tt.transcript)
			}
			switch {
			case tt.authtok == "-" && s.authtok != nil:
				t.Errorf("PAM_AUTHTOK set to %q", *s.authtok)
			case tt.authtok != "-" && (s.authtok == nil || *s.authtok != tt.authtok):
				t.Errorf("PAM_AUTHTOK = %v, want %q", s.authtok, tt.authtok)
			}
		})
	}
}

// TestSkipWithoutPrompt: otpgated's first step may be the verdict (not
// enrolled, exempt, remembered, locked): nothing is asked.
func TestSkipWithoutPrompt(t *testing.T) {
	for _, v := range []struct {
		verdict protocol.Verdict
		want    int
	}{{protocol.VerdictSkip, int(pam.ErrIgnore)}, {protocol.VerdictSuccess, 0}, {protocol.VerdictRefused, int(pam.ErrMaxtries)}} {
		d := newFakeOtpgated(t, steps(&protocol.LoginStep{Verdict: v.verdict}))
		s := newFakeSession()
		if got := pamStatus(authenticate(s, []string{"socket=" + d.socket})); got != v.want {
			t.Errorf("%s: status %d, want %d", v.verdict, got, v.want)
		}
		if len(s.calls) != 0 {
			t.Errorf("%s: conversation %q", v.verdict, s.transcript())
		}
	}
}

// TestStepRendering: a step's messages and all its prompts go to the
// application in one conversation call, in order, with their styles; the
// answers go back in one request, in order, and are wiped afterwards.
func TestStepRendering(t *testing.T) {
	enroll := &protocol.LoginStep{
		Messages: []protocol.LoginMessage{info("Scan this QR code:\n▀▄▀\n▄▀▄"), errMsg("That was not a code.")},
		Prompts:  []protocol.LoginPrompt{codePrompt, {Text: "Press Enter once you have saved them: ", Echo: true}},
	}
	d := newFakeOtpgated(t, steps(enroll, &protocol.LoginStep{Verdict: protocol.VerdictSuccess}))
	s := newFakeSession("512 397", "")
	if err := authenticate(s, []string{"socket=" + d.socket}); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	want := []string{"info:Scan this QR code:\n▀▄▀\n▄▀▄ | error:That was not a code. | ask:Verification code:  | ask-echo:Press Enter once you have saved them: "}
	if got := s.transcript(); !reflect.DeepEqual(got, want) {
		t.Errorf("transcript\n%q\nwant\n%q", got, want)
	}
	reqs := d.requestsSeen()
	if len(reqs) != 2 || reqs[1].Op != protocol.OpLoginAnswer || !reflect.DeepEqual(reqs[1].Answers, []string{"512 397", ""}) {
		t.Fatalf("requests %+v, want login_start then login_answer [512 397, \"\"]", reqs)
	}
	for _, a := range s.given {
		if strings.Trim(string(a), "\x00") != "" {
			t.Errorf("an answer was not wiped: %q", a)
		}
	}
}

// TestRetryStep: a malformed answer gets otpgated's message and the same
// prompt again; the relay just goes on.
func TestRetryStep(t *testing.T) {
	again := &protocol.LoginStep{Messages: []protocol.LoginMessage{errMsg("A code has 6 digits.")}, Prompts: []protocol.LoginPrompt{codePrompt}}
	d := newFakeOtpgated(t, steps(askCode, again, &protocol.LoginStep{Verdict: protocol.VerdictSuccess}))
	s := newFakeSession(strings.Repeat("9", 5000), "123456")
	if err := authenticate(s, []string{"socket=" + d.socket}); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	want := []string{"ask:Verification code: ", "error:A code has 6 digits. | ask:Verification code: "}
	if got := s.transcript(); !reflect.DeepEqual(got, want) {
		t.Errorf("transcript\n%q\nwant\n%q", got, want)
	}
	reqs := d.requestsSeen()
	if len(reqs) != 3 || len(reqs[1].Answers) != 1 || len(reqs[1].Answers[0]) != protocol.MaxAnswerLen || reqs[2].Answers[0] != "123456" {
		t.Errorf("the long paste was not sent cut to %d bytes for otpgated to refuse", protocol.MaxAnswerLen)
	}
}

// TestLoginStart: what PAM knows and the module's arguments reach
// otpgated; the module decides nothing itself (require_publickey is passed
// on, not checked).
func TestLoginStart(t *testing.T) {
	d := newFakeOtpgated(t, steps(&protocol.LoginStep{Verdict: protocol.VerdictSkip}))
	s := newFakeSession()
	s.env["SSH_AUTH_INFO_0"] = "keyboard-interactive/pam\n"
	s.items[pam.Authtok] = "the password"
	args := []string{"socket=" + d.socket, "prompt=Code from your phone: ", "password_and_code", "require_publickey", "enroll_after_password"}
	if got := pamStatus(authenticate(s, args)); got != int(pam.ErrIgnore) {
		t.Fatalf("status %d, want PAM_IGNORE", got)
	}
	reqs := d.requestsSeen()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	got := reqs[0]
	want := &protocol.Request{V: protocol.Version, ID: got.ID, Op: protocol.OpLoginStart, User: "alice", Service: "sshd", RHost: "192.0.2.7", TTY: "ssh",
		AuthInfo: "keyboard-interactive/pam\n", PriorFactor: protocol.PriorFactorPassword,
		Login: &protocol.LoginStart{Prompt: "Code from your phone: ", PasswordAndCode: true, RequirePublicKey: true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("login_start\n%+v %+v\nwant\n%+v %+v", got, got.Login, want, want.Login)
	}
}

// TestUnreachable: fail=open lets the stack decide only when otpgated
// cannot be reached; closed, the person reads the relay's one text.
func TestUnreachable(t *testing.T) {
	absent := "socket=" + filepath.Join(t.TempDir(), "absent.sock")
	tests := []struct {
		name       string
		args       []string
		want       int
		transcript []string
	}{
		{"closed", []string{absent}, int(pam.ErrAuthinfoUnavail), []string{unavailErr}},
		{"fail=open", []string{absent, "fail=open"}, int(pam.ErrIgnore), nil},
		// Only otpgated can check the key: require_publickey never steps
		// aside for a login sshd may have let in without one.
		{"fail=open does not apply with require_publickey", []string{absent, "fail=open", "require_publickey"}, int(pam.ErrAuthinfoUnavail), []string{unavailErr}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := captureLog(t)
			s := newFakeSession()
			if got := pamStatus(authenticate(s, tt.args)); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
			if got := s.transcript(); !reflect.DeepEqual(got, tt.transcript) {
				t.Errorf("transcript %q, want %q", got, tt.transcript)
			}
			if !strings.Contains(strings.Join(*lines, "\n"), "absent.sock") {
				t.Errorf("the reason was not logged: %q", *lines)
			}
		})
	}
}

// TestFailOpenOnlyForUnreachable: whatever otpgated does say, and a
// dialogue it breaks off, fails closed even with fail=open.
func TestFailOpenOnlyForUnreachable(t *testing.T) {
	tests := []struct {
		name   string
		script func(int, *protocol.Request) *protocol.Response
		want   int
	}{
		{"deny", steps(askCode, &protocol.LoginStep{Verdict: protocol.VerdictDeny}), int(pam.ErrAuth)},
		{"refused", steps(&protocol.LoginStep{Verdict: protocol.VerdictRefused}), int(pam.ErrMaxtries)},
		{"verdict unavailable", steps(&protocol.LoginStep{Verdict: protocol.VerdictUnavailable}), int(pam.ErrAuthinfoUnavail)},
		{"permission denied", errorReply(protocol.ErrPermissionDenied, "no"), int(pam.ErrAuthinfoUnavail)},
		{"busy", errorReply(protocol.ErrBusy, "too many connections"), int(pam.ErrAuthinfoUnavail)},
		{"internal error", errorReply(protocol.ErrInternal, "internal error; see the otpgated log"), int(pam.ErrAuthinfoUnavail)},
		{"dropped after the prompt", steps(askCode), int(pam.ErrAuthinfoUnavail)},
		{"an error reply to the answers", func(n int, _ *protocol.Request) *protocol.Response {
			if n == 0 {
				return &protocol.Response{StepReply: protocol.StepReply{Step: askCode}}
			}
			return &protocol.Response{ResponseHeader: protocol.ResponseHeader{Error: &protocol.Error{Code: protocol.ErrInternal, Message: "x"}}}
		}, int(pam.ErrAuthinfoUnavail)},
		{"a reply without a step", func(n int, _ *protocol.Request) *protocol.Response {
			if n == 0 {
				return &protocol.Response{StepReply: protocol.StepReply{Step: askCode}}
			}
			return &protocol.Response{Status: &protocol.UserStatus{User: "alice", State: protocol.StateActive}}
		}, int(pam.ErrAuthinfoUnavail)},
		{"an unknown verdict", func(n int, _ *protocol.Request) *protocol.Response {
			if n == 0 {
				return &protocol.Response{StepReply: protocol.StepReply{Step: askCode}}
			}
			return &protocol.Response{StepReply: protocol.StepReply{Step: &protocol.LoginStep{Verdict: "maybe"}}}
		}, int(pam.ErrAuthinfoUnavail)},
		{"a dialogue without end", func(int, *protocol.Request) *protocol.Response {
			return &protocol.Response{StepReply: protocol.StepReply{Step: askCode}}
		}, int(pam.ErrAuthinfoUnavail)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newFakeOtpgated(t, tt.script)
			typed := make([]string, maxSteps+1)
			s := newFakeSession(typed...)
			if got := pamStatus(authenticate(s, []string{"socket=" + d.socket, "fail=open"})); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
			if tt.want == int(pam.ErrAuthinfoUnavail) {
				tr := s.transcript()
				if len(tr) == 0 || !strings.HasSuffix(tr[len(tr)-1], unavailErr) {
					t.Errorf("the relay's text was not shown last: %q", tr)
				}
			}
		})
	}
}

// TestFailOpenFirstReply: fail=open relaxes a first reply that cannot be
// read (as an unreachable otpgated), never one that was read and holds an
// answer the module does not understand.
func TestFailOpenFirstReply(t *testing.T) {
	tests := []struct {
		name  string
		reply string // the first reply's JSON; the id is the request's
		want  int
	}{
		{"garbage", "\x00not json{", int(pam.ErrIgnore)},
		{"an unknown verdict", `{"v":1,"id":%d,"step":{"verdict":"maybe"}}`, int(pam.ErrAuthinfoUnavail)},
		{"prompts and a verdict", `{"v":1,"id":%d,"step":{"verdict":"success","prompts":[{"text":"Code: "}]}}`, int(pam.ErrAuthinfoUnavail)},
		// Parts of a Response a dialogue's reply never has: read, not
		// understood.
		{"no step", `{"v":1,"id":%d,"status":{"user":"alice","state":"active","policy_requires":true,"exempt":false,"recovery_remaining":0,"failures":0}}`, int(pam.ErrAuthinfoUnavail)},
		{"a control character in a message", `{"v":1,"id":%d,"step":{"verdict":"deny","messages":[{"style":"error","text":"\u001b[2J"}]}}`, int(pam.ErrAuthinfoUnavail)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "raw.sock")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				frame, err := protocol.ReadFrame(c)
				if err != nil {
					return
				}
				req, err := protocol.DecodeRequest(frame)
				if err != nil {
					return
				}
				reply := tt.reply
				if strings.Contains(reply, "%d") {
					reply = fmt.Sprintf(reply, req.ID)
				}
				_ = protocol.WriteFrame(c, []byte(reply)) // the module reports a missing reply
			}()
			t.Cleanup(func() { ln.Close(); <-done })
			s := newFakeSession()
			if got := pamStatus(authenticate(s, []string{"socket=" + sock, "fail=open"})); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
}

// TestOlderOtpgated: an otpgated that does not know the dialogue refuses
// login_start as a bad request; the module says so in the log and fails
// closed, fail=open or not.
func TestOlderOtpgated(t *testing.T) {
	for _, msg := range []string{`malformed request: json: unknown field "login"`, "unknown operation"} {
		t.Run(msg, func(t *testing.T) {
			lines := captureLog(t)
			d := newFakeOtpgated(t, errorReply(protocol.ErrBadRequest, msg))
			s := newFakeSession()
			if got := pamStatus(authenticate(s, []string{"socket=" + d.socket, "fail=open"})); got != int(pam.ErrAuthinfoUnavail) {
				t.Errorf("status %d, want PAM_AUTHINFO_UNAVAIL", got)
			}
			if got := s.transcript(); !reflect.DeepEqual(got, []string{unavailErr}) {
				t.Errorf("transcript %q", got)
			}
			const want = "otpgated is older than this PAM module: it does not know the login dialogue; upgrade otpgated"
			if log := strings.Join(*lines, "\n"); !strings.Contains(log, want) {
				t.Errorf("log %q, want %q", log, want)
			}
		})
	}
}

// TestConversationFailure: a conversation that fails (the person pressed
// ^C, the application has none) ends the login with PAM_CONV_ERR and sends
// otpgated nothing more.
func TestConversationFailure(t *testing.T) {
	d := newFakeOtpgated(t, steps(askCode, &protocol.LoginStep{Verdict: protocol.VerdictSuccess}))
	s := newFakeSession() // nothing typed: the conversation fails
	if got := pamStatus(authenticate(s, []string{"socket=" + d.socket})); got != int(pam.ErrConv) {
		t.Errorf("status %d, want PAM_CONV_ERR", got)
	}
	if n := len(d.requestsSeen()); n != 1 {
		t.Errorf("%d requests, want only login_start", n)
	}
}

// logSink, when set (by captureLog), receives the lines the module logs
// through a fakeSession.
var logSink func(prio priority, line string)
