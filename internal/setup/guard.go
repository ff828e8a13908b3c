package setup

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/otpgate/otpgate/internal/accounts"
	"github.com/otpgate/otpgate/internal/doctor"
	"github.com/otpgate/otpgate/internal/pamstack"
	"github.com/otpgate/otpgate/internal/protocol"
)

// GuardStatus is the outcome of one check before writing.
type GuardStatus int

// The outcomes of a check before writing.
const (
	// GuardOK: the check passed; Guard.What says what holds.
	GuardOK GuardStatus = iota
	// GuardFailed: --apply refuses; Guard.Problem and Guard.Fix say why
	// and what to do.
	GuardFailed
	// GuardNote: not a failure, but worth reading (another
	// administrator's enrollment); Guard.Problem and Guard.Fix.
	GuardNote
)

// GuardKind names the check a [Guard] comes from.
type GuardKind int

// The checks before writing.
const (
	// GuardDaemon: otpgated answers on its socket.
	GuardDaemon GuardKind = iota
	// GuardModule: the PAM module and its Go library are installed,
	// root's and not writable by others.
	GuardModule
	// GuardAdmin: the administrator running setup can still get in
	// afterwards (enrolled, or a console that does not use otpgated).
	GuardAdmin
)

// Guard is the result of one check before writing.
type Guard struct {
	Kind   GuardKind
	Status GuardStatus
	// What says what holds, for GuardOK.
	What string
	// Problem and Fix, for GuardFailed and GuardNote.
	Problem, Fix string
	// Overridable is true for a failure that --force may override: the
	// administrator is not enrolled (the only way to lock oneself out
	// that an administrator with another way in may accept). A daemon
	// that is down, an untrusted module or an unanswered question never
	// is.
	Overridable bool
}

// Failed returns the failed guards.
func Failed(guards []Guard) []Guard {
	var out []Guard
	for _, g := range guards {
		if g.Status == GuardFailed {
			out = append(out, g)
		}
	}
	return out
}

// Overridable reports whether --force may go ahead despite the failures:
// there is at least one, and every one is overridable.
func Overridable(failed []Guard) bool {
	for _, g := range failed {
		if !g.Overridable {
			return false
		}
	}
	return len(failed) > 0
}

// Guards runs the checks before writing, in the order they are shown:
// otpgated answers, the PAM module is trusted, and the administrator
// running setup keeps a way in (with notes about the other
// administrators before that result).
func (s *Session) Guards(ctx context.Context) []Guard {
	var out []Guard
	ctx1, cancel := context.WithTimeout(ctx, s.timeout())
	_, err := s.Client.Do(ctx1, &protocol.Request{Op: protocol.OpPing, Service: "otpgate-setup"})
	cancel()
	if err == nil {
		out = append(out, Guard{Kind: GuardDaemon, Status: GuardOK, What: "otpgated answers on " + s.Client.Socket})
	} else {
		out = append(out, Guard{Kind: GuardDaemon, Status: GuardFailed,
			Problem: fmt.Sprintf("otpgated does not answer on %s (%v): with pam_otpgate in place every login that needs a code would be refused", s.Client.Socket, err),
			Fix:     "systemctl start otpgated (journalctl -u otpgated says why it stopped); if it listens elsewhere, give --config or --socket"})
	}
	daemonUp := err == nil

	loader := filepath.Join(s.PAMDir, pamstack.ModuleName)
	var trust []doctor.Finding
	trust = append(trust, doctor.CheckTrusted("pam-loader", "the PAM module", doctor.TrustChain(loader))...)
	trust = append(trust, doctor.CheckTrusted("pam-golib", "the Go library of the PAM module", doctor.TrustChain(doctor.DefaultGoLib))...)
	if len(trust) == 0 {
		out = append(out, Guard{Kind: GuardModule, Status: GuardOK,
			What: fmt.Sprintf("the PAM module %s and its Go library %s are installed, root's and not writable by others", loader, doctor.DefaultGoLib)})
	}
	for _, f := range trust {
		out = append(out, Guard{Kind: GuardModule, Status: GuardFailed, Problem: f.Problem + ": " + f.Why, Fix: f.Fix})
	}

	if !daemonUp {
		return append(out, Guard{Kind: GuardAdmin, Status: GuardFailed,
			Problem: "whether " + s.Admin + " is enrolled cannot be asked while otpgated is down", Fix: "start otpgated first"})
	}
	return append(out, s.adminGuard(ctx)...)
}

// adminGuard is the lock-yourself-out check: the administrator running
// setup must have an active enrollment, or (when the policy does not
// require a code from them) a console that does not depend on otpgated,
// with a usable root password. Notes about the other administrators come
// first.
func (s *Session) adminGuard(ctx context.Context) []Guard {
	status := map[string]protocol.UserStatus{}
	var out []Guard
	users, groups, err := doctor.ReadAccounts()
	if err != nil {
		out = append(out, Guard{Kind: GuardAdmin, Status: GuardNote,
			Problem: fmt.Sprintf("the user and group databases could not be listed whole (%v): other administrators may be missing below", err),
			Fix:     "check the sources in /etc/nsswitch.conf: 'getent passwd' and 'getent group' must list everyone"})
	}
	admins := doctor.Admins(users, groups)
	if !slices.Contains(admins, s.Admin) {
		admins = append(admins, s.Admin)
	}
	fail := func(problem, fix string, overridable bool) []Guard {
		return []Guard{{Kind: GuardAdmin, Status: GuardFailed, Problem: problem, Fix: fix, Overridable: overridable}}
	}
	for _, u := range admins {
		ctx1, cancel := context.WithTimeout(ctx, s.timeout())
		resp, err := s.Client.Do(ctx1, &protocol.Request{Op: protocol.OpAdminShow, User: u, Service: "otpgate-setup"})
		cancel()
		var pe *protocol.Error
		switch {
		case err == nil && resp.Status != nil:
			status[u] = *resp.Status
		case errors.As(err, &pe) && pe.Code == protocol.ErrNotFound:
		case err != nil && u == s.Admin:
			return fail(fmt.Sprintf("otpgated did not say whether %s is enrolled: %v", u, err), "run it as root; check journalctl -u otpgated", false)
		}
	}
	for _, f := range doctor.CheckAdmins(admins, status) {
		if f.ID != "admin-none-enrolled" {
			out = append(out, Guard{Kind: GuardAdmin, Status: GuardNote, Problem: f.Problem, Fix: f.Fix})
		}
	}
	st := status[s.Admin]
	if st.State == protocol.StateActive {
		return append(out, Guard{Kind: GuardAdmin, Status: GuardOK, What: s.Admin + " (who runs this) is enrolled and can log in with a code"})
	}
	enroll := fmt.Sprintf("enroll first ('otpgate enroll' as %s, or 'otpgate admin enroll %s'), test a code with 'otpgate status', then run this again", s.Admin, s.Admin)
	if st.PolicyRequires && !st.Exempt {
		return append(out, fail(fmt.Sprintf("%s (who runs this) is not enrolled, and otpgated's policy requires a code from %s: after this change %s is refused by %s", s.Admin, s.Admin, s.Admin, s.Target),
			enroll, true)...)
	}
	entries, _, err := doctor.LoadService("login", pamstack.ReadSystem)
	switch {
	case err != nil:
		return append(out, fail(fmt.Sprintf("%s (who runs this) is not enrolled, and the console has no PAM service (/etc/pam.d/login: %v)", s.Admin, err),
			enroll, true)...)
	case len(doctor.CheckConsole(entries)) > 0:
		return append(out, fail(fmt.Sprintf("%s (who runs this) is not enrolled, and the console login (/etc/pam.d/login) also uses pam_otpgate: if this goes wrong there is no way back in", s.Admin),
			enroll+"; and keep pam_otpgate out of /etc/pam.d/login (docs/pam.md, 'When otpgated is down')", true)...)
	}
	if ok, why := RootConsoleUsable(); !ok {
		return append(out, fail(fmt.Sprintf("%s (who runs this) is not enrolled, and root cannot log in on the console (%s): if this goes wrong there is no way back in", s.Admin, why),
			enroll+"; or give root a password for the console first (passwd root)", true)...)
	}
	return append(out, Guard{Kind: GuardAdmin, Status: GuardOK,
		What: fmt.Sprintf("%s (who runs this) is not enrolled (no code is asked until they enroll), but the console does not use otpgated and root has a password for it", s.Admin)})
}

// RootConsoleUsable reports whether root has a password the console login
// accepts (not locked with ! or *), from root's shadow entry (NSS); if
// not, it says why.
func RootConsoleUsable() (bool, string) {
	sh, err := accounts.LookupShadow("root")
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		return false, "root has no shadow entry"
	case err != nil:
		return false, "root's shadow entry cannot be read: " + err.Error()
	case sh.Locked:
		return false, "its password is locked in the shadow database"
	}
	return true, ""
}
