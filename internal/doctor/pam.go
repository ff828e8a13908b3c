package doctor

import (
	"fmt"

	"github.com/otpgate/otpgate/internal/pamstack"
)

// DefaultGoLib is where the PAM loader finds the Go library unless the
// module line says golib=.
const DefaultGoLib = "/usr/lib/otpgate/libpam_otpgate_go.so"

// LoadService loads the PAM service with [pamstack.Load] and reports the
// problems in its files as findings. A missing service file is returned
// as an error satisfying errors.Is(err, fs.ErrNotExist).
func LoadService(service string, read pamstack.ReadFunc) ([]pamstack.Entry, []Finding, error) {
	entries, probs, err := pamstack.Load(service, read)
	if err != nil {
		return nil, nil, err
	}
	var fds []Finding
	for _, p := range probs {
		fds = append(fds, problemFinding(p))
	}
	return entries, fds, nil
}

// problemFinding is doctor's finding for a problem in a service's files.
func problemFinding(p pamstack.Problem) Finding {
	switch p.Kind {
	case pamstack.IncludeLoop:
		return Finding{ID: "pam-include-loop", Severity: Error, Where: p.Where,
			Problem: p.Err.Error(),
			Why:     "Linux-PAM refuses such a stack, so the service fails for everyone.",
			Fix:     "remove the circular include in /etc/pam.d/" + p.File + "."}
	case pamstack.IncludeMissing:
		sev := Error
		if p.NotExist() && p.Dash {
			sev = Warning
		}
		return Finding{ID: "pam-include-missing", Severity: sev, Where: p.Where,
			Problem: fmt.Sprintf("included file %s cannot be read: %v", p.Include, p.Err),
			Why:     "Linux-PAM fails the whole stack when an included file is missing.",
			Fix:     fmt.Sprintf("restore /etc/pam.d/%s or remove the include from /etc/pam.d/%s.", p.Include, p.File)}
	}
	return Finding{ID: "pam-syntax", Severity: Warning, Where: p.Where,
		Problem: p.Err.Error(),
		Why:     "Linux-PAM skips (or, for an unknown type, refuses) malformed lines, so the stack is not what it looks like.",
		Fix:     "correct or remove the line in /etc/pam.d/" + p.File + "."}
}

// PAMWant says what a service is expected to do.
type PAMWant struct {
	// Service is the PAM service name (the file in /etc/pam.d).
	Service string
	// MissingSeverity is how bad it is that the service never asks for a
	// code.
	MissingSeverity Severity
	// PasswordFirst: the service is meant to ask for the Unix password and
	// then the code (sudo). When false (sshd after a public key), a
	// password module in the auth stack asks for a password nobody
	// expects.
	PasswordFirst bool
	// Setup is the command that writes this service as doctor wants it
	// (SetupSSHD, SetupSudo), named in the fixes it can make; "" when
	// there is none.
	Setup string
}

// passwordModules ask the user for a password.
var passwordModules = map[string]bool{"pam_unix.so": true, "pam_unix2.so": true, "pam_sss.so": true,
	"pam_ldap.so": true, "pam_krb5.so": true, "pam_winbind.so": true}

// CheckPAMService checks one service's resolved lines against want.
func CheckPAMService(want PAMWant, entries []pamstack.Entry) []Finding {
	svc := want.Service
	file := "/etc/pam.d/" + svc
	auth := pamstack.AuthEntries(entries)
	var out []Finding
	otp := -1
	for i, e := range auth {
		if e.IsOtpgate() {
			otp = i
			break
		}
	}
	if otp < 0 {
		for _, e := range entries {
			if e.IsOtpgate() {
				out = append(out, Finding{ID: "pam-not-auth", Severity: Error, Where: e.At(),
					Problem: fmt.Sprintf("%s is listed as a %q module in %s, not in the auth stack", pamstack.ModuleName, e.Type, svc),
					Why:     "only auth lines ask for a code; as " + e.Type + " the module answers PAM_IGNORE and no code is ever asked.",
					Fix:     fmt.Sprintf("change the line's type to auth: 'auth required %s' in %s.", pamstack.ModuleName, file)})
			}
		}
		if len(out) > 0 {
			return out
		}
		fix := bySetup(want.Setup) + fmt.Sprintf("add 'auth required %s' to %s", pamstack.ModuleName, file)
		if want.PasswordFirst {
			fix += ", right after '@include common-auth'."
		} else {
			fix += " in place of '@include common-auth', followed by 'auth required pam_permit.so' (see docs/pam.md)."
		}
		return []Finding{{ID: "pam-" + svc + "-missing", Severity: want.MissingSeverity, Where: file,
			Problem: fmt.Sprintf("the %s auth stack does not use %s", svc, pamstack.ModuleName),
			Why:     fmt.Sprintf("%s never asks for a verification code: the second factor is not enforced there.", svc),
			Fix:     fix}}
	}
	e := auth[otp]
	if ok, why := pamstack.ControlCounts(auth, otp); !ok {
		out = append(out, Finding{ID: "pam-control", Severity: Error, Where: e.At(),
			Problem: fmt.Sprintf("%s is '%s %s' in %s: a wrong code does not fail the login", pamstack.ModuleName, e.Control, e.Module, svc),
			Why:     why + ".",
			Fix:     fmt.Sprintf("use the control 'required': 'auth required %s' at %s.", pamstack.ModuleName, e.Where)})
	}
	if e.Dash {
		out = append(out, Finding{ID: "pam-dash", Severity: Warning, Where: e.At(),
			Problem: fmt.Sprintf("the line is '-auth ... %s': PAM skips it silently when the module file is missing", pamstack.ModuleName),
			Why:     "if the module is removed or not yet installed (a half-done upgrade), logins continue without a code and nothing says so.",
			Fix:     fmt.Sprintf("drop the leading '-' at %s.", e.Where)})
	}
	if v, ok := e.Arg("fail"); ok && v == "open" {
		out = append(out, Finding{ID: "pam-fail-open", Severity: Warning, Where: e.At(),
			Problem: fmt.Sprintf("%s has fail=open in %s", pamstack.ModuleName, svc),
			Why:     "anyone who can stop otpgated, fill its connection slots or remove its socket then logs in with the first factor alone (the DUO-PSA-2017-002 bypass).",
			Fix:     fmt.Sprintf("remove fail=open at %s; keep the console (/etc/pam.d/login) as the way in when otpgated is down.", e.Where)})
	}
	pw := -1
	for i, a := range auth {
		if passwordModules[a.Base()] {
			pw = i
			break
		}
	}
	if _, ok := e.Arg("enroll_after_password"); ok && !(pw >= 0 && pw < otp && pamstack.FailureEndsStack(auth, pw)) {
		out = append(out, Finding{ID: "pam-enroll-after-password", Severity: Error, Where: e.At(),
			Problem: fmt.Sprintf("%s has enroll_after_password in %s, but no password module ahead of it ends the stack on a wrong password", pamstack.ModuleName, svc),
			Why:     "enroll_after_password tells otpgated that reaching the module proves the password; otherwise someone without the password could set up a new secret for the account at login (policy.enroll_on_login).",
			Fix:     fmt.Sprintf("put 'auth requisite pam_unix.so' (or '@include common-auth', whose pam_deny line ends the stack) above %s in %s, or remove enroll_after_password.", e.Where, file)})
	}
	_, requirePK := e.Arg("require_publickey")
	switch {
	case requirePK && want.PasswordFirst:
		out = append(out, Finding{ID: "pam-require-publickey-unkeyed", Severity: Error, Where: e.At(),
			Problem: fmt.Sprintf("%s has require_publickey in %s, which does not start with a public key", pamstack.ModuleName, svc),
			Why:     "require_publickey refuses every login for which sshd verified no public key: sudo never has one, nor has an sshd login whose first method is a password or keyboard-interactive, so every login that reaches the module is refused.",
			Fix:     fmt.Sprintf("remove require_publickey at %s; it belongs in sshd's stack under 'AuthenticationMethods publickey,keyboard-interactive'.", e.Where)})
	case !requirePK && !want.PasswordFirst && pw < 0:
		out = append(out, Finding{ID: "pam-no-require-publickey", Severity: Warning, Where: e.At(),
			Problem: fmt.Sprintf("%s in %s does not check that sshd verified a public key (no require_publickey)", pamstack.ModuleName, svc),
			Why:     "this stack has no password module: whenever sshd offers a password or keyboard-interactive without a key (an sshd not yet reloaded after sshd_config changed, a drop-in read first), a user who is not enrolled logs in with any password, and an enrolled user with the current code typed as the password.",
			Fix:     bySetup(want.Setup) + fmt.Sprintf("add require_publickey to the line at %s: 'auth required %s require_publickey'.", e.Where, pamstack.ModuleName)})
	}
	switch {
	case want.PasswordFirst && pw > otp:
		out = append(out, Finding{ID: "pam-order", Severity: Warning, Where: auth[pw].At(),
			Problem: fmt.Sprintf("in %s the code is asked before the password (%s at %s comes after %s at %s)", svc, auth[pw].Base(), auth[pw].Where, pamstack.ModuleName, e.Where),
			Why:     "someone who does not know the password is still asked for a code, and every wrong guess counts towards the owner's lockout in otpgated.",
			Fix:     fmt.Sprintf("move 'auth required %s' below '@include common-auth' in %s.", pamstack.ModuleName, file)})
	case !want.PasswordFirst && pw >= 0:
		out = append(out, Finding{ID: "pam-password-asked", Severity: Warning, Where: auth[pw].At(),
			Problem: fmt.Sprintf("the %s auth stack also runs %s (a Unix password prompt)", svc, auth[pw].Base()),
			Why:     "after the public key, keyboard-interactive asks for the Unix password as well as the code: users see a password prompt they do not expect, and accounts without a password cannot log in.",
			Fix:     fmt.Sprintf("in %s replace '@include common-auth' by 'auth required %s' and 'auth required pam_permit.so' (keep the account/session/password includes). Ignore this if password + key + code is intended.", file, pamstack.ModuleName)})
	}
	if !want.PasswordFirst && pw < 0 {
		permit := false
		for _, a := range auth[otp+1:] {
			if a.Base() == "pam_permit.so" {
				permit = true
			}
		}
		if !permit {
			out = append(out, Finding{ID: "pam-no-permit", Severity: Error, Where: file,
				Problem: fmt.Sprintf("the %s auth stack has no module after %s that succeeds for users who need no code", svc, pamstack.ModuleName),
				Why:     "for users without an enrollment the module answers PAM_IGNORE, and a stack in which every module ignored fails: they cannot log in.",
				Fix:     fmt.Sprintf("add 'auth required pam_permit.so' below the %s line in %s.", pamstack.ModuleName, file)})
		}
	}
	return out
}

// CheckConsole checks that the console login (the login service) does not
// depend on otpgated, so that it stays the way in when the daemon is down.
func CheckConsole(entries []pamstack.Entry) []Finding {
	auth := pamstack.AuthEntries(entries)
	for i, e := range auth {
		if !e.IsOtpgate() {
			continue
		}
		if ok, _ := pamstack.ControlCounts(auth, i); !ok {
			continue
		}
		if v, _ := e.Arg("fail"); v == "open" {
			continue
		}
		return []Finding{{ID: "console-guarded", Severity: Warning, Where: e.At(),
			Problem: "the console login (/etc/pam.d/login) requires a code from otpgated",
			Why:     "when otpgated is down or the module cannot load, the local/serial/IPMI console refuses every enrolled user too, and there is no way back in.",
			Fix:     fmt.Sprintf("remove the %s line from the login service at %s (keep a root password or console access that works; see docs/pam.md, 'When otpgated is down').", pamstack.ModuleName, e.Where)}}
	}
	return nil
}
