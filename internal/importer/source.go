package importer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/otpgate/otpgate/internal/accounts"
)

// Source is what an import reads, several times. Check makes every check
// of the source, calling problem for each problem in order and count as
// users are found, keeps nothing of a secret and returns the number of
// users. After a Check without problems, Load lists those users, secrets
// included, and fails before listing anything that changed since Check;
// it may be called more than once. Neither keeps more than one user's
// secret in memory at a time: entry's secret is cleared when it returns.
type Source interface {
	Check(ctx context.Context, problem func(*LineError), count func(int)) (int, error)
	Load(ctx context.Context, entry func(*Entry) error) error
	// Close releases what the source holds open.
	Close() error
}

// oathSource is a pam_oath usersfile; every user must exist here.
type oathSource struct {
	file *Usersfile
	db   *userDB
}

// NewOATHSource opens the pam_oath usersfile path (see OpenAdminFile) as
// a Source whose users must all exist in this host's user database.
func NewOATHSource(ctx context.Context, path string) (Source, error) {
	f, err := OpenUsersfile(path)
	if err != nil {
		return nil, err
	}
	return &oathSource{file: f, db: newUserDB(ctx, 0, nssPasswd, accounts.LookupUser)}, nil
}

// Check reads the file twice: every line's checks, then, if they all
// pass, whether every user exists here.
func (s *oathSource) Check(_ context.Context, problem func(*LineError), count func(int)) (int, error) {
	found, problems := 0, 0
	n, err := s.file.Check(func(*Entry) error {
		found++
		count(found)
		return nil
	}, func(p *LineError) {
		problems++
		problem(p)
	})
	if err != nil || problems > 0 {
		return n, err
	}
	return n, s.file.Entries(func(e *Entry) error {
		if _, err := s.db.get(e.User); errors.Is(err, accounts.ErrNotFound) {
			problem(&LineError{File: e.Source, Msg: "user " + e.User + " does not exist on this host"})
		} else if err != nil {
			problem(&LineError{File: e.Source, Msg: "user " + e.User + " cannot be looked up: " + err.Error()})
		}
		return nil
	})
}

func (s *oathSource) Load(_ context.Context, entry func(*Entry) error) error {
	return s.file.Entries(entry)
}

func (s *oathSource) Close() error { return s.file.Close() }

// gaSource is the ~/.google_authenticator files of the users named, or of
// every account of the user database that has one.
type gaSource struct {
	users    []string
	allUsers bool
	// found are the accounts whose file Check read, with the fingerprint
	// of what it would import: Load reads those files again and compares.
	found []gaFound
	key   []byte // of the fingerprints
}

type gaFound struct {
	acct Account
	sum  [32]byte
}

// NewGoogleAuthenticatorSource returns the Source of the
// ~/.google_authenticator files of users (the names given with --user;
// one that is not an account here is a problem), or, with allUsers, of
// every account of the user database that has one (one without is
// skipped). Exactly one of the two must be given.
func NewGoogleAuthenticatorSource(users []string, allUsers bool) (Source, error) {
	if allUsers == (len(users) > 0) {
		return nil, errors.New("name the users to import, or import all users, not both or neither")
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return &gaSource{users: users, allUsers: allUsers, key: key}, nil
}

// accounts calls fn for every account selected, reporting those that do
// not resolve.
func (s *gaSource) accounts(ctx context.Context, fn func(Account) error, problem func(*LineError)) error {
	if s.allUsers {
		// Every account NSS lists, each name once: the first entry, as
		// getpwnam has it.
		seen := map[string]bool{}
		return accounts.EachUser(func(u *accounts.User) error {
			if seen[u.Name] {
				return nil
			}
			seen[u.Name] = true
			return fn(Account{Name: u.Name, UID: int(u.UID), Home: u.Home})
		})
	}
	db := newUserDB(ctx, len(s.users), nssPasswd, accounts.LookupUser)
	for _, name := range s.users {
		u, err := db.get(name)
		if errors.Is(err, accounts.ErrNotFound) {
			problem(&LineError{File: "--user " + name, Msg: "no such user on this host"})
			continue
		}
		if err != nil {
			return fmt.Errorf("look up user %s: %w", name, err)
		}
		if err := fn(Account{Name: u.Name, UID: int(u.UID), Home: u.Home}); err != nil {
			return err
		}
	}
	return nil
}

// read reads and parses acct's file; a missing file is (nil, nil) with
// allUsers.
func (s *gaSource) read(acct Account) (*Entry, Errors) {
	path := strings.TrimSuffix(acct.Home, "/") + "/" + GoogleAuthenticatorFile
	data, mode, err := ReadHomeFile(acct.Home, acct.UID, GoogleAuthenticatorFile)
	if errors.Is(err, fs.ErrNotExist) && s.allUsers {
		return nil, nil
	}
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("%s: %v", acct.Name, err)}}
	}
	e, err := ParseGoogleAuthenticator(path, acct.Name, data)
	clear(data)
	if err != nil {
		var list Errors
		if !errors.As(err, &list) {
			list = Errors{{File: path, Msg: err.Error()}}
		}
		return nil, list
	}
	e.FileMode = uint32(mode)
	return e, nil
}

func (s *gaSource) Check(ctx context.Context, problem func(*LineError), count func(int)) (int, error) {
	s.found = s.found[:0]
	err := s.accounts(ctx, func(acct Account) error {
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

func (s *gaSource) Load(_ context.Context, entry func(*Entry) error) error {
	for _, f := range s.found {
		e, list := s.read(f.acct)
		if e == nil || e.Fingerprint(s.key) != f.sum {
			if e != nil {
				clear(e.Secret)
			}
			path := strings.TrimSuffix(f.acct.Home, "/") + "/" + GoogleAuthenticatorFile
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

func (*gaSource) Close() error { return nil }
