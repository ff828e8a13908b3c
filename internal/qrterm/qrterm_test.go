package qrterm_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/otpgate/otpgate/internal/qrterm"
	"github.com/otpgate/otpgate/internal/qrterm/qrtermtest"
	"github.com/otpgate/otpgate/otp"
)

// uris are realistic otpauth URIs of increasing size, built by the otp
// package exactly as otpgated builds them.
func uris(t *testing.T) map[string]string {
	t.Helper()
	secret := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*37 + 11)
		}
		return b
	}
	key := func(issuer, account string, n int, p otp.Params) string {
		return otp.Key{Issuer: issuer, Account: account, Secret: secret(n), Params: p}.URI()
	}
	return map[string]string{
		"short default":        key("otpgate", "alice@web1", 20, otp.DefaultParams()),
		"long issuer":          key("Example Corporation Production Bastion Hosts (eu-west-1, rack 42)", "deploy-automation@bastion-01.prod.internal.example.com", 20, otp.DefaultParams()),
		"unicode account":      key("Société Générale", "jürgen.müller@höst-ñ.example", 20, otp.Params{Algorithm: otp.SHA256, Digits: 8, Period: 60}),
		"64-byte SHA512 key":   key("otpgate", "root@db-primary", 64, otp.Params{Algorithm: otp.SHA512, Digits: 8, Period: 30}),
		"no issuer no account": key("", "x", 16, otp.DefaultParams()),
	}
}

func TestRenderDecodesWithZbarimg(t *testing.T) {
	for name, uri := range uris(t) {
		for i := 0; i < len(uri); i++ {
			if uri[i] >= 0x80 {
				t.Fatalf("%s: URI has non-ASCII byte %#x at %d, which readers decode in a guessed character set", name, uri[i], i)
			}
		}
		for _, ansi := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "/plain", true: "/ansi"}[ansi], func(t *testing.T) {
				var buf bytes.Buffer
				if err := qrterm.Render(&buf, uri, qrterm.Options{ANSI: ansi}); err != nil {
					t.Fatalf("Render: %v", err)
				}
				if got := qrtermtest.DecodeTerminal(t, buf.String()); got != uri {
					t.Fatalf("zbarimg decoded %q, want %q", got, uri)
				}
			})
		}
	}
}

// TestRenderShape checks the geometry the package promises: every line has
// the same width (quiet zone on both sides, so nothing ends in blanks), one
// character per module, two module rows per line, and a light quiet zone
// of QuietZone modules all around.
func TestRenderShape(t *testing.T) {
	uri := uris(t)["short default"]
	var buf bytes.Buffer
	if err := qrterm.Render(&buf, uri, qrterm.Options{}); err != nil {
		t.Fatal(err)
	}
	width, height, err := qrterm.Size(uri)
	if err != nil {
		t.Fatal(err)
	}
	if want := (width + 1) / 2; height != want {
		t.Errorf("Size says %d lines for %d module rows, want %d", height, width, want)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != height {
		t.Errorf("%d lines, Size says %d", len(lines), height)
	}
	for i, l := range lines {
		if n := utf8.RuneCountInString(l); n != width {
			t.Errorf("line %d: %d columns, want %d", i+1, n, width)
		}
		if !strings.HasPrefix(l, "█") || !strings.HasSuffix(l, "█") {
			t.Errorf("line %d does not start and end with the light quiet zone: %q", i+1, l)
		}
		if strings.ContainsAny(l, "\x1b") {
			t.Errorf("line %d has an escape sequence without Options.ANSI", i+1)
		}
	}
	// The top quiet-zone row is the upper half of line 1; the module
	// count is odd, so the bottom one is the upper half of the last line,
	// whose lower half lies below the grid and is light too.
	if strings.Trim(lines[0], "█▀") != "" {
		t.Errorf("line 1 has a dark upper half: %q", lines[0])
	}
	if l := lines[len(lines)-1]; l != strings.Repeat("█", width) {
		t.Errorf("the last line is not all quiet zone: %q", l)
	}
}

// TestRenderEnrollmentURIsAreSmall checks the size of the codes otpgate
// draws at enrollment: an otpauth URI of a 20-byte secret with the default
// parameters, issuer "otpgate" and account names up to 35 characters is a
// version-5 code, 39 columns by 20 lines, which leaves 4 lines of an 80×24
// terminal for the text around it; and it still decodes.
func TestRenderEnrollmentURIsAreSmall(t *testing.T) {
	secret := make([]byte, 20)
	for i := range secret {
		secret[i] = byte(i*53 + 7)
	}
	for _, account := range []string{"alice@web1", "deploy-automation@bastion-01.prod", "abcdefghijklmnopqrstuvwxyz@01234567"} {
		t.Run(account, func(t *testing.T) {
			uri := otp.Key{Issuer: "otpgate", Account: account, Secret: secret, Params: otp.DefaultParams()}.URI()
			w, h, err := qrterm.Size(uri)
			if err != nil {
				t.Fatal(err)
			}
			if w > 39 || h > 20 {
				t.Errorf("%d bytes of URI take %d columns × %d lines, want at most 39×20", len(uri), w, h)
			}
			var buf bytes.Buffer
			if err := qrterm.Render(&buf, uri, qrterm.Options{MaxWidth: 80, MaxHeight: 20}); err != nil {
				t.Fatalf("Render in 80×20: %v", err)
			}
			if got := qrtermtest.DecodeTerminal(t, buf.String()); got != uri {
				t.Fatalf("zbarimg decoded %q, want %q", got, uri)
			}
		})
	}
}

func TestRenderANSIWrapsEveryLine(t *testing.T) {
	var buf bytes.Buffer
	if err := qrterm.Render(&buf, "otpauth://totp/a?secret=AAAAAAAAAAAAAAAAAAAAAAAAAA", qrterm.Options{ANSI: true}); err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if !strings.HasPrefix(l, "\x1b[97;40m") || !strings.HasSuffix(l, "\x1b[0m") {
			t.Fatalf("line %d is not wrapped in white-on-black and reset: %q", i+1, l)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		opts qrterm.Options
		want error
		msg  string
	}{
		{"too wide for the terminal", "otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP", qrterm.Options{MaxWidth: 20}, qrterm.ErrTooLarge, "20 columns are available"},
		{"too tall for the terminal", "otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP", qrterm.Options{MaxWidth: 80, MaxHeight: 10}, qrterm.ErrTooLarge, "it needs 31 columns and 16 lines, 80×10 are available"},
		{"empty text", "", qrterm.Options{}, nil, "nothing to encode"},
		{"longer than any QR version", strings.Repeat("é", 3000), qrterm.Options{}, nil, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := qrterm.Render(&buf, tt.text, tt.opts)
			if err == nil {
				t.Fatal("Render succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v does not wrap %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
			if buf.Len() != 0 {
				t.Errorf("Render wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

func TestRenderFitsExactSize(t *testing.T) {
	uri := uris(t)["long issuer"]
	width, height, err := qrterm.Size(uri)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		opts qrterm.Options
		fits bool
	}{
		{qrterm.Options{MaxWidth: width, MaxHeight: height}, true},
		{qrterm.Options{MaxWidth: width}, true},
		{qrterm.Options{MaxHeight: height}, true},
		{qrterm.Options{MaxWidth: width - 1, MaxHeight: height}, false},
		{qrterm.Options{MaxWidth: width, MaxHeight: height - 1}, false},
		{qrterm.Options{MaxHeight: height - 1}, false},
	}
	for _, tt := range tests {
		err := qrterm.Render(&bytes.Buffer{}, uri, tt.opts)
		if tt.fits && err != nil {
			t.Errorf("%+v for a %d×%d code: %v", tt.opts, width, height, err)
		}
		if !tt.fits && !errors.Is(err, qrterm.ErrTooLarge) {
			t.Errorf("%+v for a %d×%d code: got %v, want ErrTooLarge", tt.opts, width, height, err)
		}
	}
}

func TestPNGDecodesWithZbarimg(t *testing.T) {
	dir := t.TempDir()
	i := 0
	for name, uri := range uris(t) {
		t.Run(name, func(t *testing.T) {
			data, err := qrterm.PNG(uri, 4)
			if err != nil {
				t.Fatal(err)
			}
			i++
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".png")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if got := qrtermtest.Zbarimg(t, path); got != uri {
				t.Fatalf("zbarimg decoded %q, want %q", got, uri)
			}
		})
	}
}

func TestPNGRejectsBadScale(t *testing.T) {
	for _, s := range []int{0, -1, 65} {
		if _, err := qrterm.PNG("x", s); err == nil || !strings.Contains(err.Error(), "scale") {
			t.Errorf("scale %d: got %v, want a scale error", s, err)
		}
	}
}

// TestCellRoundTrip checks that Cell inverts the renderer for every
// character it can write and refuses anything else.
func TestCellRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := qrterm.Render(&buf, uris(t)["unicode account"], qrterm.Options{}); err != nil {
		t.Fatal(err)
	}
	seen := map[rune]bool{}
	for _, r := range buf.String() {
		if r != '\n' {
			seen[r] = true
		}
	}
	for _, r := range []rune{'█', '▀', '▄', ' '} {
		if !seen[r] {
			t.Errorf("a real code never used %q", r)
		}
		if _, _, ok := qrterm.Cell(r); !ok {
			t.Errorf("Cell(%q) not ok", r)
		}
	}
	for _, r := range []rune{'#', '▌', 'x', '\t'} {
		if _, _, ok := qrterm.Cell(r); ok {
			t.Errorf("Cell(%q) accepted a character the renderer never writes", r)
		}
	}
}
