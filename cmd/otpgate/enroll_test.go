//go:build root

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/qrterm/qrtermtest"
	"github.com/otpgate/otpgate/otp"
)

// enrollDaemon is a fake otpgated for one enrollment of key: the user is
// not enrolled, enroll_begin hands out key, enroll_confirm accepts any code.
func enrollDaemon(t *testing.T, key otp.Key) *fakeDaemon {
	return newFakeDaemon(t, func(req *protocol.Request) *protocol.Response {
		switch req.Op {
		case protocol.OpStatus:
			return &protocol.Response{Status: &protocol.UserStatus{User: req.User, State: protocol.StateNone}}
		case protocol.OpEnrollBegin:
			return &protocol.Response{Enroll: &protocol.EnrollInfo{
				URI: key.URI(), Secret: otp.EncodeSecret(key.Secret), Issuer: key.Issuer, Account: key.Account,
				Algorithm: key.Algorithm.String(), Digits: key.Digits, Period: key.Period,
			}}
		case protocol.OpEnrollConfirm:
			return &protocol.Response{RecoveryCodes: []string{"aaaa-bbbb-cccc"}}
		}
		return &protocol.Response{ResponseHeader: protocol.ResponseHeader{Error: &protocol.Error{Code: protocol.ErrBadRequest, Message: "unexpected " + string(req.Op)}}}
	})
}

// runOnTerminal runs otpgate with args, its stdout and stderr on a
// pseudo-terminal of cols×rows and stdin piped from input, and returns
// what the terminal received (line ends as "\n").
func runOnTerminal(t *testing.T, socket string, cols, rows int, input string, args ...string) (string, int) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	defer master.Close()
	if err := pty.Setsize(master, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)}); err != nil {
		t.Fatalf("set the terminal size: %v", err)
	}
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(&out, master) // ends with EIO once the slave is closed
		close(done)
	}()
	a := &app{
		stdin: strings.NewReader(input), stdout: slave, stderr: slave,
		inFd: -1, outFd: int(slave.Fd()), uid: os.Getuid(),
		getenv: func(k string) string {
			if k == "TERM" {
				return "xterm-256color"
			}
			return ""
		},
		now: time.Now,
	}
	code := a.run(context.Background(), append([]string{"--socket", socket}, args...))
	slave.Close()
	<-done
	return strings.ReplaceAll(out.String(), "\r\n", "\n"), code
}

// screenAtPrompt is the output up to and including the first prompt, as
// it stands on the screen while the person reads it.
func screenAtPrompt(t *testing.T, out, prompt string) []string {
	t.Helper()
	i := strings.Index(out, prompt)
	if i < 0 {
		t.Fatalf("no prompt %q in:\n%s", prompt, out)
	}
	return strings.Split(out[:i+len(prompt)], "\n")
}

// TestEnrollFitsTerminal: at `otpgate enroll`, the intro, the whole QR code,
// the key and the confirmation prompt are on an 80×24 screen at once, the QR
// code decodes (zbarimg) to the key's URI, and the key can be read off the
// screen. Too long an account name gets no QR code but a line saying what
// to do; a large terminal gets every detail, URI included.
func TestEnrollFitsTerminal(t *testing.T) {
	secret := make([]byte, 20) // the default key length
	for i := range secret {
		secret[i] = byte(i*29 + 3)
	}
	b32 := otp.EncodeSecret(secret)
	tests := []struct {
		name       string
		account    string
		cols, rows int
		qr         bool
		want       []string
	}{
		{"short account 80x24", "alice@web1", 80, 24, true, []string{"Or type the key (time-based): " + group(b32)}},
		{"long account 80x24", "abcdefghijklmnopqrstuvwxyz@01234567", 80, 24, true, []string{"Or type the key (time-based): " + group(b32)}},
		{"too long an account for 80x24", "a-very-long-service-account-name@bastion-01.prod.internal.example.com", 80, 24, false, []string{
			"No room for the QR code (47×24 characters) and the key in this 80×24 terminal.",
			"Make the window larger and run this again, use --qr=png FILE, or type the key.",
			"  Key:        " + group(b32),
		}},
		{"a terminal too small for anything but the key", "alice@web1", 40, 12, false, []string{
			"No room for the QR code (39×20 characters) and the key in this 40×12 terminal.",
		}},
		{"large terminal", "alice@web1", 120, 50, true, []string{"  Key:        " + group(b32), "  Account:    alice@web1", "  URI:        otpauth://totp/otpgate:alice@web1?secret=" + b32 + "&issuer=otpgate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := otp.Key{Issuer: "otpgate", Account: tt.account, Secret: secret, Params: otp.DefaultParams()}
			d := enrollDaemon(t, key)
			out, code := runOnTerminal(t, d.socket, tt.cols, tt.rows, "123456\n\n", "enroll")
			if code != exitOK {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			screen := screenAtPrompt(t, out, "Enter the code shown in your app to finish: ")
			// Rows on the screen: a line longer than the terminal wraps.
			n := 0
			for _, l := range screen {
				n += max(1, (utf8.RuneCountInString(sgr(l))+tt.cols-1)/tt.cols)
			}
			if n > tt.rows && tt.rows >= 24 {
				t.Errorf("%d rows up to the prompt, the terminal has %d:\n%s", n, tt.rows, strings.Join(screen, "\n"))
			}
			text := strings.Join(screen, "\n")
			if grid, err := qrtermtest.ExtractGrid(text); err == nil {
				if w := utf8.RuneCountInString(grid[0]); w > tt.cols {
					t.Errorf("the QR code is %d columns wide, the terminal has %d", w, tt.cols)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(text, w+"\n") {
					t.Errorf("no line %q on the screen:\n%s", w, text)
				}
			}
			if tt.qr {
				if got := qrtermtest.DecodeTerminal(t, text); got != key.URI() {
					t.Errorf("the QR code decodes to %q, want %q", got, key.URI())
				}
			} else if strings.Contains(text, "▀") {
				t.Errorf("a QR code was drawn that does not fit:\n%s", text)
			}
		})
	}
}

// sgr removes colour sequences.
func sgr(s string) string {
	for {
		i := strings.Index(s, "\x1b[")
		if i < 0 {
			return s
		}
		j := strings.IndexByte(s[i:], 'm')
		if j < 0 {
			return s
		}
		s = s[:i] + s[i+j+1:]
	}
}
