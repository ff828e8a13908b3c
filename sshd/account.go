package sshd

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/otpgate/otpgate/internal/accounts"
)

// The user database, through NSS (internal/accounts); tests replace these.
var (
	lookupUser   = accounts.LookupUser
	lookupShadow = accounts.LookupShadow
	groupIDs     = accounts.GroupIDs
)

// errNoUser means the login name has no passwd entry (or is not a valid
// name); callers treat it exactly like a key that is not authorized.
var errNoUser = errors.New("sshd: no such user")

// account is a local user as read from the passwd database.
type account struct {
	name  string
	uid   uint32
	gid   uint32
	home  string
	shell string
}

// validUserName rejects names that cannot be local accounts before any
// lookup: empty, overlong, or containing separators or control bytes.
func validUserName(name string) bool {
	if name == "" || len(name) > 32 || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == ':' || c == '/' || c == ',' {
			return false
		}
	}
	return true
}

// lookupAccount finds name in the user database through NSS, so that users
// of every source nsswitch.conf names (files, LDAP, sssd, extrausers) can
// log in; the uid, group, home and shell all come from the one record. A
// lookup that fails for another reason than "no such user" is an error,
// and the login is refused.
func lookupAccount(name string) (*account, error) {
	if !validUserName(name) {
		return nil, errNoUser
	}
	u, err := lookupUser(name)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, errNoUser
	}
	if err != nil {
		return nil, fmt.Errorf("sshd: %w", err)
	}
	if u.Home == "" || u.Home[0] != '/' {
		return nil, fmt.Errorf("sshd: user %s has no absolute home directory (%q)", name, u.Home)
	}
	a := &account{name: u.Name, uid: u.UID, gid: u.GID, home: u.Home, shell: u.Shell}
	if a.shell == "" {
		a.shell = "/bin/sh"
	}
	return a, nil
}

// credential returns the uid, gid and supplementary groups to run the
// user's processes with. Groups is never nil: a nil Groups would make Go
// clear the supplementary groups rather than set them.
func (a *account) credential() (*syscall.Credential, error) {
	gids, err := groupIDs(&accounts.User{Name: a.name, UID: a.uid, GID: a.gid})
	if err != nil {
		return nil, fmt.Errorf("sshd: groups of %s: %w", a.name, err)
	}
	// gids starts with a.gid: Groups is never nil.
	return &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: gids}, nil
}

// errAccountUnusable is returned for an expired account or one whose
// login shell cannot run.
var errAccountUnusable = errors.New("sshd: account not usable")

// usable applies the account checks OpenSSH's sshd makes itself and that
// Debian's PAM account stack (pam_unix) makes for it, since otpgate-sshd
// runs no PAM stack: the login shell must be an executable file, and an
// account expiry date (of the shadow entry NSS gives, set by `usermod -e`
// or `chage -E`) must not have passed. A password locked with "!" does not block key
// logins, as with Debian's default sshd (UsePAM yes).
func (a *account) usable(now time.Time) error {
	fi, err := os.Stat(a.shell)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: login shell %s is not executable", errAccountUnusable, a.shell)
	}
	sh, err := lookupShadow(a.name)
	if errors.Is(err, accounts.ErrNotFound) {
		// No shadow entry (a source that keeps none): no expiry date.
		return nil
	}
	if err != nil {
		return fmt.Errorf("sshd: %w", err)
	}
	if sh.Expire >= 0 && !now.Before(time.Unix(sh.Expire*86400, 0)) {
		return fmt.Errorf("%w: account expired on %s", errAccountUnusable, time.Unix(sh.Expire*86400, 0).UTC().Format("2006-01-02"))
	}
	return nil
}
