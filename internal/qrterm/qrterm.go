// Package qrterm draws QR codes on a text terminal with Unicode half-block
// characters, and writes them as PNG files.
//
// Each character cell is one module wide and two modules tall: the upper
// half of the cell is one module row and the lower half the next. The code
// is built at error-correction level M with a 4-module quiet zone, as the
// QR specification (ISO/IEC 18004) requires for reliable scanning.
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
)

// QuietZone is the number of light modules drawn around the code.
const QuietZone = 4

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

// ErrTooWide is returned (wrapped) by Render when the code does not fit in
// Options.MaxWidth columns.
var ErrTooWide = errors.New("qrterm: QR code is wider than the terminal")

// Options control Render.
type Options struct {
	// ANSI wraps each line in explicit colours so that the code also scans
	// on light-background terminals. Use it only when writing to a
	// terminal that understands SGR sequences.
	ANSI bool
	// MaxWidth, if positive, is the number of columns available; a wider
	// code is not drawn and Render returns an error wrapping ErrTooWide.
	MaxWidth int
}

// encode builds the QR code for text at level M.
func encode(text string) (*qr.Code, error) {
	if text == "" {
		return nil, errors.New("qrterm: nothing to encode")
	}
	c, err := qr.Encode(text, qr.M)
	if err != nil {
		return nil, fmt.Errorf("qrterm: encode %d bytes: %w", len(text), err)
	}
	return c, nil
}

// Width returns the number of terminal columns (and modules, quiet zone
// included) that Render uses for text.
func Width(text string) (int, error) {
	c, err := encode(text)
	if err != nil {
		return 0, err
	}
	return c.Size + 2*QuietZone, nil
}

// Render writes the QR code of text to w as lines of half-block characters
// (see the package documentation for the colour choice).
//
// text should be ASCII, as otpauth URIs built by package otp are (labels
// and parameters are percent-encoded): QR byte mode carries no character
// set, and readers guess one for other bytes (zbar reads raw UTF-8 as
// Big5, for instance).
func Render(w io.Writer, text string, opts Options) error {
	c, err := encode(text)
	if err != nil {
		return err
	}
	n := c.Size + 2*QuietZone
	if opts.MaxWidth > 0 && n > opts.MaxWidth {
		return fmt.Errorf("%w: it needs %d columns, %d are available", ErrTooWide, n, opts.MaxWidth)
	}
	// light reports whether module (x, y) of the padded grid is light.
	// The grid has an odd number of rows, so the lower half of the last
	// line lies below it: it is drawn light too, a fifth quiet-zone row,
	// which keeps every line solid at both ends.
	light := func(x, y int) bool {
		return !c.Black(x-QuietZone, y-QuietZone)
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
	c, err := encode(text)
	if err != nil {
		return nil, err
	}
	c.Scale = scale
	return c.PNG(), nil
}
