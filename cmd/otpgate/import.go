package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/importer"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// importOpts are the flags of admin import.
type importOpts struct {
	from       string
	users      []string
	allUsers   bool
	replace    bool
	dryRun     bool
	configPath string
	file       string
}

func (a *app) cmdImport(ctx context.Context, args []string) error {
	const cmd = "admin import"
	var o importOpts
	fs := newFlagSet(cmd)
	fs.StringVar(&o.from, "from", "", "the `SOURCE` of the secrets: google-authenticator or oath")
	fs.Func("user", "import this `USER`'s ~/.google_authenticator (repeatable, or a comma-separated list)", func(v string) error {
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				o.users = append(o.users, u)
			}
		}
		return nil
	})
	fs.BoolVar(&o.allUsers, "all-users", false, "every account of the user database with a ~/.google_authenticator")
	fs.BoolVar(&o.replace, "replace", false, "overwrite existing otpgate enrollments")
	fs.BoolVar(&o.dryRun, "dry-run", false, "check everything and print what would be imported")
	fs.StringVar(&o.configPath, "config", config.DefaultPath, "the `FILE` of otpgated's configuration, to compare settings with")
	pos, ok, err := a.parseArgs(cmd, fs, args)
	if !ok || err != nil {
		return err
	}
	if err := o.check(fs, pos); err != nil {
		return err
	}
	if err := a.requireRoot(); err != nil {
		return err
	}

	var src importer.Source
	switch o.from {
	case "google-authenticator":
		src, err = importer.NewGoogleAuthenticatorSource(o.users, o.allUsers)
	case "oath":
		src, err = importer.NewOATHSource(ctx, o.file)
	}
	if err != nil {
		a.printProblems(err)
		return errSilent
	}
	defer src.Close()
	prog := newProgress(a.stderr, isTerminalWriter, time.Now, a.stdout)

	// First every check of the files, then, if they are all fine, every
	// user already enrolled in otpgate is refused (unless --replace),
	// before anyone is imported. Problems are listed as they are found.
	problems := 0
	report := func(p *importer.LineError) {
		problems++
		prog.println(a.stderr, clean(p.Error()))
	}
	users, err := src.Check(ctx, report, func(n int) {
		prog.update(func() string { return "read " + groupDigits(n) + " users" })
	})
	prog.clear()
	switch {
	case err != nil:
		a.printProblems(err)
		return errSilent
	case problems > 0:
		a.errorf("nothing imported: %d problem(s)", problems)
		return errSilent
	case users == 0:
		fmt.Fprintln(a.stdout, "No ~/.google_authenticator files found: nothing to import.")
		return nil
	}
	checked := 0
	var daemonErr error
	err = src.Load(ctx, func(e *importer.Entry) error {
		checked++
		prog.update(func() string {
			return "checked " + groupDigits(checked) + " of " + groupDigits(users) + " users with otpgated"
		})
		resp, err := a.do(ctx, &protocol.Request{Op: protocol.OpAdminShow, User: e.User})
		var pe *protocol.Error
		switch {
		case errors.As(err, &pe) && pe.Code == protocol.ErrNotFound:
		case err != nil:
			daemonErr = err
			return err
		case resp.Status != nil && resp.Status.State == protocol.StateActive && !o.replace:
			report(&importer.LineError{File: e.Source, Msg: e.User + " is already enrolled in otpgate (use --replace to overwrite)"})
		}
		return nil
	})
	prog.clear()
	switch {
	case daemonErr != nil && errors.Is(err, daemonErr):
		return err
	case err != nil:
		a.printProblems(err)
		return errSilent
	case problems > 0:
		a.errorf("nothing imported: %d problem(s)", problems)
		return errSilent
	}
	server := a.serverSettings(o.configPath)

	// Pass 2: the same users, read again, imported one by one.
	verb := "Imported"
	if o.dryRun {
		verb = "Would import"
	}
	start, done := time.Now(), 0
	progressText := func() string {
		return strings.ToLower(verb[:1]) + verb[1:] + " " + groupDigits(done) + " of " + groupDigits(users) + " users"
	}
	var failed *importer.Entry
	err = src.Load(ctx, func(e *importer.Entry) error {
		if !o.dryRun {
			req := &protocol.Request{Op: protocol.OpAdminImport, User: e.User, Import: &protocol.Import{
				Secret: otp.EncodeSecret(e.Secret), Algorithm: e.Algorithm, Digits: e.Digits, Period: e.Period,
				RecoveryCodes: e.RecoveryCodes, Replace: o.replace,
			}}
			_, err := a.do(ctx, req)
			clear(req.Import.RecoveryCodes)
			if err != nil {
				failed = e
				return err
			}
		}
		done++
		prog.println(a.stdout, fmt.Sprintf("%s %s from %s: %s, %d digits, %d s, %d recovery code(s)", verb, clean(e.User), clean(e.Source),
			e.Algorithm, e.Digits, e.Period, len(e.RecoveryCodes)))
		for _, d := range e.Differences(server) {
			prog.println(a.stdout, "    note: "+clean(d))
		}
		prog.update(progressText)
		return nil
	})
	if err != nil {
		prog.clear()
		if failed != nil {
			a.errorf("%s: importing %s failed", clean(failed.Source), clean(failed.User))
		} else {
			a.errorf("%s", clean(err.Error()))
		}
		switch {
		case o.dryRun:
		case done > 0:
			a.errorf("%d user(s) before it were imported; the rest were not: fix the problem and run the import again with --replace", done)
		default:
			a.errorf("nothing imported")
		}
		if failed != nil {
			return err
		}
		return errSilent
	}
	prog.finish(progressText() + " in " + time.Since(start).Round(100*time.Millisecond).String())
	if o.dryRun {
		fmt.Fprintf(a.stdout, "Dry run: %d user(s) checked, nothing imported.\n", done)
		return nil
	}
	fmt.Fprintf(a.stdout, "Imported %d user(s).\n", done)
	fmt.Fprintln(a.stdout, "The old files were left in place: once PAM uses pam_otpgate and logins work, delete them (they hold the secrets in clear text).")
	return nil
}

// check validates the combination of import flags.
func (o *importOpts) check(fs *flag.FlagSet, pos []string) error {
	const cmd = "admin import"
	switch o.from {
	case "google-authenticator":
		if len(pos) > 0 {
			return usagef(cmd, "--from google-authenticator takes no FILE (got %q): use --user or --all-users", pos[0])
		}
		if o.allUsers == (len(o.users) > 0) {
			return usagef(cmd, "--from google-authenticator needs either --user USER or --all-users")
		}
	case "oath":
		if o.allUsers || len(o.users) > 0 {
			return usagef(cmd, "--user and --all-users apply to google-authenticator; a usersfile names its users")
		}
		if len(pos) != 1 {
			return usagef(cmd, "--from oath needs exactly one FILE (the pam_oath usersfile)")
		}
		o.file = pos[0]
	case "":
		return usagef(cmd, "--from is required: google-authenticator or oath")
	default:
		return usagef(cmd, "--from must be google-authenticator or oath, not %q", o.from)
	}
	return nil
}

// printProblems lists parse problems one per line, then says that nothing
// was imported.
func (a *app) printProblems(err error) {
	var list importer.Errors
	if errors.As(err, &list) {
		for _, p := range list {
			fmt.Fprintln(a.stderr, clean(p.Error()))
		}
		a.errorf("nothing imported: %d problem(s)", len(list))
		return
	}
	a.errorf("%s", clean(err.Error()))
	a.errorf("nothing imported")
}

// serverSettings reads the settings imported entries are compared with
// from otpgated's configuration, or uses the defaults (saying so).
func (a *app) serverSettings(path string) importer.Server {
	cfg := config.Default()
	if c, err := config.Load(path); err == nil {
		cfg = *c
	} else if !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(a.stderr, "otpgate: warning: %s; comparing with the default settings\n", clean(err.Error()))
	}
	return importer.Server{Skew: cfg.TOTP.Skew, MaxFailures: cfg.RateLimit.MaxFailures, Lockout: cfg.RateLimit.Lockout.Duration}
}
