// Package qrtermtest turns half-block QR codes captured from a terminal back
// into images and decodes them with zbarimg, so that tests check what a
// phone would read rather than what the renderer meant to draw.
package qrtermtest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/otpgate/otpgate/internal/qrterm"
)

// sgr matches the colour sequences the renderer may add.
var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

// ExtractGrid returns the lines of text that form the QR code: the longest
// run of consecutive lines made only of half-block characters (and spaces),
// all of the same width, after removing SGR colour sequences. Lines that
// hold only spaces end the run, because tmux may trim them.
func ExtractGrid(text string) ([]string, error) {
	var best, cur []string
	width := -1
	flush := func() {
		if len(cur) > len(best) {
			best = cur
		}
		cur, width = nil, -1
	}
	for _, line := range strings.Split(sgr.ReplaceAllString(text, ""), "\n") {
		line = strings.TrimRight(line, "\r")
		if !isGridLine(line) {
			flush()
			continue
		}
		n := utf8.RuneCountInString(line)
		if width >= 0 && n != width {
			flush()
		}
		width = n
		cur = append(cur, line)
	}
	flush()
	if len(best) < 2 {
		return nil, fmt.Errorf("no half-block QR code found in %d bytes of text", len(text))
	}
	return best, nil
}

func isGridLine(line string) bool {
	if strings.TrimSpace(line) == "" {
		return false
	}
	for _, r := range line {
		if _, _, ok := qrterm.Cell(r); !ok {
			return false
		}
	}
	return true
}

// Image paints grid (lines of half-block characters as written by
// qrterm.Render) as a grey image, scale pixels per module, with filled
// halves white and empty halves black, plus a margin of 4 modules in
// black: the terminal's dark background around the code, so that a code
// decodes only if the quiet zone drawn by the renderer is enough.
func Image(grid []string, scale int) (*image.Gray, error) {
	if len(grid) == 0 || scale < 1 {
		return nil, fmt.Errorf("empty grid or bad scale %d", scale)
	}
	const margin = 4
	w := utf8.RuneCountInString(grid[0])
	h := 2 * len(grid)
	img := image.NewGray(image.Rect(0, 0, (w+2*margin)*scale, (h+2*margin)*scale))
	paint := func(mx, my int, light bool) {
		c := color.Gray{Y: 0}
		if light {
			c.Y = 0xff
		}
		for dy := 0; dy < scale; dy++ {
			for dx := 0; dx < scale; dx++ {
				img.SetGray((mx+margin)*scale+dx, (my+margin)*scale+dy, c)
			}
		}
	}
	for row, line := range grid {
		if n := utf8.RuneCountInString(line); n != w {
			return nil, fmt.Errorf("line %d is %d columns wide, line 1 is %d", row+1, n, w)
		}
		x := 0
		for _, r := range line {
			top, bottom, ok := qrterm.Cell(r)
			if !ok {
				return nil, fmt.Errorf("line %d column %d: %q is not a half-block character", row+1, x+1, r)
			}
			paint(x, 2*row, top)
			paint(x, 2*row+1, bottom)
			x++
		}
	}
	return img, nil
}

// PNG is Image encoded as PNG.
func PNG(grid []string, scale int) ([]byte, error) {
	img, err := Image(grid, scale)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Zbarimg decodes the QR code in the PNG file at path with
// `zbarimg --raw -q` and returns the decoded text. It fails the test if
// zbarimg is missing or finds no code.
func Zbarimg(t testing.TB, path string) string {
	t.Helper()
	bin, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Fatalf("zbarimg not found (install the zbar-tools package): %v", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "--raw", "-q", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("zbarimg %s: %v (stderr %q)", path, err, stderr.String())
	}
	return strings.TrimSuffix(stdout.String(), "\n")
}

// DecodeTerminal extracts the half-block QR code from captured terminal
// text, paints it as a PNG in a temporary directory and returns what
// zbarimg reads from it.
func DecodeTerminal(t testing.TB, captured string) string {
	t.Helper()
	grid, err := ExtractGrid(captured)
	if err != nil {
		t.Fatalf("%v; captured text:\n%s", err, captured)
	}
	data, err := PNG(grid, 6)
	if err != nil {
		t.Fatalf("paint captured QR code: %v", err)
	}
	path := filepath.Join(t.TempDir(), "captured-qr.png")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return Zbarimg(t, path)
}
