//go:build root

package main

import (
	"context"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/testutil"
	"golang.org/x/sys/unix"
)

// confirmDaemon is a fake otpgated for an enrollment whose confirmation
// refuses every code with msg, as otpgated refuses a wrong or unreadable
// one.
func confirmDaemon(t *testing.T, msg string) *fakeDaemon {
	return newFakeDaemon(t, func(req *protocol.Request) *protocol.Response {
		switch req.Op {
		case protocol.OpStatus:
			return &protocol.Response{Status: &protocol.UserStatus{User: req.User, State: protocol.StateNone}}
		case protocol.OpEnrollBegin:
			return &protocol.Response{Enroll: &protocol.EnrollInfo{
				URI: "otpauth://totp/otpgate:root?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=otpgate", Secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
				Issuer: "otpgate", Account: "root", Algorithm: "SHA1", Digits: 6, Period: 30,
			}}
		}
		return codeError(msg)
	})
}

// TestCodesAreSentAsTyped: the CLI neither checks nor reformats a code:
// otpgated gets each answer as typed (only the line end goes) and the CLI
// shows otpgated's answer. An answer the protocol cannot carry (a long
// paste, control characters) still reaches otpgated, marked so that it
// cannot be a code, and gets otpgated's words, not a protocol error.
func TestCodesAreSentAsTyped(t *testing.T) {
	long := strings.Repeat("1234567890", 200)
	tests := []struct {
		name  string
		input string
		want  []string // the codes otpgated receives, in order
	}{
		{"spaces and dashes as apps show codes, a tab a request cannot carry", "512 397\n 512-397 \r\n\t512397\n", []string{"512 397", " 512-397 ", "\uFFFD512397"}},
		{"recovery codes in any case, an empty line", "ABCD-efgh-1234\n\nx\n", []string{"ABCD-efgh-1234", "", "x"}},
		{"a long paste", long + "\n" + long[:1024] + "\n" + long[:1025] + "\n", []string{long[:1021] + "\uFFFD", long[:1024], long[:1021] + "\uFFFD"}},
		{"control characters", "512\x1b[2J397\n\x00\n\xff\xfe123456\n", []string{"512\uFFFD[2J397", "\uFFFD", "\uFFFD123456"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := confirmDaemon(t, "A code is 6 digits.")
			a, _, errb := testApp(t, os.Getuid(), tt.input)
			code := a.run(context.Background(), []string{"--socket", d.socket, "enroll", "--no-qr"})
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			var got []string
			for _, r := range d.requests() {
				if r.Op == protocol.OpEnrollConfirm {
					got = append(got, r.Code)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("otpgated got %d codes, want %d:\n%s", len(got), len(tt.want), errb)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("code %d: otpgated got %q (%d bytes), want %q", i+1, got[i], len(got[i]), tt.want[i])
				}
			}
			if n := strings.Count(errb.String(), "A code is 6 digits."); n != 3 {
				t.Errorf("otpgated's answer shown %d times, want 3:\n%s", n, errb)
			}
			if strings.Contains(errb.String(), "invalid request") || strings.Contains(errb.String(), "no code entered") {
				t.Errorf("the CLI answered instead of otpgated:\n%s", errb)
			}
		})
	}
}

func TestCarriable(t *testing.T) {
	tests := []struct {
		in   string
		cut  bool
		want string
	}{
		{"", false, ""},
		{" 512 397 ", false, " 512 397 "},
		{"é", false, "é"},
		{"a\tb", false, "a\uFFFDb"},
		{"123456", true, "123456\uFFFD"},
		{strings.Repeat("é", 600), false, strings.Repeat("é", 510) + "\uFFFD"},
	}
	for _, tt := range tests {
		got := carriable(tt.in, tt.cut)
		if got != tt.want {
			t.Errorf("carriable(%q, %v) = %q, want %q", tt.in, tt.cut, got, tt.want)
		}
		if len(got) > protocol.MaxCodeLen || !utf8.ValidString(got) {
			t.Errorf("carriable(%q) = %d bytes, valid UTF-8 %v", tt.in, len(got), utf8.ValidString(got))
		}
	}
}

// TestInterruptAtPrompt: SIGINT (Ctrl-C) at a code prompt ends the command
// at once with exit status 130, says nothing about otpgated and leaves the
// terminal echoing again, whether the answer comes from a terminal (not
// echoed) or a pipe.
func TestInterruptAtPrompt(t *testing.T) {
	for _, onTerminal := range []bool{true, false} {
		name := map[bool]string{true: "terminal", false: "pipe"}[onTerminal]
		t.Run(name, func(t *testing.T) {
			d := confirmDaemon(t, "Wrong code.")
			a, _, _ := testApp(t, os.Getuid(), "")
			var errb testutil.SyncBuffer
			a.stderr = &errb
			var slave *os.File
			if onTerminal {
				master, s, err := pty.Open()
				if err != nil {
					t.Fatalf("open a pseudo-terminal: %v", err)
				}
				defer master.Close()
				defer s.Close()
				slave = s
				a.stdin, a.inFd = slave, int(slave.Fd())
			} else {
				r, w := io.Pipe() // nothing is ever typed
				defer w.Close()
				a.stdin = r
			}
			ctx, stop := notifyInterrupt(context.Background())
			defer stop()
			exit := make(chan int, 1)
			go func() { exit <- a.run(ctx, []string{"--socket", d.socket, "enroll", "--no-qr"}) }()
			for !strings.Contains(errb.String(), "Enter the code shown in your app to finish: ") {
				select {
				case code := <-exit:
					t.Fatalf("exit %d before the prompt:\n%s", code, errb.String())
				case <-time.After(10 * time.Millisecond):
				}
			}
			if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-exit:
				if code != 130 {
					t.Errorf("exit %d, want 130", code)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("still waiting for an answer 10 s after Ctrl-C:\n%s", errb.String())
			}
			if out := errb.String(); strings.Contains(out, "otpgated") || strings.Contains(out, "otpgate:") {
				t.Errorf("something was claimed after Ctrl-C:\n%s", out)
			}
			for _, r := range d.requests() {
				if r.Op == protocol.OpEnrollConfirm {
					t.Errorf("a code was sent after Ctrl-C: %q", r.Code)
				}
			}
			if onTerminal {
				tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
				if err != nil {
					t.Fatal(err)
				}
				if tio.Lflag&unix.ECHO == 0 {
					t.Errorf("the terminal no longer echoes after Ctrl-C")
				}
			}
		})
	}
}
