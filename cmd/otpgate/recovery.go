package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
)

// cmdRecoveryCodes is "otpgate recovery-codes": a new set of recovery
// codes for the caller, after a current code.
func (a *app) cmdRecoveryCodes(ctx context.Context, args []string) error {
	u, err := a.selfCommand("recovery-codes", newFlagSet("recovery-codes"), args)
	if u == nil {
		return err
	}
	resp, err := a.withCode(ctx, "Enter a current code to make new recovery codes: ", func(code string) (*protocol.Response, error) {
		return a.do(ctx, &protocol.Request{Op: protocol.OpRecoveryCodes, User: u.Name, Code: code})
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "Your old recovery codes no longer work.")
	return a.showRecoveryCodes(ctx, u.Name, resp.RecoveryCodes)
}

// Recovery codes belong off the server they let someone into: with a
// user's password, a code read from a file on this server passes the
// second factor. So they are printed once, and a file is offered only to
// carry them off: the text around the offer, after the save and in the
// file itself says to copy the file elsewhere and delete it here.
const (
	recoveryWarning = "This is the only time they are shown. Keep them off this server (a password\n" +
		"manager, paper): anyone who reads them here and knows the password gets past\n" +
		"the code.\n"
	saveOffer = "To carry them off this server, you may save them to a new file (mode 0600),\n" +
		"copy it elsewhere and delete it here.\n"
	savePrompt = "Save them to a file? Enter a path, or press Enter to skip: "
	// savedAdvice follows "Saved to PATH (mode 0600)."; %s is the path.
	savedAdvice = "Copy it off this server (or hand it over), then delete it here: rm %s\n"
)

// showRecoveryCodes prints codes once, with a warning, and offers to save
// them to a new file; "~" in the path typed is the home of whoever runs
// otpgate (the administrator's for admin enroll), not name's.
func (a *app) showRecoveryCodes(ctx context.Context, name string, codes []string) error {
	if len(codes) == 0 {
		fmt.Fprintln(a.stdout, "No recovery codes were issued (enroll.recovery_codes is 0).")
		return nil
	}
	fmt.Fprintf(a.stdout, "\nRecovery codes for %s. Each works once, in place of a code, if you lose your device.\n", clean(name))
	fmt.Fprint(a.stdout, recoveryWarning)
	fmt.Fprintln(a.stdout)
	for _, c := range codes {
		fmt.Fprintf(a.stdout, "    %s\n", clean(c))
	}
	fmt.Fprintln(a.stdout)
	fmt.Fprint(a.stdout, saveOffer)
	return a.offerSave(ctx, name, a.home(), codes)
}

// offerSave asks for a path to save the recovery codes to; an empty
// answer (or closed stdin) skips. "~" is expanded against home. Existing
// files and symbolic links (in any component) are refused and the
// question asked again.
func (a *app) offerSave(ctx context.Context, name, home string, codes []string) error {
	for try := 1; try <= maxTries; try++ {
		answer, err := a.readLine(ctx, savePrompt)
		if errors.Is(err, errNoInput) || (err == nil && answer == "") {
			fmt.Fprintln(a.stdout, "Not saved.")
			return nil
		}
		if err != nil {
			return err
		}
		path, err := writeSecretFile(answer, home, recoveryFile(name, a.now(), codes))
		if err != nil {
			a.errorf("%s", clean(err.Error()))
			continue
		}
		fmt.Fprintf(a.stdout, "Saved to %s (mode 0600).\n", clean(path))
		fmt.Fprintf(a.stdout, savedAdvice, shellQuote(clean(path)))
		return nil
	}
	a.errorf("recovery codes not saved: copy them from the screen above")
	return nil
}

// recoveryFile is the content of a saved recovery-code file.
func recoveryFile(name string, now time.Time, codes []string) []byte {
	host, _ := os.Hostname()
	var b strings.Builder
	fmt.Fprintf(&b, "# otpgate recovery codes for %s on %s, made %s.\n", name, host, now.Format(time.RFC3339))
	b.WriteString("# Each code works once in place of a verification code.\n")
	fmt.Fprintf(&b, "# Do not keep this file on %s: copy the codes to a password manager or\n", host)
	b.WriteString("# paper, then delete it there.\n")
	for _, c := range codes {
		b.WriteString(c)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// shellQuote quotes path for a shell command line when it needs it.
func shellQuote(path string) string {
	if strings.IndexFunc(path, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+~,:@%", r))
	}) < 0 {
		return path
	}
	return "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
}
