package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/importer"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// passwdFile is the account list --all-users walks.
const passwdFile = "/etc/passwd"

// bulkLookupMin is how many users an import must name for it to resolve
// them from one enumeration of the user database rather than one
// getpwnam each: the files backend reads /etc/passwd line by line for
// every getpwnam, so resolving N users that way reads N×N lines (13.7 s
// for 10 000 users in docs/BENCHMARKS.md, about 20 minutes for 100 000).
const bulkLookupMin = 100

// userDB resolves the users an import names. With an enumeration it
// answers the names listed there from it; every other name (enumeration
// off, failed or incomplete, as with sssd's default enumerate = false) is
// resolved with lookup, so the answers are user.Lookup's.
type userDB struct {
	listed map[string]*user.User // from one enumeration; nil without one
	lookup func(name string) (*user.User, error)
}

// newUserDB returns a userDB for an import naming n users. From
// bulkLookupMin names on, it enumerates the user database once with
// enumerate (getent passwd: NSS, so LDAP and sssd users count when their
// backend enumerates); a failed enumeration only means a lookup per name.
func newUserDB(ctx context.Context, n int, enumerate func(context.Context) ([]byte, error), lookup func(string) (*user.User, error)) *userDB {
	db := &userDB{lookup: lookup}
	if n < bulkLookupMin {
		return db
	}
	data, err := enumerate(ctx)
	if err != nil {
		return db
	}
	db.listed = parseEnumeration(data)
	return db
}

// parseEnumeration maps the user names of passwd-format data (getent
// passwd) to their accounts. A line importer.ParsePasswd refuses is left
// out, so that its name gets user.Lookup's answer and the import's usual
// message; of two lines with one name the first counts, as for getpwnam,
// which asks the NSS sources in the order getent lists them.
func parseEnumeration(data []byte) map[string]*user.User {
	accounts, _ := importer.ParsePasswd("getent passwd", data) // bad lines are left out, see above
	listed := make(map[string]*user.User, len(accounts))
	for _, a := range accounts {
		if _, dup := listed[a.Name]; !dup {
			listed[a.Name] = &user.User{Username: a.Name, Uid: strconv.Itoa(a.UID), HomeDir: a.Home}
		}
	}
	return listed
}

// enumerateTimeout bounds getent passwd: a directory too big to list in
// that time is resolved a name at a time instead.
const enumerateTimeout = 30 * time.Second

// getentPasswd enumerates the user database through NSS.
func getentPasswd(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, enumerateTimeout)
	defer cancel()
	return exec.CommandContext(ctx, "getent", "passwd").Output()
}

// get resolves name as user.Lookup does.
func (db *userDB) get(name string) (*user.User, error) {
	if u, ok := db.listed[name]; ok {
		return u, nil
	}
	return db.lookup(name)
}

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
	fs.StringVar(&o.from, "from", "", "")
	fs.Func("user", "", func(v string) error {
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				o.users = append(o.users, u)
			}
		}
		return nil
	})
	fs.BoolVar(&o.allUsers, "all-users", false, "")
	fs.BoolVar(&o.replace, "replace", false, "")
	fs.BoolVar(&o.dryRun, "dry-run", false, "")
	fs.StringVar(&o.configPath, "config", config.DefaultPath, "")
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

	var entries []*importer.Entry
	switch o.from {
	case "google-authenticator":
		entries, err = a.readGoogleAuthenticator(ctx, o)
	case "oath":
		entries, err = readOATH(ctx, o.file)
	}
	defer importer.ClearSecrets(entries)
	if err != nil {
		a.printProblems(err)
		return errSilent
	}
	if len(entries) == 0 {
		fmt.Fprintln(a.stdout, "No ~/.google_authenticator files found: nothing to import.")
		return nil
	}
	server := a.serverSettings(o.configPath)

	// Refuse users already enrolled in otpgate (unless --replace) before
	// importing anyone.
	var conflicts []string
	for _, e := range entries {
		resp, err := a.do(ctx, &protocol.Request{Op: protocol.OpAdminShow, User: e.User})
		var pe *protocol.Error
		switch {
		case errors.As(err, &pe) && pe.Code == protocol.ErrNotFound:
		case err != nil:
			return err
		case resp.Status != nil && resp.Status.State == protocol.StateActive && !o.replace:
			conflicts = append(conflicts, fmt.Sprintf("%s: %s is already enrolled in otpgate (use --replace to overwrite)", e.Source, e.User))
		}
	}
	if len(conflicts) > 0 {
		for _, c := range conflicts {
			fmt.Fprintln(a.stderr, clean(c))
		}
		a.errorf("nothing imported: %d problem(s)", len(conflicts))
		return errSilent
	}

	verb := "Imported"
	if o.dryRun {
		verb = "Would import"
	}
	done := 0
	for _, e := range entries {
		if !o.dryRun {
			req := &protocol.Request{Op: protocol.OpAdminImport, User: e.User, Import: &protocol.Import{
				Secret: otp.EncodeSecret(e.Secret), Algorithm: e.Algorithm, Digits: e.Digits, Period: e.Period,
				RecoveryCodes: e.RecoveryCodes, Replace: o.replace,
			}}
			_, err := a.do(ctx, req)
			clear(req.Import.RecoveryCodes)
			if err != nil {
				a.errorf("%s: importing %s failed", clean(e.Source), clean(e.User))
				if done > 0 {
					a.errorf("%d user(s) before it were imported; the rest were not: fix the problem and run the import again with --replace", done)
				}
				return err
			}
		}
		done++
		fmt.Fprintf(a.stdout, "%s %s from %s: %s, %d digits, %d s, %d recovery code(s)\n", verb, clean(e.User), clean(e.Source),
			e.Algorithm, e.Digits, e.Period, len(e.RecoveryCodes))
		for _, d := range e.Differences(server) {
			fmt.Fprintf(a.stdout, "    note: %s\n", clean(d))
		}
	}
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

// readGoogleAuthenticator reads and parses the files of the selected users,
// collecting every problem.
func (a *app) readGoogleAuthenticator(ctx context.Context, o importOpts) ([]*importer.Entry, error) {
	var accounts []importer.Account
	var problems importer.Errors
	if o.allUsers {
		data, err := importer.ReadAdminFile(passwdFile)
		if err != nil {
			return nil, err
		}
		accounts, err = importer.ParsePasswd(passwdFile, data)
		if err != nil {
			return nil, err
		}
	} else {
		db := newUserDB(ctx, len(o.users), getentPasswd, user.Lookup)
		for _, name := range o.users {
			u, err := db.get(name)
			if err != nil {
				problems = append(problems, &importer.LineError{File: "--user " + name, Msg: "no such user on this host"})
				continue
			}
			uid, err := strconv.Atoi(u.Uid)
			if err != nil {
				problems = append(problems, &importer.LineError{File: "--user " + name, Msg: "uid " + u.Uid + " is not a number"})
				continue
			}
			accounts = append(accounts, importer.Account{Name: u.Username, UID: uid, Home: u.HomeDir})
		}
	}
	var entries []*importer.Entry
	for _, acct := range accounts {
		path := strings.TrimSuffix(acct.Home, "/") + "/" + importer.GoogleAuthenticatorFile
		data, mode, err := importer.ReadHomeFile(acct.Home, acct.UID, importer.GoogleAuthenticatorFile)
		if errors.Is(err, fs.ErrNotExist) && o.allUsers {
			continue
		}
		if err != nil {
			problems = append(problems, &importer.LineError{File: path, Msg: fmt.Sprintf("%s: %v", acct.Name, err)})
			continue
		}
		e, err := importer.ParseGoogleAuthenticator(path, acct.Name, data)
		clear(data)
		var list importer.Errors
		if errors.As(err, &list) {
			problems = append(problems, list...)
			continue
		} else if err != nil {
			return nil, err
		}
		e.FileMode = uint32(mode)
		entries = append(entries, e)
	}
	if len(problems) > 0 {
		importer.ClearSecrets(entries)
		return nil, problems
	}
	return entries, nil
}

// readOATH reads and parses a usersfile; every user must exist here.
func readOATH(ctx context.Context, path string) ([]*importer.Entry, error) {
	data, err := importer.ReadAdminFile(path)
	if err != nil {
		return nil, err
	}
	entries, err := importer.ParseOATH(path, data)
	clear(data)
	if err != nil {
		return nil, err
	}
	var problems importer.Errors
	db := newUserDB(ctx, len(entries), getentPasswd, user.Lookup)
	for _, e := range entries {
		if _, err := db.get(e.User); err != nil {
			problems = append(problems, &importer.LineError{File: e.Source, Msg: "user " + e.User + " does not exist on this host"})
		}
	}
	if len(problems) > 0 {
		importer.ClearSecrets(entries)
		return nil, problems
	}
	return entries, nil
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
