//go:build root

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
	def := options{socket: protocol.DefaultSocket, timeout: defaultTimeout}
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
		{"password_and_code leaves the prompt to otpgated", []string{"password_and_code"},
			options{socket: protocol.DefaultSocket, timeout: defaultTimeout, passwordAndCode: true}, 0},
		{"forward_pass is an alias", []string{"forward_pass", "prompt=PIN+code: "},
			options{socket: protocol.DefaultSocket, prompt: "PIN+code: ", timeout: defaultTimeout, passwordAndCode: true}, 0},
		{"enroll_after_password", []string{"enroll_after_password"},
			options{socket: protocol.DefaultSocket, timeout: defaultTimeout, enrollAfterPassword: true}, 0},
		{"enroll_after_password takes no value", []string{"enroll_after_password=yes"}, def, 1},
		{"require_publickey", []string{"require_publickey"},
			options{socket: protocol.DefaultSocket, timeout: defaultTimeout, requirePublickey: true}, 0},
		{"require_publickey takes no value", []string{"require_publickey=no"}, def, 1},
		{"golib is the loader's", []string{"golib=/usr/lib/otpgate/x.so"}, def, 0},
		{"unknown arguments warn", []string{"nullok", "debug=1", "fail"}, def, 3},
		{"relative socket is refused", []string{"socket=run/s"}, def, 1},
		{"bad timeouts keep the default", []string{"timeout=0", "timeout=-1", "timeout=x", "timeout=301"}, def, 4},
		{"a prompt with a control character is otpgated's", []string{"prompt=Code:\x1b[2J"}, def, 1},
		{"an overlong prompt is otpgated's", []string{"prompt=" + strings.Repeat("x", protocol.MaxPromptLen+1)}, def, 1},
		{"a prompt that is not UTF-8 is otpgated's", []string{"prompt=Code \xff: "}, def, 1},
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

func TestFitAnswer(t *testing.T) {
	long := strings.Repeat("1", protocol.MaxAnswerLen+500)
	// A two-byte character across the limit is cut whole.
	across := strings.Repeat("1", protocol.MaxAnswerLen-1) + "é" + "2"
	tests := []struct {
		name, in, want string
	}{
		{"a code as typed", "512 397", "512 397"},
		{"a password and a code", "hunter2 512397", "hunter2 512397"},
		{"empty", "", ""},
		{"a long paste is cut to the protocol's limit", long, long[:protocol.MaxAnswerLen]},
		{"a character across the limit is cut whole", across, across[:protocol.MaxAnswerLen-1]},
		{"bytes that are not UTF-8 are replaced", "12\xff34", "12\uFFFD34"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			got := fitAnswer(in)
			if string(got) != tt.want {
				t.Errorf("fitAnswer(%.40q) = %.40q (%d bytes), want %.40q (%d bytes)", tt.in, got, len(got), tt.want, len(tt.want))
			}
			if len(got) > protocol.MaxAnswerLen {
				t.Errorf("fitAnswer left %d bytes", len(got))
			}
			rest := in // what is no longer part of the answer must be wiped
			if len(got) > 0 && &got[0] == &in[0] {
				rest = in[len(got):]
			}
			if strings.Trim(string(rest), "\x00") != "" {
				t.Errorf("fitAnswer left %.40q of the typed answer unwiped", rest)
			}
		})
	}
}

// TestAnswerStringsAliasTheirBuffers: the strings sent to otpgated share
// the typed answer's memory, so wiping the buffers wipes them.
func TestAnswerStringsAliasTheirBuffers(t *testing.T) {
	bufs := [][]byte{[]byte("123456"), nil, []byte("pw")}
	strs := answerStrings(bufs)
	if !reflect.DeepEqual(strs, []string{"123456", "", "pw"}) {
		t.Fatalf("answerStrings = %q", strs)
	}
	wipeAll(bufs)
	for _, s := range strs {
		if strings.Trim(s, "\x00") != "" {
			t.Errorf("a wiped answer still reads %q", s)
		}
	}
}
