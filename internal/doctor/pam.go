package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// ModuleName is the file name of otpgate's PAM module.
const ModuleName = "pam_otpgate.so"

// DefaultGoLib is where the PAM loader finds the Go library unless the
// module line says golib=.
const DefaultGoLib = "/usr/lib/otpgate/libpam_otpgate_go.so"

// PAMEntry is one module line of a PAM service after includes are
// resolved.
type PAMEntry struct {
	// Where is "FILE:LINE" of the line itself.
	Where string
	// Via is the include chain that led to it ("sshd:1 @include"), or "".
	Via string
	// Type is auth, account, password or session.
	Type string
	// Dash is the leading "-": skip silently if the module is missing.
	Dash bool
	// Control is "required", "sufficient", ... or a bracket expression
	// "[success=1 default=ignore]".
	Control string
	// Module is the module path as written.
	Module string
	Args   []string
}

// Base is the module's file name.
func (e PAMEntry) Base() string { return path.Base(e.Module) }

// IsOtpgate reports whether the line loads pam_otpgate.so.
func (e PAMEntry) IsOtpgate() bool { return e.Base() == ModuleName }

// Arg returns the value of key=value among the arguments, and whether it
// is there.
func (e PAMEntry) Arg(key string) (string, bool) {
	for _, a := range e.Args {
		if v, ok := strings.CutPrefix(a, key+"="); ok {
			return v, true
		}
		if a == key {
			return "", true
		}
	}
	return "", false
}

// at is Where, with the include chain if there is one.
func (e PAMEntry) at() string {
	if e.Via != "" {
		return e.Where + " (via " + e.Via + ")"
	}
	return e.Where
}

// pamLine is one parsed line of a PAM file: a module line or an
// @include.
type pamLine struct {
	line    int
	include string // "@include NAME"
	typ     string
	dash    bool
	control string
	module  string
	args    []string
}

// parsePAMFile splits a /etc/pam.d file into lines, handling comments,
// backslash continuations and bracketed controls and arguments.
func parsePAMFile(name string, data []byte) ([]pamLine, []error) {
	var out []pamLine
	var errs []error
	raw := strings.Split(string(data), "\n")
	for i := 0; i < len(raw); i++ {
		start := i + 1
		text := raw[i]
		for strings.HasSuffix(text, "\\") && i+1 < len(raw) {
			i++
			text = strings.TrimSuffix(text, "\\") + " " + raw[i]
		}
		if k := strings.IndexByte(text, '#'); k >= 0 {
			text = text[:k]
		}
		fields := pamFields(text)
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "@include" {
			if len(fields) < 2 {
				errs = append(errs, fmt.Errorf("%s:%d: @include without a file name", name, start))
				continue
			}
			out = append(out, pamLine{line: start, include: fields[1]})
			continue
		}
		if len(fields) < 3 {
			errs = append(errs, fmt.Errorf("%s:%d: incomplete line %q", name, start, strings.TrimSpace(text)))
			continue
		}
		l := pamLine{line: start, typ: strings.ToLower(fields[0]), control: fields[1], module: fields[2], args: fields[3:]}
		if strings.HasPrefix(l.typ, "-") {
			l.dash, l.typ = true, l.typ[1:]
		}
		out = append(out, l)
	}
	return out, errs
}

// pamFields splits a line on blanks, keeping "[...]" groups (which may
// contain blanks) together, as Linux-PAM does.
func pamFields(s string) []string {
	var out []string
	var cur strings.Builder
	depth := 0
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for _, r := range s {
		switch {
		case r == '[':
			depth++
			cur.WriteRune(r)
		case r == ']' && depth > 0:
			depth--
			cur.WriteRune(r)
		case (r == ' ' || r == '\t' || r == '\r') && depth == 0:
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return out
}

// ReadFunc reads a file below /etc/pam.d by name (or an absolute path).
type ReadFunc func(name string) ([]byte, error)

// LoadService reads the PAM service and everything it includes (@include,
// and "include"/"substack" controls, which pull in one type only), and
// returns its module lines in order. A missing service file is returned as
// an error satisfying errors.Is(err, fs.ErrNotExist); problems in included
// files come back as findings.
func LoadService(service string, read ReadFunc) ([]PAMEntry, []Finding, error) {
	data, err := read(service)
	if err != nil {
		return nil, nil, err
	}
	var fds []Finding
	entries := expand(service, data, "", "", read, 0, &fds)
	return entries, fds, nil
}

const maxIncludeDepth = 8

func expand(name string, data []byte, onlyType, via string, read ReadFunc, depth int, fds *[]Finding) []PAMEntry {
	lines, errs := parsePAMFile(name, data)
	for _, e := range errs {
		*fds = append(*fds, Finding{ID: "pam-syntax", Severity: Warning, Where: name,
			Problem: e.Error(),
			Why:     "Linux-PAM skips (or, for an unknown type, refuses) malformed lines, so the stack is not what it looks like.",
			Fix:     "correct or remove the line in /etc/pam.d/" + name + "."})
	}
	var out []PAMEntry
	for _, l := range lines {
		where := fmt.Sprintf("%s:%d", name, l.line)
		inc, typ := l.include, onlyType
		if inc == "" && (l.control == "include" || l.control == "substack") {
			inc, typ = l.module, l.typ
		}
		if inc == "" {
			if onlyType != "" && l.typ != onlyType {
				continue
			}
			out = append(out, PAMEntry{Where: where, Via: via, Type: l.typ, Dash: l.dash,
				Control: l.control, Module: l.module, Args: l.args})
			continue
		}
		chain := where
		if via != "" {
			chain = via + " > " + where
		}
		if depth >= maxIncludeDepth {
			*fds = append(*fds, Finding{ID: "pam-include-loop", Severity: Error, Where: where,
				Problem: fmt.Sprintf("includes nest deeper than %d levels here (a loop?), starting from %s", maxIncludeDepth, strings.SplitN(chain, " > ", 2)[0]),
				Why:     "Linux-PAM refuses such a stack, so the service fails for everyone.",
				Fix:     "remove the circular include in /etc/pam.d/" + name + "."})
			continue
		}
		sub, err := read(inc)
		if err != nil {
			sev := Error
			if errors.Is(err, fs.ErrNotExist) && l.dash {
				sev = Warning
			}
			*fds = append(*fds, Finding{ID: "pam-include-missing", Severity: sev, Where: chain,
				Problem: fmt.Sprintf("included file %s cannot be read: %v", inc, err),
				Why:     "Linux-PAM fails the whole stack when an included file is missing.",
				Fix:     fmt.Sprintf("restore /etc/pam.d/%s or remove the include from /etc/pam.d/%s.", inc, name)})
			continue
		}
		out = append(out, expand(inc, sub, typ, chain, read, depth+1, fds)...)
	}
	return out
}

// controlCounts says whether a failure of the module with this control,
// at index i of the auth entries, fails the stack; if not, it says why.
func controlCounts(auth []PAMEntry, i int) (bool, string) {
	e := auth[i]
	switch e.Control {
	case "required", "requisite":
		return true, ""
	case "optional":
		return false, "'optional' ignores the module's result whenever another module succeeds, so a wrong code (or otpgated being down) still logs in"
	case "sufficient":
		if i+1 < len(auth) && auth[i+1].Base() == "pam_deny.so" && (auth[i+1].Control == "required" || auth[i+1].Control == "requisite") {
			return true, ""
		}
		return false, "'sufficient' ignores a failure (a wrong code falls through to the modules below) and its success skips every auth module below it"
	}
	if strings.HasPrefix(e.Control, "[") {
		acts := bracketActions(e.Control)
		act, ok := acts["auth_err"]
		if !ok {
			act, ok = acts["default"]
		}
		if !ok {
			return false, fmt.Sprintf("the control %s does not say what a wrong code (auth_err) does; Linux-PAM then does not fail the stack", e.Control)
		}
		switch act {
		case "bad", "die":
			return true, ""
		}
		return false, fmt.Sprintf("the control %s maps a wrong code (auth_err) to %q, which does not fail the stack", e.Control, act)
	}
	return false, fmt.Sprintf("the control %q is not one Linux-PAM knows for a module line", e.Control)
}

// failureEndsStack reports whether a failure of auth[i] ends the auth stack
// before any later module runs: 'requisite', a bracket control mapping
// auth_err (or default) to die, or Debian's common-auth shape, where a
// failure falls through ('default=ignore') to a 'requisite pam_deny.so'
// that success jumps over.
func failureEndsStack(auth []PAMEntry, i int) bool {
	e := auth[i]
	if e.Control == "requisite" {
		return true
	}
	if !strings.HasPrefix(e.Control, "[") {
		return false
	}
	acts := bracketActions(e.Control)
	act, ok := acts["auth_err"]
	if !ok {
		act = acts["default"]
	}
	if act == "die" {
		return true
	}
	if act != "ignore" || i+1 >= len(auth) {
		return false
	}
	next := auth[i+1]
	jump, err := strconv.Atoi(acts["success"])
	return err == nil && jump >= 1 && next.Base() == "pam_deny.so" && (next.Control == "requisite" || bracketActions(next.Control)["default"] == "die")
}

// bracketActions parses "[a=b c=d]" into a map.
func bracketActions(c string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(strings.Trim(c, "[]")) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[strings.ToLower(k)] = strings.ToLower(v)
		}
	}
	return m
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
}

// passwordModules ask the user for a password.
var passwordModules = map[string]bool{"pam_unix.so": true, "pam_unix2.so": true, "pam_sss.so": true,
	"pam_ldap.so": true, "pam_krb5.so": true, "pam_winbind.so": true}

// AuthEntries returns the auth lines of a service.
func AuthEntries(entries []PAMEntry) []PAMEntry {
	var auth []PAMEntry
	for _, e := range entries {
		if e.Type == "auth" {
			auth = append(auth, e)
		}
	}
	return auth
}

// ReachesOtpgate reports whether the service's auth stack runs
// pam_otpgate.so with a control that makes a wrong code fail the login.
func ReachesOtpgate(entries []PAMEntry) bool {
	auth := AuthEntries(entries)
	for i, e := range auth {
		if e.IsOtpgate() {
			if ok, _ := controlCounts(auth, i); ok {
				return true
			}
		}
	}
	return false
}

// CheckPAMService checks one service's resolved lines against want.
func CheckPAMService(want PAMWant, entries []PAMEntry) []Finding {
	svc := want.Service
	file := "/etc/pam.d/" + svc
	auth := AuthEntries(entries)
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
				out = append(out, Finding{ID: "pam-not-auth", Severity: Error, Where: e.at(),
					Problem: fmt.Sprintf("%s is listed as a %q module in %s, not in the auth stack", ModuleName, e.Type, svc),
					Why:     "only auth lines ask for a code; as " + e.Type + " the module answers PAM_IGNORE and no code is ever asked.",
					Fix:     fmt.Sprintf("change the line's type to auth: 'auth required %s' in %s.", ModuleName, file)})
			}
		}
		if len(out) > 0 {
			return out
		}
		fix := fmt.Sprintf("add 'auth required %s' to %s", ModuleName, file)
		if want.PasswordFirst {
			fix += ", right after '@include common-auth'."
		} else {
			fix += " in place of '@include common-auth', followed by 'auth required pam_permit.so' (see docs/pam.md)."
		}
		return []Finding{{ID: "pam-" + svc + "-missing", Severity: want.MissingSeverity, Where: file,
			Problem: fmt.Sprintf("the %s auth stack does not use %s", svc, ModuleName),
			Why:     fmt.Sprintf("%s never asks for a verification code: the second factor is not enforced there.", svc),
			Fix:     fix}}
	}
	e := auth[otp]
	if ok, why := controlCounts(auth, otp); !ok {
		out = append(out, Finding{ID: "pam-control", Severity: Error, Where: e.at(),
			Problem: fmt.Sprintf("%s is '%s %s' in %s: a wrong code does not fail the login", ModuleName, e.Control, e.Module, svc),
			Why:     why + ".",
			Fix:     fmt.Sprintf("use the control 'required': 'auth required %s' at %s.", ModuleName, e.Where)})
	}
	if e.Dash {
		out = append(out, Finding{ID: "pam-dash", Severity: Warning, Where: e.at(),
			Problem: fmt.Sprintf("the line is '-auth ... %s': PAM skips it silently when the module file is missing", ModuleName),
			Why:     "if the module is removed or not yet installed (a half-done upgrade), logins continue without a code and nothing says so.",
			Fix:     fmt.Sprintf("drop the leading '-' at %s.", e.Where)})
	}
	if v, ok := e.Arg("fail"); ok && v == "open" {
		out = append(out, Finding{ID: "pam-fail-open", Severity: Warning, Where: e.at(),
			Problem: fmt.Sprintf("%s has fail=open in %s", ModuleName, svc),
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
	if _, ok := e.Arg("enroll_after_password"); ok && !(pw >= 0 && pw < otp && failureEndsStack(auth, pw)) {
		out = append(out, Finding{ID: "pam-enroll-after-password", Severity: Error, Where: e.at(),
			Problem: fmt.Sprintf("%s has enroll_after_password in %s, but no password module ahead of it ends the stack on a wrong password", ModuleName, svc),
			Why:     "enroll_after_password tells otpgated that reaching the module proves the password; otherwise someone without the password could set up a new secret for the account at login (policy.enroll_on_login).",
			Fix:     fmt.Sprintf("put 'auth requisite pam_unix.so' (or '@include common-auth', whose pam_deny line ends the stack) above %s in %s, or remove enroll_after_password.", e.Where, file)})
	}
	_, requirePK := e.Arg("require_publickey")
	switch {
	case requirePK && want.PasswordFirst:
		out = append(out, Finding{ID: "pam-require-publickey-unkeyed", Severity: Error, Where: e.at(),
			Problem: fmt.Sprintf("%s has require_publickey in %s, which does not start with a public key", ModuleName, svc),
			Why:     "require_publickey refuses every login for which sshd verified no public key: sudo never has one, nor has an sshd login whose first method is a password or keyboard-interactive, so every login that reaches the module is refused.",
			Fix:     fmt.Sprintf("remove require_publickey at %s; it belongs in sshd's stack under 'AuthenticationMethods publickey,keyboard-interactive'.", e.Where)})
	case !requirePK && !want.PasswordFirst && pw < 0:
		out = append(out, Finding{ID: "pam-no-require-publickey", Severity: Warning, Where: e.at(),
			Problem: fmt.Sprintf("%s in %s does not check that sshd verified a public key (no require_publickey)", ModuleName, svc),
			Why:     "this stack has no password module: whenever sshd offers a password or keyboard-interactive without a key (an sshd not yet reloaded after sshd_config changed, a drop-in read first), a user who is not enrolled logs in with any password, and an enrolled user with the current code typed as the password.",
			Fix:     fmt.Sprintf("add require_publickey to the line at %s: 'auth required %s require_publickey'.", e.Where, ModuleName)})
	}
	switch {
	case want.PasswordFirst && pw > otp:
		out = append(out, Finding{ID: "pam-order", Severity: Warning, Where: auth[pw].at(),
			Problem: fmt.Sprintf("in %s the code is asked before the password (%s at %s comes after %s at %s)", svc, auth[pw].Base(), auth[pw].Where, ModuleName, e.Where),
			Why:     "someone who does not know the password is still asked for a code, and every wrong guess counts towards the owner's lockout in otpgated.",
			Fix:     fmt.Sprintf("move 'auth required %s' below '@include common-auth' in %s.", ModuleName, file)})
	case !want.PasswordFirst && pw >= 0:
		out = append(out, Finding{ID: "pam-password-asked", Severity: Warning, Where: auth[pw].at(),
			Problem: fmt.Sprintf("the %s auth stack also runs %s (a Unix password prompt)", svc, auth[pw].Base()),
			Why:     "after the public key, keyboard-interactive asks for the Unix password as well as the code: users see a password prompt they do not expect, and accounts without a password cannot log in.",
			Fix:     fmt.Sprintf("in %s replace '@include common-auth' by 'auth required %s' and 'auth required pam_permit.so' (keep the account/session/password includes). Ignore this if password + key + code is intended.", file, ModuleName)})
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
				Problem: fmt.Sprintf("the %s auth stack has no module after %s that succeeds for users who need no code", svc, ModuleName),
				Why:     "for users without an enrollment the module answers PAM_IGNORE, and a stack in which every module ignored fails: they cannot log in.",
				Fix:     fmt.Sprintf("add 'auth required pam_permit.so' below the %s line in %s.", ModuleName, file)})
		}
	}
	return out
}

// CheckConsole checks that the console login (the login service) does not
// depend on otpgated, so that it stays the way in when the daemon is down.
func CheckConsole(entries []PAMEntry) []Finding {
	auth := AuthEntries(entries)
	for i, e := range auth {
		if !e.IsOtpgate() {
			continue
		}
		if ok, _ := controlCounts(auth, i); !ok {
			continue
		}
		if v, _ := e.Arg("fail"); v == "open" {
			continue
		}
		return []Finding{{ID: "console-guarded", Severity: Warning, Where: e.at(),
			Problem: "the console login (/etc/pam.d/login) requires a code from otpgated",
			Why:     "when otpgated is down or the module cannot load, the local/serial/IPMI console refuses every enrolled user too, and there is no way back in.",
			Fix:     fmt.Sprintf("remove the %s line from the login service at %s (keep a root password or console access that works; see docs/pam.md, 'When otpgated is down').", ModuleName, e.Where)}}
	}
	return nil
}
