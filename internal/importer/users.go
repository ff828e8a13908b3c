package importer

import (
	"context"
	"time"

	"github.com/otpgate/otpgate/internal/accounts"
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
