// Package qrterm draws QR codes on a text terminal with Unicode half-block
// characters, and writes them as PNG files.
//
// # Size
//
// A code drawn on a terminal must fit on the screen together with the text
// around it, so every choice here keeps it small: each character cell is
// one module wide and two modules tall (the upper half of the cell is one
// module row, the lower half the next); the code is built at
// error-correction level L, the lowest, since a screen is not a printed
// label that gets scratched and the larger modules of a smaller version
// read better than the redundancy of a higher level; runs of upper-case
// letters and digits (the base32 secret of an otpauth URI) are encoded in
// alphanumeric mode, 5.5 bits a character instead of 8; and the quiet zone
// is one light module on each side (see QuietZone). An otpauth URI of about
// 110 bytes (otp.Key.URI of a 20-byte secret, issuer "otpgate" and an
// account name of up to about 35 characters) is a version-5 code: 39
// columns by 20 lines. Size reports the size before drawing, and
// Options.MaxWidth and Options.MaxHeight refuse a code that does not fit.
//
// PNG files have no such constraint: they use level M and the 4-module
// quiet zone of the QR specification (ISO/IEC 18004).
//
// # Colours
//
// Terminal text is drawn in the foreground colour on the background colour,
// and the characters alone cannot say which of the two is light. SSH
// sessions overwhelmingly run in dark-background terminals, so the renderer
// draws the LIGHT modules (and the quiet zone) as filled blocks and leaves
// the dark modules as the terminal's background. The plain text therefore
// scans on a dark terminal, survives copy and paste, tmux capture-pane and
// logs of the session, and never ends a line with blanks that a terminal or
// multiplexer might trim (the quiet zone is drawn on both sides).
//
// When the output is a colour-capable terminal, Options.ANSI additionally
// wraps each line in explicit "bright white on black" SGR sequences, so the
// same characters also scan on a light-background terminal, where the
// foreground would otherwise be dark and the code inverted. Inverted codes
// are not read by every authenticator app.
package qrterm

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"rsc.io/qr"
	"rsc.io/qr/coding"
)

// QuietZone is the number of light modules drawn around a code on the
// terminal. Beyond it lies the terminal's (dark) background, so one light
// module is what a reader needs to see the edge of each finder pattern;
// the tests decode codes painted with exactly this margin and darkness
// beyond it.
const QuietZone = 1

// The half-block characters. Filled means light.
const (
	bothLight   = '█' // U+2588 FULL BLOCK
	topLight    = '▀' // U+2580 UPPER HALF BLOCK
	bottomLight = '▄' // U+2584 LOWER HALF BLOCK
	noneLight   = ' '
)

// The SGR sequences written with Options.ANSI: bright white foreground on a
// black background, then a reset.
const (
	ansiStart = "\x1b[97;40m"
	ansiReset = "\x1b[0m"
)

// ErrTooLarge is returned (wrapped) by Render when the code does not fit in
// Options.MaxWidth columns or Options.MaxHeight lines.
var ErrTooLarge = errors.New("qrterm: QR code does not fit in the terminal")

// Options control Render.
type Options struct {
	// ANSI wraps each line in explicit colours so that the code also scans
	// on light-background terminals. Use it only when writing to a
	// terminal that understands SGR sequences.
	ANSI bool
	// MaxWidth and MaxHeight, if positive, are the columns and lines
	// available for the code itself (leave out the lines of any text
	// printed with it); a larger code is not drawn and Render returns an
	// error wrapping ErrTooLarge.
	MaxWidth, MaxHeight int
}

// encode builds the QR code for text at level l, in the smallest version
// that holds it.
func encode(text string, l coding.Level) (*coding.Code, error) {
	if text == "" {
		return nil, errors.New("qrterm: nothing to encode")
	}
	segs := segments(text)
	for v := coding.Version(coding.MinVersion); v <= coding.MaxVersion; v++ {
		bits := 0
		for _, s := range segs {
			bits += s.Bits(v)
		}
		if bits > v.DataBytes(l)*8 {
			continue
		}
		return bestMask(v, l, segs)
	}
	return nil, fmt.Errorf("qrterm: encode %d bytes: too long for any QR code", len(text))
}

// minAlphaRun is the shortest run of alphanumeric-mode characters worth a
// segment of its own: switching from byte mode and back costs up to 25
// bits of headers, and each character saves 2.5.
const minAlphaRun = 12

// segments splits text into byte-mode segments and alphanumeric-mode
// segments for long runs of the characters that mode holds (0-9, A-Z,
// space and $%*+-./:).
func segments(text string) []coding.Encoding {
	var segs []coding.Encoding
	start := 0 // start of the pending byte-mode segment
	for i := 0; i < len(text); {
		j := i
		for j < len(text) && isAlpha(text[j]) {
			j++
		}
		if j-i >= minAlphaRun {
			if start < i {
				segs = append(segs, coding.String(text[start:i]))
			}
			segs = append(segs, coding.Alpha(text[i:j]))
			start = j
		}
		i = j + 1
	}
	if start < len(text) {
		segs = append(segs, coding.String(text[start:]))
	}
	return segs
}

func isAlpha(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || c == ' ' || c == '$' || c == '%' || c == '*' || c == '+' || c == '-' || c == '.' || c == '/' || c == ':'
}

// Size returns the columns and lines that Render uses for text, quiet
// zone included.
func Size(text string) (width, height int, err error) {
	c, err := encode(text, coding.L)
	if err != nil {
		return 0, 0, err
	}
	n := c.Size + 2*QuietZone
	return n, (n + 1) / 2, nil
}

// Width returns the number of terminal columns that Render uses for text.
func Width(text string) (int, error) {
	w, _, err := Size(text)
	return w, err
}

// Render writes the QR code of text to w as lines of half-block characters
// (see the package documentation for the size and colour choices).
//
// text should be ASCII, as otpauth URIs built by package otp are (labels
// and parameters are percent-encoded): QR byte mode carries no character
// set, and readers guess one for other bytes (zbar reads raw UTF-8 as
// Big5, for instance).
func Render(w io.Writer, text string, opts Options) error {
	c, err := encode(text, coding.L)
	if err != nil {
		return err
	}
	n := c.Size + 2*QuietZone
	lines := (n + 1) / 2
	if (opts.MaxWidth > 0 && n > opts.MaxWidth) || (opts.MaxHeight > 0 && lines > opts.MaxHeight) {
		return fmt.Errorf("%w: it needs %d columns and %d lines, %s are available", ErrTooLarge, n, lines, available(opts))
	}
	// light reports whether module (x, y) of the padded grid is light.
	// The grid has an odd number of rows, so the lower half of the last
	// line lies below it: it is drawn light too, one more quiet-zone row,
	// which keeps every line solid at both ends.
	light := func(x, y int) bool {
		x, y = x-QuietZone, y-QuietZone
		return x < 0 || y < 0 || x >= c.Size || y >= c.Size || !c.Black(x, y)
	}
	bw := bufio.NewWriter(w)
	for y := 0; y < n; y += 2 {
		if opts.ANSI {
			bw.WriteString(ansiStart)
		}
		for x := 0; x < n; x++ {
			bw.WriteRune(cell(light(x, y), light(x, y+1)))
		}
		if opts.ANSI {
			bw.WriteString(ansiReset)
		}
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("qrterm: write: %w", err)
	}
	return nil
}

// available says what room opts give, for an error message.
func available(opts Options) string {
	switch {
	case opts.MaxWidth > 0 && opts.MaxHeight > 0:
		return fmt.Sprintf("%d×%d", opts.MaxWidth, opts.MaxHeight)
	case opts.MaxWidth > 0:
		return fmt.Sprintf("%d columns", opts.MaxWidth)
	}
	return fmt.Sprintf("%d lines", opts.MaxHeight)
}

// cell returns the character for a cell whose upper and lower modules are
// light or dark.
func cell(top, bottom bool) rune {
	switch {
	case top && bottom:
		return bothLight
	case top:
		return topLight
	case bottom:
		return bottomLight
	}
	return noneLight
}

// Cell is the inverse of the renderer's mapping: it reports which halves
// of a rendered character are light, and false for a character the
// renderer never writes.
func Cell(r rune) (top, bottom, ok bool) {
	switch r {
	case bothLight:
		return true, true, true
	case topLight:
		return true, false, true
	case bottomLight:
		return false, true, true
	case noneLight:
		return false, false, true
	}
	return false, false, false
}

// PNG returns a PNG image of the QR code of text (level M, dark modules
// black on white, 4-module quiet zone), scale pixels per module.
func PNG(text string, scale int) ([]byte, error) {
	if scale < 1 || scale > 64 {
		return nil, fmt.Errorf("qrterm: scale must be 1 to 64 pixels per module, not %d", scale)
	}
	c, err := encode(text, coding.M)
	if err != nil {
		return nil, err
	}
	code := &qr.Code{Bitmap: c.Bitmap, Size: c.Size, Stride: c.Stride, Scale: scale}
	return code.PNG(), nil
}
