package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/term"
)

// progressInterval is the shortest time between two redraws of a progress
// line: a few a second, however fast the users go by.
const progressInterval = 200 * time.Millisecond

// progress shows how far a long operation is, as one status line on a
// terminal, rewritten in place ("\r", the text, erase to the end of the
// line) at most every progressInterval. Lines printed through println
// appear above it. Without a terminal it prints nothing of its own, so
// scripts see only the command's ordinary output.
type progress struct {
	term   io.Writer // the terminal the status goes to; nil: none
	shared map[io.Writer]bool
	now    func() time.Time
	next   time.Time // no redraw before
	status string    // the status line on the screen, "" if none
}

// newProgress returns a progress on stderr if it is a terminal, else one
// that shows nothing. Writers in shares print to the same screen (stdout,
// when it is a terminal too): println clears the status before their
// lines.
func newProgress(stderr io.Writer, isTerminal func(io.Writer) bool, now func() time.Time, shares ...io.Writer) *progress {
	p := &progress{now: now, shared: map[io.Writer]bool{}}
	if !isTerminal(stderr) {
		return p
	}
	p.term = stderr
	p.shared[stderr] = true
	for _, w := range shares {
		if isTerminal(w) {
			p.shared[w] = true
		}
	}
	return p
}

// isTerminalWriter reports whether w is an *os.File on a terminal.
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// update shows the text text() returns, unless the last redraw was less
// than progressInterval ago (text is then not called).
func (p *progress) update(text func() string) {
	if p.term == nil {
		return
	}
	t := p.now()
	if t.Before(p.next) {
		return
	}
	p.next = t.Add(progressInterval)
	p.status = text()
	fmt.Fprint(p.term, "\r"+p.status+"\x1b[K")
}

// println prints line and a newline to w, above the status line.
func (p *progress) println(w io.Writer, line string) {
	if p.status == "" || !p.shared[w] {
		fmt.Fprintln(w, line)
		return
	}
	fmt.Fprint(p.term, "\r\x1b[K")
	fmt.Fprintln(w, line)
	fmt.Fprint(p.term, p.status+"\x1b[K")
}

// clear removes the status line, and lets the next update draw at once.
func (p *progress) clear() {
	if p.status != "" {
		fmt.Fprint(p.term, "\r\x1b[K")
	}
	p.status, p.next = "", time.Time{}
}

// finish replaces the status line with summary, kept on the screen.
func (p *progress) finish(summary string) {
	if p.term == nil {
		return
	}
	fmt.Fprint(p.term, "\r"+summary+"\x1b[K\n")
	p.status, p.next = "", time.Time{}
}

// groupDigits writes n with a space between groups of three digits, as
// in "100 000".
func groupDigits(n int) string {
	s := strconv.Itoa(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ' ')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
