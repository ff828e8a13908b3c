package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/otpgate/otpgate/internal/accounts"
	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/importer"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// bulkLookupMin is how many users an import must name for it to resolve
// them from one enumeration of the user database rather than one
// getpwnam each: the files backend reads /etc/passwd line by line for
// every getpwnam, so resolving N users that way reads N×N lines (13.7 s
// for 10 000 users in docs/BENCHMARKS.md, about 20 minutes for 100 000).
const bulkLookupMin = 100

// userDB resolves the users an import names. With an enumeration it
// answers the names listed there from it; every other name (enumeration
// off, failed or incomplete, as with sssd's default enumerate = false) is
// resolved with lookup, so the answers are getpwnam's.
type userDB struct {
	listed    map[string]listedAccount // from one enumeration; nil without one
	lookup    func(name string) (*accounts.User, error)
	enumerate func() (map[string]listedAccount, error) // nil once tried
	lookups   int                                      // names looked up one at a time
}

// newUserDB returns a userDB for an import naming n users, or an unknown
// number (n = 0) when they come from a file read a line at a time. It
// enumerates the user database once with enumerate (NSS, so LDAP and sssd
// users count when their backend enumerates) from bulkLookupMin names on:
// at once when n says so, else when the bulkLookupMin-th name is asked. A
// failed enumeration only means a lookup per name.
func newUserDB(ctx context.Context, n int, enumerate enumerator, lookup func(string) (*accounts.User, error)) *userDB {
	db := &userDB{lookup: lookup, enumerate: func() (map[string]listedAccount, error) { return listAccounts(ctx, enumerate) }}
	if n >= bulkLookupMin {
		db.list()
	}
	return db
}

// list enumerates the user database, once.
func (db *userDB) list() {
	enumerate := db.enumerate
	db.enumerate = nil
	if listed, err := enumerate(); err == nil {
		db.listed = listed
	}
}

// listedAccount is what an import needs of an enumerated account, kept
// small: an import of 100 000 users holds 100 000 of them.
type listedAccount struct {
	uid  uint32
	home string
}

// An enumerator lists the user database, an account at a time.
type enumerator func(ctx context.Context, account func(*accounts.User)) error

// listAccounts maps the user names enumerate lists to their accounts. Of
// two entries with one name the first counts, as for getpwnam, which asks
// the NSS sources in the order they are listed.
func listAccounts(ctx context.Context, enumerate enumerator) (map[string]listedAccount, error) {
	listed := map[string]listedAccount{}
	err := enumerate(ctx, func(a *accounts.User) {
		if _, dup := listed[a.Name]; !dup {
			listed[a.Name] = listedAccount{uid: a.UID, home: a.Home}
		}
	})
	if err != nil {
		return nil, err
	}
	return listed, nil
}

// enumerateTimeout bounds the enumeration of the user database: a
// directory too big to list in that time is resolved a name at a time
// instead.
const enumerateTimeout = 30 * time.Second

// nssPasswd enumerates the user database through NSS (accounts.EachUser),
// an entry at a time, until ctx or enumerateTimeout ends it (then it
// returns the context's error).
func nssPasswd(ctx context.Context, account func(*accounts.User)) error {
	ctx, cancel := context.WithTimeout(ctx, enumerateTimeout)
	defer cancel()
	return accounts.EachUser(func(u *accounts.User) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		account(u)
		return nil
	})
}

// get resolves name as getpwnam does.
func (db *userDB) get(name string) (*accounts.User, error) {
	if db.enumerate != nil {
		if db.lookups++; db.lookups >= bulkLookupMin {
			db.list()
		}
	}
	if a, ok := db.listed[name]; ok {
		return &accounts.User{Name: name, UID: a.uid, Home: a.home}, nil
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

	var src importSource
	switch o.from {
	case "google-authenticator":
		src, err = newGASource(o)
	case "oath":
		src, err = newOATHSource(ctx, o.file)
	}
	if err != nil {
		a.printProblems(err)
		return errSilent
	}
	defer src.close()
	prog := newProgress(a.stderr, isTerminalWriter, time.Now, a.stdout)

	// First every check of the files, then, if they are all fine, every
	// user already enrolled in otpgate is refused (unless --replace),
	// before anyone is imported. Problems are listed as they are found.
	problems := 0
	report := func(p *importer.LineError) {
		problems++
		prog.println(a.stderr, clean(p.Error()))
	}
	users, err := src.check(ctx, report, func(n int) {
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
	err = src.load(ctx, func(e *importer.Entry) error {
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
	err = src.load(ctx, func(e *importer.Entry) error {
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

// importSource is what admin import reads, several times. check makes
// every check of the source, calling problem for each problem in order
// and count as users are found, keeps nothing of a secret and returns the
// number of users. After a check without problems, load lists those users,
// secrets included, and fails before listing anything that changed since
// check; it may be called more than once. Neither keeps more than one
// user's secret in memory at a time: entry's secret is cleared when it
// returns.
type importSource interface {
	check(ctx context.Context, problem func(*importer.LineError), count func(int)) (int, error)
	load(ctx context.Context, entry func(*importer.Entry) error) error
	close()
}

// oathSource is a pam_oath usersfile; every user must exist here.
type oathSource struct {
	file *importer.Usersfile
	db   *userDB
}

func newOATHSource(ctx context.Context, path string) (*oathSource, error) {
	f, err := importer.OpenUsersfile(path)
	if err != nil {
		return nil, err
	}
	return &oathSource{file: f, db: newUserDB(ctx, 0, nssPasswd, accounts.LookupUser)}, nil
}

// check reads the file twice: every line's checks, then, if they all
// pass, whether every user exists here.
func (s *oathSource) check(_ context.Context, problem func(*importer.LineError), count func(int)) (int, error) {
	found, problems := 0, 0
	n, err := s.file.Check(func(*importer.Entry) error {
		found++
		count(found)
		return nil
	}, func(p *importer.LineError) {
		problems++
		problem(p)
	})
	if err != nil || problems > 0 {
		return n, err
	}
	return n, s.file.Entries(func(e *importer.Entry) error {
		if _, err := s.db.get(e.User); errors.Is(err, accounts.ErrNotFound) {
			problem(&importer.LineError{File: e.Source, Msg: "user " + e.User + " does not exist on this host"})
		} else if err != nil {
			problem(&importer.LineError{File: e.Source, Msg: "user " + e.User + " cannot be looked up: " + err.Error()})
		}
		return nil
	})
}

func (s *oathSource) load(_ context.Context, entry func(*importer.Entry) error) error {
	return s.file.Entries(entry)
}

func (s *oathSource) close() { s.file.Close() }

// gaSource is the ~/.google_authenticator files of the users named with
// --user, or of every account of the user database that has one
// (--all-users).
type gaSource struct {
	opts importOpts
	// found are the accounts whose file check read, with the fingerprint
	// of what it would import: load reads those files again and compares.
	found []gaFound
	key   []byte // of the fingerprints
}

type gaFound struct {
	acct importer.Account
	sum  [32]byte
}

func newGASource(o importOpts) (*gaSource, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return &gaSource{opts: o, key: key}, nil
}

// accounts calls fn for every account selected, reporting those that do
// not resolve.
func (s *gaSource) accounts(ctx context.Context, fn func(importer.Account) error, problem func(*importer.LineError)) error {
	if s.opts.allUsers {
		// Every account NSS lists, each name once: the first entry, as
		// getpwnam has it.
		seen := map[string]bool{}
		return accounts.EachUser(func(u *accounts.User) error {
			if seen[u.Name] {
				return nil
			}
			seen[u.Name] = true
			return fn(importer.Account{Name: u.Name, UID: int(u.UID), Home: u.Home})
		})
	}
	db := newUserDB(ctx, len(s.opts.users), nssPasswd, accounts.LookupUser)
	for _, name := range s.opts.users {
		u, err := db.get(name)
		if errors.Is(err, accounts.ErrNotFound) {
			problem(&importer.LineError{File: "--user " + name, Msg: "no such user on this host"})
			continue
		}
		if err != nil {
			return fmt.Errorf("look up user %s: %w", name, err)
		}
		if err := fn(importer.Account{Name: u.Name, UID: int(u.UID), Home: u.Home}); err != nil {
			return err
		}
	}
	return nil
}

// read reads and parses acct's file; a missing file is (nil, nil) with
// --all-users.
func (s *gaSource) read(acct importer.Account) (*importer.Entry, importer.Errors) {
	path := strings.TrimSuffix(acct.Home, "/") + "/" + importer.GoogleAuthenticatorFile
	data, mode, err := importer.ReadHomeFile(acct.Home, acct.UID, importer.GoogleAuthenticatorFile)
	if errors.Is(err, fs.ErrNotExist) && s.opts.allUsers {
		return nil, nil
	}
	if err != nil {
		return nil, importer.Errors{{File: path, Msg: fmt.Sprintf("%s: %v", acct.Name, err)}}
	}
	e, err := importer.ParseGoogleAuthenticator(path, acct.Name, data)
	clear(data)
	if err != nil {
		var list importer.Errors
		if !errors.As(err, &list) {
			list = importer.Errors{{File: path, Msg: err.Error()}}
		}
		return nil, list
	}
	e.FileMode = uint32(mode)
	return e, nil
}

func (s *gaSource) check(ctx context.Context, problem func(*importer.LineError), count func(int)) (int, error) {
	s.found = s.found[:0]
	err := s.accounts(ctx, func(acct importer.Account) error {
		e, list := s.read(acct)
		for _, p := range list {
			problem(p)
		}
		if e != nil {
			s.found = append(s.found, gaFound{acct: acct, sum: e.Fingerprint(s.key)})
			clear(e.Secret)
			count(len(s.found))
		}
		return nil
	}, problem)
	return len(s.found), err
}

func (s *gaSource) load(_ context.Context, entry func(*importer.Entry) error) error {
	for _, f := range s.found {
		e, list := s.read(f.acct)
		if e == nil || e.Fingerprint(s.key) != f.sum {
			if e != nil {
				clear(e.Secret)
			}
			path := strings.TrimSuffix(f.acct.Home, "/") + "/" + importer.GoogleAuthenticatorFile
			msg := path + " changed after it was checked"
			if len(list) > 0 {
				msg += ": " + list[0].Error()
			}
			return errors.New(msg)
		}
		err := entry(e)
		clear(e.Secret)
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *gaSource) close() {}

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
