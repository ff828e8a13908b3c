package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"golang.org/x/sys/unix"
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

// createSecretFile creates path for writing secrets: a new file (O_EXCL),
// mode 0600, never through a symbolic link (O_NOFOLLOW).
func createSecretFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s already exists: choose a new file name (otpgate never overwrites a file)", path)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// writeSecretFile creates path as createSecretFile does and writes data,
// removing the file again if anything fails.
func writeSecretFile(path string, data []byte) error {
	f, err := createSecretFile(path)
	if err != nil {
		return err
	}
	return finishSecretFile(f, data)
}

// finishSecretFile writes data to f, syncs and closes it; on failure the
// partial file is removed.
func finishSecretFile(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return nil
}

// expandPath resolves "~/" against home (the account's home directory from
// the password database, not $HOME) and makes path absolute.
func expandPath(path, home string) (string, error) {
	if path == "~" || strings.HasPrefix(path, "~/") {
		if home == "" {
			return "", errors.New("cannot expand ~: the account has no home directory")
		}
		path = filepath.Join(home, strings.TrimPrefix(path, "~"))
	}
	return filepath.Abs(path)
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
