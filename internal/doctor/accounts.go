package doctor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/otpgate/otpgate/internal/protocol"
)

// Account is an entry of the user database.
type Account struct {
	Name string
	UID  int
	GID  int
}

// Group is an entry of the group database.
type Group struct {
	Name    string
	GID     int
	Members []string
}

// AdminGroups are the groups whose members can become root with sudo on
// Debian (sudo) and elsewhere (wheel, admin).
var AdminGroups = []string{"sudo", "wheel", "admin"}

// GroupMembers returns the sorted names of the accounts in the named
// groups: listed members and accounts whose primary group it is.
func GroupMembers(names []string, accounts []Account, groups []Group) []string {
	set := map[string]bool{}
	for _, g := range groups {
		if !contains(names, g.Name) {
			continue
		}
		for _, m := range g.Members {
			set[m] = true
		}
		for _, a := range accounts {
			if a.GID == g.GID {
				set[a.Name] = true
			}
		}
	}
	return sortedKeys(set)
}

// Admins returns root (every account with uid 0) and the members of the
// admin groups, sorted.
func Admins(accounts []Account, groups []Group) []string {
	set := map[string]bool{}
	for _, a := range accounts {
		if a.UID == 0 {
			set[a.Name] = true
		}
	}
	for _, m := range GroupMembers(AdminGroups, accounts, groups) {
		set[m] = true
	}
	return sortedKeys(set)
}

// CheckAdmins looks for the ways administrators lock themselves out:
// an admin the policy requires a code from but who is not enrolled is
// refused at every login that uses pam_otpgate, and with no enrolled admin
// at all nobody can test a login with a code before it matters.
func CheckAdmins(admins []string, status map[string]protocol.UserStatus) []Finding {
	var out []Finding
	var locked []string
	enrolled := 0
	for _, a := range admins {
		st, ok := status[a]
		if !ok {
			continue
		}
		if st.State == protocol.StateActive {
			enrolled++
		} else if st.PolicyRequires && !st.Exempt {
			locked = append(locked, a)
		}
	}
	if len(locked) > 0 {
		out = append(out, Finding{ID: "admin-required-not-enrolled", Severity: Error, Where: "otpgated policy",
			Problem: fmt.Sprintf("administrators who must use a code but are not enrolled: %s", strings.Join(locked, ", ")),
			Why:     "otpgated refuses them at every login and sudo that uses pam_otpgate until they enroll: you can lock yourself out.",
			Fix:     fmt.Sprintf("enroll them now, from a root shell you keep open: 'otpgate admin enroll %s' (or each runs 'otpgate enroll'), and test a login from a second terminal.", locked[0])})
	}
	if enrolled == 0 {
		out = append(out, Finding{ID: "admin-none-enrolled", Severity: Warning, Where: "otpgated",
			Problem: fmt.Sprintf("no administrator (root or a member of %s) is enrolled", strings.Join(AdminGroups, "/")),
			Why:     "nobody who can fix the configuration has tested a login with a code; when a policy starts requiring codes, administrators are refused like everyone else.",
			Fix:     "enroll one administrator first ('otpgate enroll' as that user), and test ssh and sudo with a code before requiring codes from others."})
	}
	return out
}

// CheckRequired warns about users the policy requires a code from who are
// not enrolled: they are refused until they enroll.
func CheckRequired(users []string, status map[string]protocol.UserStatus) []Finding {
	var missing []string
	for _, u := range users {
		st, ok := status[u]
		if ok && (st.State == protocol.StateActive || st.Exempt) {
			continue
		}
		missing = append(missing, u)
	}
	if len(missing) == 0 {
		return nil
	}
	return []Finding{{ID: "required-not-enrolled", Severity: Warning, Where: "policy.required_users/required_groups",
		Problem: fmt.Sprintf("users required to use a code but not enrolled: %s", strings.Join(missing, ", ")),
		Why:     "otpgated refuses them at every login that uses pam_otpgate until they enroll (unless policy.enroll_on_login lets them enroll over SSH).",
		Fix:     fmt.Sprintf("enroll them ('otpgate admin enroll %s' at their terminal, or each runs 'otpgate enroll'), or remove them from policy.required_users/required_groups.", missing[0])}}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
