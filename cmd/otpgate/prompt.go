package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/otpgate/otpgate/internal/protocol"
	"golang.org/x/term"
)

// maxInput bounds one line of input (a code or a path).
const maxInput = 4096

// errNoInput means stdin ended before an answer was given.
var errNoInput = errors.New("no answer: standard input is closed")

// readLine prints prompt on stderr and reads one line, trimmed of
// surrounding white space (a path, an answer to a question).
func (a *app) readLine(ctx context.Context, prompt string) (string, error) {
	line, long, err := a.read(ctx, prompt, false)
	if err != nil {
		return "", err
	}
	if long {
		return "", fmt.Errorf("input longer than %d bytes", maxInput)
	}
	return strings.TrimSpace(line), nil
}

// readCode asks for a code with prompt and returns the answer as typed,
// for otpgated to read: it alone knows what a code may look like ("512
// 397", a recovery code in any case) and answers anything else in words.
// The code is never echoed on a terminal and never printed. An answer that
// the protocol cannot carry (longer than protocol.MaxCodeLen bytes, not
// UTF-8, or holding control characters) is sent with the offending parts
// replaced by U+FFFD, which no code contains: otpgated then refuses it as
// it refuses any other answer that is not a code, rather than the CLI
// failing with a protocol error.
func (a *app) readCode(ctx context.Context, prompt string) (string, error) {
	line, long, err := a.read(ctx, prompt, true)
	if err != nil {
		return "", err
	}
	return carriable(line, long), nil
}

// carriable returns answer unchanged if a request can carry it as a code,
// else with invalid UTF-8 and control characters replaced by U+FFFD and
// cut to protocol.MaxCodeLen bytes, its last character then U+FFFD too;
// cut says answer was already cut short when read.
func carriable(answer string, cut bool) string {
	const bad = "\uFFFD"
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f { // as protocol.Request.Validate refuses
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(answer, bad))
	if len(s) > protocol.MaxCodeLen {
		s, cut = s[:protocol.MaxCodeLen], true
	}
	if cut {
		// Drop a partial character and make room for the mark.
		for len(s) > 0 && (len(s)+len(bad) > protocol.MaxCodeLen || !utf8.ValidString(s)) {
			_, size := utf8.DecodeLastRuneInString(s)
			s = s[:len(s)-size]
		}
		s += bad
	}
	return s
}

// read prints prompt on stderr and reads one line without its line end,
// at most maxInput bytes of it (long says there was more, which is
// dropped). On a terminal the input is not echoed when hidden is set
// (codes); otherwise a line is read from stdin, so that scripts and tests
// can pipe answers in. When ctx ends (Ctrl-C) before the line does, the
// terminal is restored and read returns ctx's error at once.
func (a *app) read(ctx context.Context, prompt string, hidden bool) (line string, long bool, err error) {
	fmt.Fprint(a.stderr, prompt)
	type result struct {
		line string
		long bool
		err  error
	}
	done := make(chan result, 1)
	if a.inFd >= 0 && hidden {
		state, err := term.GetState(a.inFd)
		if err != nil {
			return "", false, fmt.Errorf("read from the terminal: %w", err)
		}
		go func() {
			b, err := term.ReadPassword(a.inFd)
			if err != nil {
				err = fmt.Errorf("read from the terminal: %w", err)
			}
			done <- result{string(b[:min(len(b), maxInput)]), len(b) > maxInput, err}
		}()
		select {
		case r := <-done:
			fmt.Fprintln(a.stderr)
			return r.line, r.long, r.err
		case <-ctx.Done():
			// ReadPassword turned echo off; it would turn it back on
			// only once a line is read.
			if err := term.Restore(a.inFd, state); err != nil {
				fmt.Fprintf(a.stderr, "\notpgate: the terminal's echo could not be turned back on (type 'stty echo' and Enter): %v", err)
			}
			fmt.Fprintln(a.stderr)
			return "", false, context.Cause(ctx)
		}
	}
	if a.lines == nil {
		a.lines = bufio.NewReaderSize(a.stdin, maxInput)
	}
	go func() {
		line, long, err := readBounded(a.lines)
		done <- result{line, long, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		fmt.Fprintln(a.stderr)
		return "", false, context.Cause(ctx)
	}
	if r.err != nil && !(errors.Is(r.err, io.EOF) && r.line != "") {
		if a.inFd < 0 {
			fmt.Fprintln(a.stderr)
		}
		if errors.Is(r.err, io.EOF) {
			return "", false, errNoInput
		}
		return "", false, fmt.Errorf("read standard input: %w", r.err)
	}
	return r.line, r.long, nil
}

// readBounded reads a line from r and returns at most maxInput bytes of
// it, without the line end ("\n" or "\r\n"); long says more was dropped.
func readBounded(r *bufio.Reader) (line string, long bool, err error) {
	var b []byte
	for {
		frag, err := r.ReadSlice('\n')
		if room := maxInput + 2 - len(b); room > 0 {
			b = append(b, frag[:min(len(frag), room)]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
		if len(b) > maxInput {
			return string(b[:maxInput]), true, err
		}
		return string(b), false, err
	}
}

// clean makes text from the daemon or from files safe to print: control
// characters (including ESC, which could drive the terminal) become '?'.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
}

// group splits s into groups of four characters, as keys are typed.
func group(s string) string {
	var b strings.Builder
	i := 0
	for _, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
		i++
	}
	return b.String()
}
