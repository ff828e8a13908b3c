package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/otpgate/otpgate/internal/accounts"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/qrterm"
	"golang.org/x/term"
)

// maxTries is how many codes a prompt accepts before giving up. Every
// wrong code also counts toward otpgated's lockout.
const maxTries = 3

// enrollOpts are the flags shared by enroll and admin enroll.
type enrollOpts struct {
	noQR   bool
	qr     string // "" or "png"
	pngOut string
	force  bool
}

func (a *app) cmdEnroll(ctx context.Context, args []string) error {
	var o enrollOpts
	fs := newFlagSet("enroll")
	o.register(fs)
	pos, ok, err := a.parseArgs("enroll", fs, args)
	if !ok || err != nil {
		return err
	}
	if err := o.check("enroll", &pos); err != nil {
		return err
	}
	if err := wantArgs("enroll", pos); err != nil {
		return err
	}
	u, err := a.self()
	if err != nil {
		return err
	}
	return a.enroll(ctx, u, o)
}

// register defines the QR flags of enroll and admin enroll in fs.
func (o *enrollOpts) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.noQR, "no-qr", false, "do not draw the QR code; print only the key and the URI")
	fs.StringVar(&o.qr, "qr", "", "`png`, the only format: write the QR code to FILE, the last argument (a new file, mode 0600), instead of drawing it; FILE holds the secret: delete it after use")
}

// check validates the QR flags and takes FILE for --qr=png from pos.
func (o *enrollOpts) check(cmd string, pos *[]string) error {
	switch o.qr {
	case "":
	case "png":
		if o.noQR {
			return usagef(cmd, "--no-qr and --qr=png exclude each other")
		}
		if len(*pos) == 0 {
			return usagef(cmd, "--qr=png needs a FILE to write the PNG to")
		}
		o.pngOut, *pos = (*pos)[len(*pos)-1], (*pos)[:len(*pos)-1]
	default:
		return usagef(cmd, "--qr must be png (with a FILE), not %q", o.qr)
	}
	return nil
}

// enroll runs the whole enrollment of account u: a current code if u is
// already active, a new pending secret, the QR code and key, the
// confirmation code, then the recovery codes.
func (a *app) enroll(ctx context.Context, u *accounts.User, o enrollOpts) error {
	name := u.Name
	st, err := a.do(ctx, &protocol.Request{Op: protocol.OpStatus, User: name})
	if err != nil {
		return err
	}
	// Create the PNG file first: if the name is taken, nothing has
	// changed yet. "~" is the home of whoever runs otpgate, not u's.
	var png *secretFile
	if o.pngOut != "" {
		if png, err = openNewSecretFile(o.pngOut, a.home()); err != nil {
			return err
		}
		defer func() {
			if png != nil {
				if err := png.discard(); err != nil {
					fmt.Fprintf(a.stderr, "otpgate: %v\n", err)
				}
			}
		}()
	}

	begin := &protocol.Request{Op: protocol.OpEnrollBegin, User: name, Force: o.force}
	var resp *protocol.Response
	if st.Status != nil && st.Status.State == protocol.StateActive && !o.force {
		fmt.Fprintf(a.stdout, "%s already has two-factor authentication. Enrolling a new device replaces the old one.\n", clean(name))
		resp, err = a.withCode(ctx, fmt.Sprintf("Enter a current code for %s (or a recovery code): ", clean(name)), func(code string) (*protocol.Response, error) {
			begin.Code = code
			return a.do(ctx, begin)
		})
	} else {
		resp, err = a.do(ctx, begin)
	}
	if err != nil {
		return err
	}
	info := resp.Enroll
	if info == nil {
		return errors.New("otpgated sent no enrollment data")
	}

	if png != nil {
		data, err := qrterm.PNG(info.URI, 8)
		if err != nil {
			return err
		}
		f := png
		png = nil
		if err := f.finish(data); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "QR code written to %s (mode 0600). It contains the secret: delete it once the code is scanned.\n\n", clean(f.path))
		a.showKey(info)
	} else {
		a.showEnrollment(info, !o.noQR)
	}

	codes, err := a.withCode(ctx, confirmPrompt, func(code string) (*protocol.Response, error) {
		return a.do(ctx, &protocol.Request{Op: protocol.OpEnrollConfirm, User: name, Code: code})
	})
	if err != nil {
		if pe := (*protocol.Error)(nil); errors.As(err, &pe) && pe.Code == protocol.ErrInvalidCode {
			fmt.Fprintf(a.stderr, "The new secret was not activated. Run 'otpgate enroll' again to start over.\n")
		}
		return err
	}
	fmt.Fprintf(a.stdout, "\nTwo-factor authentication is now active for %s.\n", clean(name))
	return a.showRecoveryCodes(ctx, name, codes.RecoveryCodes)
}

// withCode asks for a code and runs send with it, up to maxTries times
// while otpgated answers that the code is wrong; its message (which may say
// the device's clock is off) is shown each time.
func (a *app) withCode(ctx context.Context, prompt string, send func(code string) (*protocol.Response, error)) (*protocol.Response, error) {
	var last error
	for try := 1; try <= maxTries; try++ {
		code, err := a.readCode(ctx, prompt)
		if err != nil {
			return nil, err
		}
		resp, err := send(code)
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Code != protocol.ErrInvalidCode {
			return resp, err
		}
		last = err
		if try < maxTries {
			fmt.Fprintf(a.stderr, "%s\n", clean(pe.Message))
		}
	}
	return nil, last
}

// confirmPrompt asks for the first code of a new key.
const confirmPrompt = "Enter the code shown in your app to finish: "

// showEnrollment prints the new key on stdout for the person to scan or
// type in: with drawQR, its QR code and the key in the most detailed
// layout that fits the terminal together with the confirmation prompt
// that follows, else the key alone (see docs/cli.md). On a terminal whose
// size is known, every line stays on the screen at once: the full details
// (issuer, account, parameters, URI) when there is room, else the QR code
// with the key on one line, else no QR code and a line saying what to do.
// ANSI colours are added only for a terminal that is not "dumb" and when
// NO_COLOR is unset; $TERM is compared, never printed.
func (a *app) showEnrollment(info *protocol.EnrollInfo, drawQR bool) {
	if !drawQR {
		a.showKey(info)
		return
	}
	const intro = "Scan this QR code with your authenticator app:"
	opts := qrterm.Options{}
	width, height := 0, 0 // unknown: no limit
	if a.outFd >= 0 {
		opts.ANSI = a.getenv("TERM") != "dumb" && a.getenv("NO_COLOR") == ""
		if w, h, err := term.GetSize(a.outFd); err == nil && w > 0 && h > 0 {
			width, height = w, h
		}
	}
	full := keyLines(info)
	short := shortKeyLines(info)
	// The lines around the code, most detailed first: the intro and a
	// blank line above, a blank line, the details and a blank line below;
	// or the intro above and the key on one line below. The prompt
	// follows either.
	layouts := []struct {
		above, below []string
	}{
		{[]string{intro, ""}, append(append([]string{""}, full...), "")},
		{[]string{intro}, short},
	}
	var qr bytes.Buffer
	var err error
	for _, l := range layouts {
		qr.Reset()
		opts.MaxWidth, opts.MaxHeight = width, 0
		if height > 0 {
			room := height - rows(width, l.above) - rows(width, l.below) - rows(width, []string{confirmPrompt})
			if room <= 0 {
				err = fmt.Errorf("%w: the text leaves no line for it", qrterm.ErrTooLarge)
				continue
			}
			opts.MaxHeight = room
		}
		if err = qrterm.Render(&qr, info.URI, opts); err == nil {
			writeLines(a.stdout, l.above)
			_, _ = a.stdout.Write(qr.Bytes()) // to the terminal, as writeLines: nowhere else to report a failure
			writeLines(a.stdout, l.below)
			return
		}
		if !errors.Is(err, qrterm.ErrTooLarge) {
			break
		}
	}
	if errors.Is(err, qrterm.ErrTooLarge) {
		qw, qh, _ := qrterm.Size(info.URI)
		fmt.Fprintf(a.stdout, "No room for the QR code (%d×%d characters) and the key in this %d×%d terminal.\n", qw, qh, width, height)
		fmt.Fprintf(a.stdout, "Make the window larger and run this again, use --qr=png FILE, or type the key.\n\n")
	} else {
		fmt.Fprintf(a.stdout, "(No QR code: %v. Type the key in the app.)\n\n", err)
	}
	a.showKey(info)
}

// keyLines are the key and its parameters for typing it in by hand, and
// the URI for password managers that take one.
func keyLines(info *protocol.EnrollInfo) []string {
	return []string{
		"Or add it by hand (time-based):",
		"  Key:        " + group(clean(info.Secret)),
		"  Issuer:     " + clean(info.Issuer),
		"  Account:    " + clean(info.Account),
		"  Algorithm:  " + clean(info.Algorithm),
		fmt.Sprintf("  Digits:     %d", info.Digits),
		fmt.Sprintf("  Period:     %d seconds", info.Period),
		"  URI:        " + clean(info.URI),
	}
}

// shortKeyLines are the key on one line, for a terminal that has no room
// for keyLines: the parameters that apps assume (SHA1, 6 digits, 30
// seconds) go unsaid, others are named.
func shortKeyLines(info *protocol.EnrollInfo) []string {
	if info.Algorithm == "SHA1" && info.Digits == 6 && info.Period == 30 {
		return []string{"Or type the key (time-based): " + group(clean(info.Secret))}
	}
	return []string{
		fmt.Sprintf("Or type the key (time-based, %s, %d digits, every %d seconds):", clean(info.Algorithm), info.Digits, info.Period),
		"  " + group(clean(info.Secret)),
	}
}

// showKey prints keyLines and a blank line.
func (a *app) showKey(info *protocol.EnrollInfo) {
	writeLines(a.stdout, append(keyLines(info), ""))
}

func writeLines(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// rows is the number of terminal rows lines take in width columns (0:
// unlimited), long lines wrapping.
func rows(width int, lines []string) int {
	n := 0
	for _, l := range lines {
		c := utf8.RuneCountInString(l)
		if width <= 0 || c <= width {
			n++
			continue
		}
		n += (c + width - 1) / width
	}
	return n
}
