package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"golang.org/x/term"
)

// maxInput bounds one line of input (a code or a path).
const maxInput = 4096

// errNoInput means stdin ended before an answer was given.
var errNoInput = errors.New("no answer: standard input is closed")

// readLine prints prompt on stderr and reads one line. On a terminal the
// input is not echoed when hidden is set (codes); otherwise a line is
// read from stdin, so that scripts and tests can pipe answers in.
func (a *app) readLine(prompt string, hidden bool) (string, error) {
	fmt.Fprint(a.stderr, prompt)
	if a.inFd >= 0 && hidden {
		b, err := term.ReadPassword(a.inFd)
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", fmt.Errorf("read from the terminal: %w", err)
		}
		if len(b) > maxInput {
			return "", fmt.Errorf("input longer than %d bytes", maxInput)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if a.lines == nil {
		a.lines = bufio.NewReaderSize(a.stdin, maxInput)
	}
	line, err := a.lines.ReadString('\n')
	if len(line) > maxInput {
		return "", fmt.Errorf("input longer than %d bytes", maxInput)
	}
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if a.inFd < 0 {
			fmt.Fprintln(a.stderr)
		}
		if errors.Is(err, io.EOF) {
			return "", errNoInput
		}
		return "", fmt.Errorf("read standard input: %w", err)
	}
	return strings.TrimSpace(line), nil
}

// readCode asks for a code with prompt. The code is never echoed on a
// terminal and never printed.
func (a *app) readCode(prompt string) (string, error) {
	code, err := a.readLine(prompt, true)
	if err != nil {
		return "", err
	}
	if code == "" {
		return "", errors.New("no code entered")
	}
	return code, nil
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
