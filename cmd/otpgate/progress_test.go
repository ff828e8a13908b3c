package main

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestProgress renders a status line the way a terminal receives it:
// carriage return, text, erase to the end of the line; at most one
// redraw per progressInterval; lines printed meanwhile above it; a summary
// kept at the end. Without a terminal nothing of it is written.
func TestProgress(t *testing.T) {
	type step struct {
		at    time.Duration // clock, from the start
		do    string        // "update N", "out LINE" (stdout), "err LINE" (stderr), "clear", "finish"
		write string        // what must appear on the terminal (stderr, and stdout when shared)
	}
	tests := []struct {
		name           string
		errTTY, outTTY bool
		steps          []step
	}{
		{
			name: "not a terminal: only the ordinary output", steps: []step{
				{0, "update 1", ""},
				{0, "out Imported u1", ""}, // to the file
				{time.Second, "update 2", ""},
				{time.Second, "finish", ""},
			},
		},
		{
			name: "throttled redraws", errTTY: true, steps: []step{
				{0, "update 1", "\rimported 1 of 100 000 users\x1b[K"},
				{50 * time.Millisecond, "update 2", ""},
				{199 * time.Millisecond, "update 3", ""},
				{200 * time.Millisecond, "update 41200", "\rimported 41 200 of 100 000 users\x1b[K"},
				{300 * time.Millisecond, "update 41201", ""},
				{3 * time.Second, "finish", "\rimported 100 000 of 100 000 users in 3s\x1b[K\n"},
			},
		},
		{
			name: "lines above the status on a shared terminal", errTTY: true, outTTY: true, steps: []step{
				{0, "out first line, before any status", "first line, before any status\n"},
				{0, "update 7", "\rimported 7 of 100 000 users\x1b[K"},
				{0, "out Imported u7", "\r\x1b[KImported u7\nimported 7 of 100 000 users\x1b[K"},
				{0, "err a problem", "\r\x1b[Ka problem\nimported 7 of 100 000 users\x1b[K"},
				{0, "clear", "\r\x1b[K"},
				{0, "out after clear", "after clear\n"},
				{0, "update 8", "\rimported 8 of 100 000 users\x1b[K"},
			},
		},
		{
			name: "stdout elsewhere (a file): its lines leave the status alone", errTTY: true, steps: []step{
				{0, "update 7", "\rimported 7 of 100 000 users\x1b[K"},
				{0, "out Imported u7", ""},
				{0, "err a problem", "\r\x1b[Ka problem\nimported 7 of 100 000 users\x1b[K"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var screen, file bytes.Buffer
			stderr, stdout := io.Writer(&screen), io.Writer(&file)
			if tt.outTTY {
				stdout = &screen
			}
			// Two distinct writers on one screen when both are terminals.
			errW, outW := &tagged{stderr}, &tagged{stdout}
			isTerm := func(w io.Writer) bool { return w == io.Writer(errW) && tt.errTTY || w == io.Writer(outW) && tt.outTTY }
			clock := &fakeClock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
			start := clock.t
			p := newProgress(errW, isTerm, clock.now, outW)
			for _, s := range tt.steps {
				clock.t = start.Add(s.at)
				before := screen.Len()
				verb, arg, _ := strings.Cut(s.do, " ")
				switch verb {
				case "update":
					n, _ := strconv.Atoi(arg)
					p.update(func() string { return "imported " + groupDigits(n) + " of " + groupDigits(100000) + " users" })
				case "out":
					p.println(outW, arg)
				case "err":
					p.println(errW, arg)
				case "clear":
					p.clear()
				case "finish":
					p.finish("imported 100 000 of 100 000 users in 3s")
				}
				if got := screen.String()[before:]; got != s.write {
					t.Errorf("%s at %v wrote %q to the terminal, want %q", s.do, s.at, got, s.write)
				}
			}
			if !tt.outTTY && !tt.errTTY && screen.String() != "" {
				t.Errorf("stderr got %q without a terminal", screen.String())
			}
		})
	}
}

// tagged gives a writer its own identity, as stdout and stderr are two
// files on one terminal.
type tagged struct{ w io.Writer }

func (t *tagged) Write(p []byte) (int, error) { return t.w.Write(p) }

func TestGroupDigits(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1 000", 41200: "41 200", 100000: "100 000", 1234567: "1 234 567", -1000: "-1 000"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
}
