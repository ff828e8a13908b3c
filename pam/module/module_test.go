package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/msteinert/pam/v2"

	"github.com/otpgate/otpgate/internal/protocol"
)

func TestParseArgs(t *testing.T) {
	def := options{socket: protocol.DefaultSocket, prompt: defaultPrompt, timeout: defaultTimeout}
	tests := []struct {
		name     string
		args     []string
		want     options
		warnings int
	}{
		{"no arguments give the defaults", nil, def, 0},
		{"socket prompt timeout debug", []string{"socket=/tmp/s.sock", "prompt=Code: ", "timeout=3", "debug"},
			options{socket: "/tmp/s.sock", prompt: "Code: ", timeout: 3 * time.Second, debug: true}, 0},
		{"fail=open", []string{"fail=open"}, withFailOpen(def), 0},
		{"fail=closed after fail=open", []string{"fail=open", "fail=closed"}, def, 0},
		{"a malformed fail value fails closed", []string{"fail=open", "fail=opne"}, def, 1},
		{"password_and_code changes the default prompt", []string{"password_and_code"},
			options{socket: protocol.DefaultSocket, prompt: defaultPasswordPrompt, timeout: defaultTimeout, passwordAndCode: true}, 0},
		{"forward_pass is an alias", []string{"forward_pass", "prompt=PIN+code: "},
			options{socket: protocol.DefaultSocket, prompt: "PIN+code: ", timeout: defaultTimeout, passwordAndCode: true}, 0},
		{"enroll_after_password", []string{"enroll_after_password"},
			options{socket: protocol.DefaultSocket, prompt: defaultPrompt, timeout: defaultTimeout, enrollAfterPassword: true}, 0},
		{"enroll_after_password takes no value", []string{"enroll_after_password=yes"}, def, 1},
		{"require_publickey", []string{"require_publickey"},
			options{socket: protocol.DefaultSocket, prompt: defaultPrompt, timeout: defaultTimeout, requirePublickey: true}, 0},
		{"require_publickey takes no value", []string{"require_publickey=no"}, def, 1},
		{"golib is the loader's", []string{"golib=/usr/lib/otpgate/x.so"}, def, 0},
		{"unknown arguments warn", []string{"nullok", "debug=1", "fail"}, def, 3},
		{"relative socket is refused", []string{"socket=run/s"}, def, 1},
		{"bad timeouts keep the default", []string{"timeout=0", "timeout=-1", "timeout=x", "timeout=301"}, def, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings := parseArgs(tt.args)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseArgs(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
			if len(warnings) != tt.warnings {
				t.Errorf("parseArgs(%q) warnings = %q, want %d", tt.args, warnings, tt.warnings)
			}
		})
	}
}

func withFailOpen(o options) options {
	o.failOpen = true
	return o
}

func verifyReply(v protocol.VerifyResult) *protocol.Response {
	return &protocol.Response{V: protocol.Version, Verify: &v}
}

var errUnreachableForTest = fmt.Errorf("%w at /run/x.sock: no answer in time", protocol.ErrUnavailable)

func TestCheckDecision(t *testing.T) {
	tests := []struct {
		name        string
		resp        *protocol.Response
		err         error
		wantDigits  int
		wantMsg     string
		wantStatus  int
		unreachable bool
	}{
		{"code required", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeCodeRequired, Digits: 6}), nil, 6, "", 0, false},
		{"code required with 8 digits", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeCodeRequired, Digits: 8}), nil, 8, "", 0, false},
		{"code required without digits is unexpected", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeCodeRequired}), nil, 0, "", int(pam.ErrAuthinfoUnavail), false},
		{"not enrolled is ignored", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeNotEnrolled}), nil, 0, "", int(pam.ErrIgnore), false},
		{"exempt is ignored", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeExempt}), nil, 0, "", int(pam.ErrIgnore), false},
		{"enroll required denies with the hint", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeEnrollRequired, Message: "run otpgate enroll"}), nil, 0, "run otpgate enroll", int(pam.ErrAuth), false},
		{"locked denies with the message", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeLocked, Message: "locked for 60 s"}), nil, 0, "locked for 60 s", int(pam.ErrAuth), false},
		{"accept is not a check outcome", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeAccept}), nil, 0, "", int(pam.ErrAuthinfoUnavail), false},
		{"unknown outcome", verifyReply(protocol.VerifyResult{Outcome: "maybe"}), nil, 0, "", int(pam.ErrAuthinfoUnavail), false},
		{"empty reply", &protocol.Response{}, nil, 0, "", int(pam.ErrAuthinfoUnavail), false},
		{"nil reply", nil, nil, 0, "", int(pam.ErrAuthinfoUnavail), false},
		{"unreachable daemon", nil, errUnreachableForTest, 0, "", int(pam.ErrAuthinfoUnavail), true},
		{"permission denied", &protocol.Response{}, &protocol.Error{Code: protocol.ErrPermissionDenied, Message: "no"}, 0, "", int(pam.ErrAuthinfoUnavail), false},
		{"internal error", &protocol.Response{}, &protocol.Error{Code: protocol.ErrInternal, Message: "disk"}, 0, "", int(pam.ErrAuthinfoUnavail), false},
		{"locked error reply", &protocol.Response{}, &protocol.Error{Code: protocol.ErrLocked, Message: "locked\x1b[2J"}, 0, "locked[2J", int(pam.ErrAuth), false},
		{"other error", nil, errors.New("boom"), 0, "", int(pam.ErrAuthinfoUnavail), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			digits, msg, result := checkDecision(tt.resp, tt.err)
			if digits != tt.wantDigits || msg != tt.wantMsg {
				t.Errorf("checkDecision = (%d, %q), want (%d, %q)", digits, msg, tt.wantDigits, tt.wantMsg)
			}
			if got := pamStatus(result); got != tt.wantStatus {
				t.Errorf("checkDecision status = %d (%v), want %d", got, result, tt.wantStatus)
			}
			if got := errors.Is(result, errUnreachable); got != tt.unreachable {
				t.Errorf("checkDecision unreachable = %v (%v), want %v", got, result, tt.unreachable)
			}
		})
	}
}

func TestVerifyDecision(t *testing.T) {
	tests := []struct {
		name        string
		resp        *protocol.Response
		err         error
		wantInfo    string
		wantMsg     string
		wantStatus  int
		unreachable bool
	}{
		{"accept", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeAccept}), nil, "", "", 0, false},
		{"recovery accept from an older daemon", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeAccept, Recovery: true, RecoveryRemaining: 7}), nil, "Recovery code accepted; 7 left.", "", 0, false},
		{"recovery accept with the daemon's message", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeAccept, Recovery: true, RecoveryRemaining: 1, Message: "Recovery code accepted; only 1 left: run 'otpgate recovery-codes'.\x1b[2J"}), nil, "Recovery code accepted; only 1 left: run 'otpgate recovery-codes'.[2J", "", 0, false},
		{"reject with clock hint", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeReject, Message: "clock 3 minutes behind"}), nil, "", "clock 3 minutes behind", int(pam.ErrAuth), false},
		{"reject", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeReject}), nil, "", "", int(pam.ErrAuth), false},
		{"replay", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeReplay}), nil, "", "", int(pam.ErrAuth), false},
		{"locked", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeLocked, Message: "locked"}), nil, "", "locked", int(pam.ErrAuth), false},
		{"not enrolled", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeNotEnrolled}), nil, "", "", int(pam.ErrIgnore), false},
		{"exempt", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeExempt}), nil, "", "", int(pam.ErrIgnore), false},
		{"remembered is not a verify outcome", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeRemembered}), nil, "", "", int(pam.ErrAuthinfoUnavail), false},
		{"code required is not a verify outcome", verifyReply(protocol.VerifyResult{Outcome: protocol.OutcomeCodeRequired, Digits: 6}), nil, "", "", int(pam.ErrAuthinfoUnavail), false},
		{"empty outcome", verifyReply(protocol.VerifyResult{}), nil, "", "", int(pam.ErrAuthinfoUnavail), false},
		{"nil reply", nil, nil, "", "", int(pam.ErrAuthinfoUnavail), false},
		{"unreachable", nil, errUnreachableForTest, "", "", int(pam.ErrAuthinfoUnavail), true},
		{"invalid code error", &protocol.Response{}, &protocol.Error{Code: protocol.ErrInvalidCode, Message: "bad"}, "", "", int(pam.ErrAuth), false},
		{"bad request error", &protocol.Response{}, &protocol.Error{Code: protocol.ErrBadRequest, Message: "bad"}, "", "", int(pam.ErrAuthinfoUnavail), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, msg, result := verifyDecision(tt.resp, tt.err)
			if info != tt.wantInfo || msg != tt.wantMsg {
				t.Errorf("verifyDecision = (%q, %q), want (%q, %q)", info, msg, tt.wantInfo, tt.wantMsg)
			}
			if got := pamStatus(result); got != tt.wantStatus {
				t.Errorf("verifyDecision status = %d (%v), want %d", got, result, tt.wantStatus)
			}
			if got := errors.Is(result, errUnreachable); got != tt.unreachable {
				t.Errorf("verifyDecision unreachable = %v, want %v", got, tt.unreachable)
			}
		})
	}
}

func TestPamStatusFailsClosed(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil is success", nil, 0},
		{"wrapped auth error", fmt.Errorf("x: %w", pam.ErrAuth), int(pam.ErrAuth)},
		{"ignore", pam.ErrIgnore, int(pam.ErrIgnore)},
		{"plain error", errors.New("boom"), int(pam.ErrAuthinfoUnavail)},
		{"a zero pam.Error is not success", fmt.Errorf("x: %w", pam.Error(0)), int(pam.ErrAuthinfoUnavail)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pamStatus(tt.err); got != tt.want {
				t.Errorf("pamStatus(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestSplitPasswordAndCode(t *testing.T) {
	tests := []struct {
		answer, password, code string
		digits                 int
	}{
		{"hunter2123456", "hunter2", "123456", 6},
		{"pw12345678", "pw", "12345678", 8},
		{"123456", "", "123456", 6},
		{"1234", "", "1234", 6},
		{"", "", "", 6},
		{"pass word 000000", "pass word ", "000000", 6},
	}
	for _, tt := range tests {
		t.Run(tt.answer, func(t *testing.T) {
			answer := []byte(tt.answer)
			password, code := splitPasswordAndCode(answer, tt.digits)
			if string(password) != tt.password || string(code) != tt.code {
				t.Errorf("split(%q, %d) = (%q, %q), want (%q, %q)", tt.answer, tt.digits, password, code, tt.password, tt.code)
			}
			// Appending to the password must never overwrite the code.
			_ = append(password, 'X')
			if string(code) != tt.code {
				t.Errorf("appending to the password changed the code to %q", code)
			}
			wipe(answer)
			if strings.Trim(string(answer), "\x00") != "" {
				t.Errorf("wipe left %q", answer)
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Your device's clock seems to be about 3 minutes behind", "Your device's clock seems to be about 3 minutes behind"},
		{"a\x1b]0;pwned\x07b\nc\r", "a]0;pwnedbc"},
		{strings.Repeat("é", 400), strings.Repeat("é", maxMessage/2)},
	}
	for _, tt := range tests {
		if got := sanitize(tt.in); got != tt.want {
			t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestModuleHandlerAnswers(t *testing.T) {
	var m otpgateModule
	tests := []struct {
		name string
		fn   pam.ModuleHandlerFunc
		want int
	}{
		{"setcred succeeds", m.SetCred, 0},
		{"acct_mgmt ignores", m.AcctMgmt, int(pam.ErrIgnore)},
		{"open_session ignores", m.OpenSession, int(pam.ErrIgnore)},
		{"close_session ignores", m.CloseSession, int(pam.ErrIgnore)},
		{"chauthtok ignores", m.ChangeAuthTok, int(pam.ErrIgnore)},
		{"authenticate without a session fails closed", m.Authenticate, int(pam.ErrAuthinfoUnavail)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pamStatus(tt.fn(nil, 0, nil)); got != tt.want {
				t.Errorf("status = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestCheckRemembered: only the check outcome "remembered" yields
// errRemembered (authenticate's one way to PAM_SUCCESS without a code),
// and errRemembered on its own would still fail closed.
func TestCheckRemembered(t *testing.T) {
	for _, out := range []protocol.Outcome{protocol.OutcomeRemembered, protocol.OutcomeAccept, protocol.OutcomeCodeRequired, protocol.OutcomeExempt, "remembered "} {
		_, _, result := checkDecision(verifyReply(protocol.VerifyResult{Outcome: out, Digits: 6}), nil)
		if got, want := errors.Is(result, errRemembered), out == protocol.OutcomeRemembered; got != want {
			t.Errorf("check %q: remembered = %v (%v), want %v", out, got, result, want)
		}
	}
	if got := pamStatus(errRemembered); got != int(pam.ErrAuthinfoUnavail) {
		t.Errorf("pamStatus(errRemembered) = %d, want PAM_AUTHINFO_UNAVAIL", got)
	}
}

func TestPublickeyVerified(t *testing.T) {
	const key = "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOh3k8n0uX1cJ0V0WqQ6mYtZl4kq8s1R3xgk2nq9aO4b"
	tests := []struct {
		name, info string
		ok         bool
		why        string // a piece of the reason when !ok
	}{
		{"a verified key", key, true, ""},
		{"a verified key with the trailing newline", key + "\n", true, ""},
		{"a certificate", "publickey ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t", true, ""},
		{"the key before another method", key + "\nkeyboard-interactive/pam\n", true, ""},
		{"unset or empty (password alone)", "", false, "SSH_AUTH_INFO_0 is empty or unset"},
		{"blank lines only", "\n\n", false, "SSH_AUTH_INFO_0 is empty or unset"},
		{"password only", "password\n", false, "lists only: password"},
		{"keyboard-interactive only", "keyboard-interactive/pam\n", false, "lists only: keyboard-interactive/pam"},
		{"hostbased is not a user key", "hostbased ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n", false, "lists only: hostbased"},
		{"publickey without a key", "publickey\n", false, "lists only: publickey"},
		{"publickey with a type only", "publickey ssh-ed25519\n", false, "lists only: publickey"},
		{"publickey with a broken blob", "publickey ssh-ed25519 not*base64\n", false, "lists only: publickey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why, ok := publickeyVerified(tt.info)
			if ok != tt.ok {
				t.Fatalf("publickeyVerified(%q) = %v (%s), want %v", tt.info, ok, why, tt.ok)
			}
			if !ok && !strings.Contains(why, tt.why) {
				t.Errorf("publickeyVerified(%q) says %q, want it to say %q", tt.info, why, tt.why)
			}
			if strings.Contains(why, "AAAA") {
				t.Errorf("the reason carries key material: %q", why)
			}
		})
	}
}

// fakeSession is a PAM transaction without libpam: items, environment and
// a record of the prompts.
type fakeSession struct {
	user    string
	items   map[pam.Item]string
	env     map[string]string
	prompts []string
}

func (f *fakeSession) GetUser(string) (string, error) { return f.user, nil }
func (f *fakeSession) GetItem(i pam.Item) (string, error) {
	return f.items[i], nil
}
func (f *fakeSession) GetEnv(name string) string { return f.env[name] }
func (f *fakeSession) StartStringConv(_ pam.Style, prompt string) (pam.StringConvResponse, error) {
	f.prompts = append(f.prompts, prompt)
	return nil, errors.New("fakeSession: no conversation")
}
func (f *fakeSession) promptSecret(prompt string) ([]byte, error) {
	f.prompts = append(f.prompts, prompt)
	return nil, errors.New("fakeSession: no conversation")
}
func (f *fakeSession) setAuthtok([]byte) error { return nil }

// TestRequirePublickeyFailsClosed runs authenticate against an otpgated
// that cannot be reached, with fail=open: without require_publickey that
// is PAM_IGNORE (the stack's pam_permit lets the login in); with it, a
// login for which sshd verified no key is PAM_AUTH_ERR before otpgated is
// asked anything, and one with a verified key reaches the daemon.
func TestRequirePublickeyFailsClosed(t *testing.T) {
	const key = "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOh3k8n0uX1cJ0V0WqQ6mYtZl4kq8s1R3xgk2nq9aO4b\n"
	socket := "socket=" + t.TempDir() + "/absent.sock"
	tests := []struct {
		name     string
		args     []string
		authInfo string
		want     int
	}{
		{"fail=open without the argument lets a password login through", []string{socket, "fail=open"}, "", int(pam.ErrIgnore)},
		{"require_publickey refuses a password login", []string{socket, "fail=open", "require_publickey"}, "", int(pam.ErrAuth)},
		{"require_publickey refuses keyboard-interactive alone", []string{socket, "fail=open", "require_publickey"}, "keyboard-interactive/pam\n", int(pam.ErrAuth)},
		{"require_publickey with a verified key goes on to otpgated", []string{socket, "fail=open", "require_publickey"}, key, int(pam.ErrIgnore)},
		{"require_publickey with a verified key, fail closed", []string{socket, "require_publickey"}, key, int(pam.ErrAuthinfoUnavail)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeSession{user: "alice",
				items: map[pam.Item]string{pam.Service: "sshd", pam.Rhost: "192.0.2.7", pam.Tty: "ssh"},
				env:   map[string]string{"SSH_AUTH_INFO_0": tt.authInfo}}
			err := authenticate(s, tt.args)
			if got := pamStatus(err); got != tt.want {
				t.Errorf("authenticate(%q) with SSH_AUTH_INFO_0=%q = %d (%v), want %d", tt.args, tt.authInfo, got, err, tt.want)
			}
			if len(s.prompts) != 0 {
				t.Errorf("prompted %q", s.prompts)
			}
		})
	}
}
