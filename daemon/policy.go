package daemon

import (
	"errors"
	"fmt"
	"os/user"
	"slices"

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
	Name   string
	UID    uint32
	Known  bool     // false: no such user in the user database
	Groups []string // names of all groups, primary included
}

// lookupAccount resolves name through the system user database (NSS when
// built with cgo). An unknown user is not an error; any other lookup
// failure is, so that callers fail closed.
func lookupAccount(name string, withGroups bool) (account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return account{Name: name}, nil
		}
		return account{}, fmt.Errorf("look up user: %w", err)
	}
	var uid uint32
	if _, err := fmt.Sscan(u.Uid, &uid); err != nil {
		return account{}, fmt.Errorf("user %s has a non-numeric uid %q", name, u.Uid)
	}
	a := account{Name: name, UID: uid, Known: true}
	if withGroups {
		gids, err := u.GroupIds()
		if err != nil {
			return account{}, fmt.Errorf("groups of %s: %w", name, err)
		}
		for _, gid := range gids {
			g, err := user.LookupGroupId(gid)
			if err != nil {
				var unknown user.UnknownGroupIdError
				if errors.As(err, &unknown) {
					continue
				}
				return account{}, fmt.Errorf("group %s of %s: %w", gid, name, err)
			}
			a.Groups = append(a.Groups, g.Name)
		}
	}
	return a, nil
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
	if slices.Contains(p.ExemptUsers, a.Name) || inAny(p.ExemptGroups) {
		return exempt
	}
	if p.Default == "required" || slices.Contains(p.RequiredUsers, a.Name) || inAny(p.RequiredGroups) {
		return required
	}
	return optional
}

// needsGroups reports whether deciding requires group membership.
func needsGroups(p *config.Policy) bool {
	return len(p.ExemptGroups) > 0 || len(p.RequiredGroups) > 0
}
