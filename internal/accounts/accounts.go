// Package accounts reads the system's user, group and shadow databases
// through NSS (getpwnam_r, getpwuid_r, getgrgid_r, getgrouplist,
// getpwent_r, getgrent_r, getspnam_r), so that every source nsswitch.conf
// names counts: /etc/passwd as well as LDAP, sssd/AD, extrausers or
// systemd's dynamic users. It is the one place in otpgate that reads
// accounts; nothing else parses /etc/passwd, /etc/group or /etc/shadow.
//
// It needs cgo: without it there would be no NSS, only the files.
package accounts

import (
	"errors"
	"fmt"
	"strconv"
)

// User is an entry of the user database (struct passwd). The login shell
// and home directory come from the same record as the uid.
type User struct {
	Name  string
	UID   uint32
	GID   uint32 // the primary group
	Gecos string
	Home  string
	Shell string // as the database has it; may be empty
}

// Group is an entry of the group database (struct group).
type Group struct {
	Name    string
	GID     uint32
	Members []string // listed members; users whose primary group it is are not listed
}

// Shadow holds the fields of a shadow entry (struct spwd) that decide
// whether an account may be used. The password hash itself is not kept.
// Dates are days since 1970-01-01; -1 means the field is empty.
type Shadow struct {
	Name string
	// Locked is true when the password field starts with '!' (locked,
	// passwd -l) or '*' (no password): no password login is possible.
	Locked     bool
	LastChange int64
	Min        int64
	Max        int64
	Warn       int64
	Inactive   int64
	Expire     int64 // the account expiry date (chage -E, usermod -e)
}

// ErrNotFound is wrapped by the errors of look-ups that found no entry:
// test for it with errors.Is. Any other error means the database could not
// be asked, and callers must fail closed.
var ErrNotFound = errors.New("accounts: no such entry")

// UnknownUserError is returned by LookupUser for a name that has no entry.
type UnknownUserError string

func (e UnknownUserError) Error() string { return "accounts: no such user " + strconv.Quote(string(e)) }

// Unwrap returns ErrNotFound.
func (UnknownUserError) Unwrap() error { return ErrNotFound }

// UnknownUIDError is returned by LookupUID for a uid that has no entry.
type UnknownUIDError uint32

func (e UnknownUIDError) Error() string {
	return fmt.Sprintf("accounts: no user with uid %d", uint32(e))
}

// Unwrap returns ErrNotFound.
func (UnknownUIDError) Unwrap() error { return ErrNotFound }

// UnknownGIDError is returned by LookupGID for a gid that has no entry.
type UnknownGIDError uint32

func (e UnknownGIDError) Error() string {
	return fmt.Sprintf("accounts: no group with gid %d", uint32(e))
}

// Unwrap returns ErrNotFound.
func (UnknownGIDError) Unwrap() error { return ErrNotFound }

// maxBuffer bounds the buffer one entry may need (a group with many
// members is the largest); an entry larger than this is an error.
const maxBuffer = 4 << 20

// validName reports whether name can be asked for at all: NSS takes a C
// string, so a NUL byte would truncate it to another name.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] == 0 {
			return false
		}
	}
	return true
}
