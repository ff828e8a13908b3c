package sshd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// passwdFile is the account database read by lookupAccount.
var passwdFile = "/etc/passwd"

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

// lookupAccount finds name in the passwd file. It reads the file directly
// because os/user does not expose the login shell, so it does not see
// NSS-only users (LDAP, sssd): otpgate-sshd serves local accounts only.
func lookupAccount(name string) (*account, error) {
	if !validUserName(name) {
		return nil, errNoUser
	}
	f, err := os.Open(passwdFile)
	if err != nil {
		return nil, fmt.Errorf("sshd: passwd: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<20))
	sc.Buffer(make([]byte, 4096), 64*1024)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) != 7 || fields[0] != name {
			continue
		}
		uid, err1 := strconv.ParseUint(fields[2], 10, 32)
		gid, err2 := strconv.ParseUint(fields[3], 10, 32)
		if err1 != nil || err2 != nil || fields[5] == "" || fields[5][0] != '/' {
			return nil, fmt.Errorf("sshd: passwd: malformed entry for %q", name)
		}
		a := &account{name: name, uid: uint32(uid), gid: uint32(gid), home: fields[5], shell: fields[6]}
		if a.shell == "" {
			a.shell = "/bin/sh"
		}
		return a, nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sshd: passwd: %w", err)
	}
	return nil, errNoUser
}

// credential returns the uid, gid and supplementary groups to run the
// user's processes with. Groups is never nil: a nil Groups would make Go
// clear the supplementary groups rather than set them.
func (a *account) credential() (*syscall.Credential, error) {
	u := &user.User{Uid: strconv.FormatUint(uint64(a.uid), 10), Gid: strconv.FormatUint(uint64(a.gid), 10), Username: a.name}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("sshd: groups of %s: %w", a.name, err)
	}
	groups := []uint32{a.gid}
	for _, id := range ids {
		g, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("sshd: groups of %s: bad gid %q", a.name, id)
		}
		if uint32(g) != a.gid {
			groups = append(groups, uint32(g))
		}
	}
	return &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: groups}, nil
}

// shadowFile holds account expiry dates.
var shadowFile = "/etc/shadow"

// errAccountUnusable is returned for an expired account or one whose
// login shell cannot run.
var errAccountUnusable = errors.New("sshd: account not usable")

// usable applies the account checks OpenSSH's sshd makes itself and that
// Debian's PAM account stack (pam_unix) makes for it, since otpgate-sshd
// runs no PAM stack: the login shell must be an executable file, and an
// account expiry date (shadow field 8, set by `usermod -e` or `chage -E`)
// must not have passed. A password locked with "!" does not block key
// logins, as with Debian's default sshd (UsePAM yes).
func (a *account) usable(now time.Time) error {
	fi, err := os.Stat(a.shell)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: login shell %s is not executable", errAccountUnusable, a.shell)
	}
	f, err := os.Open(shadowFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sshd: shadow: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<20))
	sc.Buffer(make([]byte, 4096), 64*1024)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 8 || fields[0] != a.name {
			continue
		}
		if fields[7] == "" {
			return nil
		}
		days, err := strconv.ParseInt(fields[7], 10, 64)
		if err != nil {
			return fmt.Errorf("%w: malformed expiry date in shadow", errAccountUnusable)
		}
		if days >= 0 && !now.Before(time.Unix(days*86400, 0)) {
			return fmt.Errorf("%w: account expired on %s", errAccountUnusable, time.Unix(days*86400, 0).UTC().Format("2006-01-02"))
		}
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("sshd: shadow: %w", err)
	}
	return nil
}
