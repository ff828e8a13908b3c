package daemon

import (
	"errors"
	"fmt"
	"slices"

	nss "github.com/otpgate/otpgate/internal/accounts"
	"github.com/otpgate/otpgate/internal/config"
)

// requirement is what policy says about one user.
type requirement int

const (
	optional requirement = iota // a code is asked for only if enrolled
	required                    // a code is always needed; unenrolled users are refused
	exempt                      // never asked for a code
)

func (r requirement) String() string {
	switch r {
	case required:
		return "required"
	case exempt:
		return "exempt"
	}
	return "optional"
}

// account is a Unix account as the daemon needs it.
type account struct {
	Name   string // the canonical name (see userDB.resolve), or the name as given if unknown
	UID    uint32
	Known  bool     // false: no such user in the user database
	Groups []string // names of all groups, primary included
}

// lookupAccount resolves name through the system user database (NSS,
// internal/accounts) to its account, named canonically (see
// userDB.resolve). An unknown user is not an error; any other lookup
// failure is, so that callers fail closed.
func lookupAccount(name string, withGroups bool) (account, error) {
	return systemUsers.resolve(name, withGroups)
}

// userDB is what resolving an account asks the user database: an entry
// by name (getpwnam), an entry by uid (getpwuid), and the names of an
// entry's groups. Each returns an error wrapping nss.ErrNotFound for
// no such entry. Tests inject their own.
type userDB struct {
	byName func(name string) (*nss.User, error)
	byUID  func(uid uint32) (*nss.User, error)
	groups func(u *nss.User) ([]string, error)
}

var systemUsers = userDB{byName: nss.LookupUser, byUID: nss.LookupUID, groups: groupNames}

// resolve resolves name to its account. The account is named canonically:
// by the name the user database gives its uid (getpwuid), not by name as
// typed. A second name for the same uid (useradd -o) and a spelling that a
// case-insensitive backend folds (sssd with case_sensitive = false, as
// OpenSSH passes "Alice" as typed) are then the same account as the first
// name, with the same record and code; in a fleet, an account keeps its
// name on every server even where its uid differs. An unknown name is
// returned as typed, Known false. A database in which the canonical name
// does not lead back to the uid (getpwnam of it gives another uid), or a
// uid without a name, is an error: the account cannot be told safely.
// Groups, when wanted, are those of the canonical entry.
func (db userDB) resolve(name string, withGroups bool) (account, error) {
	u, err := db.byName(name)
	if err != nil {
		if errors.Is(err, nss.ErrNotFound) {
			return account{Name: name}, nil
		}
		return account{}, fmt.Errorf("look up user: %w", err)
	}
	uid := u.UID
	canon, err := db.byUID(uid)
	if err != nil {
		if errors.Is(err, nss.ErrNotFound) {
			return account{}, fmt.Errorf("user %s has uid %d, but the user database has no user for uid %d", name, uid, uid)
		}
		return account{}, fmt.Errorf("look up uid %d of user %s: %w", uid, name, err)
	}
	if canon.Name != u.Name {
		// name is another name of the account: the canonical name must
		// lead back to the same uid.
		back, err := db.byName(canon.Name)
		if err != nil {
			return account{}, fmt.Errorf("look up user %s (the name of uid %d, which user %s has): %w", canon.Name, uid, name, err)
		}
		if back.UID != uid {
			return account{}, fmt.Errorf("inconsistent user database: user %s has uid %d, whose name %s is also a user with uid %d", name, uid, canon.Name, back.UID)
		}
	}
	a := account{Name: canon.Name, UID: uid, Known: true}
	if withGroups {
		if a.Groups, err = db.groups(canon); err != nil {
			return account{}, err
		}
	}
	return a, nil
}

// groupNames returns the names of all of u's groups, primary included; a
// gid without a group entry has no name and is left out.
func groupNames(u *nss.User) ([]string, error) {
	gids, err := nss.GroupIDs(u)
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", u.Name, err)
	}
	var names []string
	for _, gid := range gids {
		g, err := nss.LookupGID(gid)
		if err != nil {
			if errors.Is(err, nss.ErrNotFound) {
				continue
			}
			return nil, fmt.Errorf("group %d of %s: %w", gid, u.Name, err)
		}
		names = append(names, g.Name)
	}
	return names, nil
}

// decide applies the policy section to an account. Exemption wins.
func decide(p *config.Policy, a account) requirement {
	inAny := func(groups []string) bool {
		for _, g := range a.Groups {
			if slices.Contains(groups, g) {
				return true
			}
		}
		return false
	}
	if namesAccount(p.ExemptUsers, a) || inAny(p.ExemptGroups) {
		return exempt
	}
	if p.Default == "required" || namesAccount(p.RequiredUsers, a) || inAny(p.RequiredGroups) {
		return required
	}
	return optional
}

// namesAccount reports whether one of names (a policy list) is the
// account a: its canonical name, or, for a known account, another name or
// spelling of it, resolved through the account cache like a request's
// (so "Alice" in the list names the account "alice" on a case-insensitive
// backend, and a second name names its uid's account). A name that cannot
// be resolved names nothing but itself.
func namesAccount(names []string, a account) bool {
	if slices.Contains(names, a.Name) {
		return true
	}
	if !a.Known {
		return false
	}
	for _, n := range names {
		if b, err := accounts.get(n, false); err == nil && b.Known && b.Name == a.Name && b.UID == a.UID {
			return true
		}
	}
	return false
}

// needsGroups reports whether deciding requires group membership.
func needsGroups(p *config.Policy) bool {
	return len(p.ExemptGroups) > 0 || len(p.RequiredGroups) > 0
}
