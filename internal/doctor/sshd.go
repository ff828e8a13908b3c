package doctor

import (
	"fmt"
	"strings"
)

// SSHDConfig is sshd's effective configuration as `sshd -T` prints it:
// lower-case keywords, each with the values of its lines.
type SSHDConfig map[string][]string

// ParseSSHDT parses the output of `sshd -T` (or `sshd -T -C ...`).
func ParseSSHDT(out string) SSHDConfig {
	c := SSHDConfig{}
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		if k == "" {
			continue
		}
		k = strings.ToLower(k)
		c[k] = append(c[k], strings.TrimSpace(v))
	}
	return c
}

// Get returns the first value of key, or "".
func (c SSHDConfig) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// KbdInteractive is KbdInteractiveAuthentication, or the deprecated
// ChallengeResponseAuthentication an older sshd prints instead.
func (c SSHDConfig) KbdInteractive() string {
	if v := c.Get("kbdinteractiveauthentication"); v != "" {
		return v
	}
	return c.Get("challengeresponseauthentication")
}

// PAMService is the PAM service sshd uses: PamServiceName (OpenSSH 9.8
// and later) or "sshd".
func (c SSHDConfig) PAMService() string {
	if v := c.Get("pamservicename"); v != "" {
		return v
	}
	return "sshd"
}

// MethodLists returns AuthenticationMethods as lists of methods; nil for
// "any".
func (c SSHDConfig) MethodLists() [][]string {
	v := c.Get("authenticationmethods")
	if v == "" || v == "any" {
		return nil
	}
	var out [][]string
	for _, l := range strings.Fields(v) {
		out = append(out, strings.Split(l, ","))
	}
	return out
}

// KeyBeforeCode reports whether every method list that reaches
// keyboard-interactive has proved a public key first: then the PAM stack
// should ask for the code only. Otherwise (keyboard-interactive alone, or
// "any") the PAM stack is the first factor and a password there is
// intended.
func (c SSHDConfig) KeyBeforeCode() bool {
	lists := c.MethodLists()
	if lists == nil {
		return false
	}
	for _, l := range lists {
		key := false
		for _, m := range l {
			if m == "publickey" {
				key = true
			}
			if (m == "keyboard-interactive" || strings.HasPrefix(m, "keyboard-interactive:")) && !key {
				return false
			}
		}
	}
	return true
}

// relevantSSHD are the keywords CheckSSHD looks at; a Match block that
// changes none of them needs no second look.
var relevantSSHD = []string{"usepam", "kbdinteractiveauthentication", "challengeresponseauthentication",
	"authenticationmethods", "passwordauthentication", "permitrootlogin"}

// SameAs reports whether c and o agree on every keyword CheckSSHD reads.
func (c SSHDConfig) SameAs(o SSHDConfig) bool {
	for _, k := range relevantSSHD {
		if c.Get(k) != o.Get(k) {
			return false
		}
	}
	return true
}

func hasKbd(list []string) bool {
	for _, m := range list {
		if m == "keyboard-interactive" || strings.HasPrefix(m, "keyboard-interactive:") {
			return true
		}
	}
	return false
}

// SetupSSHD and SetupSudo are the commands that write the configuration
// doctor checks; a fix they can make names them first, a hand edit after.
const (
	SetupSSHD = "otpgate setup sshd"
	SetupSudo = "otpgate setup sudo"
)

// bySetup is the start of a fix that the command cmd can make: it shows
// the change and, with --apply, writes it; the hand edit follows. It is
// "" when cmd is "".
func bySetup(cmd string) string {
	if cmd == "" {
		return ""
	}
	return fmt.Sprintf("run '%[1]s' (it shows the change; '%[1]s --apply' writes it and checks the result); or by hand: ", cmd)
}

// CheckSSHD checks sshd's effective configuration. user is "" for the
// global settings, or the user a Match block was evaluated for (its name
// goes into Where); where names the command that produced c.
//
// What `otpgate setup sshd` writes passes: the global settings, and
// root's key-only rule ('Match User root' / 'AuthenticationMethods
// publickey'), which is reported as a note that needs no fix. A fix for
// the global settings names setup first; a Match block for one user is
// a hand edit (setup adds rules for root and the administrator running
// it only).
func CheckSSHD(c SSHDConfig, user, where string) []Finding {
	var out []Finding
	file := "/etc/ssh/sshd_config (or a file in /etc/ssh/sshd_config.d/, where the first value read wins)"
	how := bySetup(SetupSSHD) + "set "
	if user != "" {
		file = "the 'Match' block for " + user + " (in /etc/ssh/sshd_config or a file in /etc/ssh/sshd_config.d/; sshd -T does not say which)"
		how = "set "
	}
	if c.Get("usepam") != "yes" {
		out = append(out, Finding{ID: "sshd-usepam", Severity: Error, Where: where,
			Problem: fmt.Sprintf("sshd has UsePAM %s", orNone(c.Get("usepam"))),
			Why:     "sshd never runs the PAM auth stack, so pam_otpgate is never asked and no code is required.",
			Fix:     how + "'UsePAM yes' in " + file + ", then 'systemctl reload ssh'."})
	}
	if c.KbdInteractive() != "yes" {
		out = append(out, Finding{ID: "sshd-kbdinteractive", Severity: Error, Where: where,
			Problem: fmt.Sprintf("sshd has KbdInteractiveAuthentication %s (Debian ships 'no')", orNone(c.KbdInteractive())),
			Why:     "the code prompt comes through keyboard-interactive; without it pam_otpgate can never ask, and logins requiring it fail.",
			Fix:     how + "'KbdInteractiveAuthentication yes' in " + file + " (ChallengeResponseAuthentication is its deprecated alias), then 'systemctl reload ssh'."})
	}
	lists := c.MethodLists()
	if lists == nil {
		out = append(out, Finding{ID: "sshd-authmethods-any", Severity: Error, Where: where,
			Problem: "sshd has AuthenticationMethods any: each method alone logs in",
			Why:     "a public key (or any other single method) is accepted without keyboard-interactive, so a user with a key never sees the code prompt.",
			Fix:     how + "'AuthenticationMethods publickey,keyboard-interactive' in " + file + ", then 'systemctl reload ssh'."})
	}
	for _, l := range lists {
		if hasKbd(l) {
			continue
		}
		if user == "root" && len(l) == 1 && l[0] == "publickey" {
			out = append(out, Finding{ID: "sshd-root-key-only", Severity: Info, Where: where,
				Problem: "root logs in with a public key only, without a code (AuthenticationMethods publickey for root)",
				Why:     "this is the rule '" + SetupSSHD + "' writes for root: under PermitRootLogin prohibit-password sshd refuses keyboard-interactive for root, and a key-only root login keeps working when otpgated is down.",
				Fix:     "none needed. For a key and a code for root instead, set 'PermitRootLogin yes' and remove the 'Match User root' block."})
			continue
		}
		replace := "replace"
		if user == "" {
			replace = bySetup(SetupSSHD) + "replace"
		}
		out = append(out, Finding{ID: "sshd-authmethods-nocode", Severity: Error, Where: where,
			Problem: fmt.Sprintf("sshd's AuthenticationMethods contains %q, which has no keyboard-interactive", strings.Join(l, ",")),
			Why:     "a login that completes this list never reaches keyboard-interactive, so no code is asked.",
			Fix:     fmt.Sprintf("%s %q by %q in the AuthenticationMethods of %s.", replace, strings.Join(l, ","), strings.Join(l, ",")+",keyboard-interactive", file)})
	}
	if c.Get("usepam") == "yes" && c.Get("passwordauthentication") == "yes" {
		out = append(out, Finding{ID: "sshd-password-pam", Severity: Warning, Where: where,
			Problem: "sshd has PasswordAuthentication yes together with UsePAM yes",
			Why:     "for password logins sshd runs the PAM stack with a conversation that answers every hidden prompt with the password: the code prompt receives the password, so such logins fail (or, with a code typed as the password, skip the real password).",
			Fix:     how + "'PasswordAuthentication no' in " + file + " and use keyboard-interactive for any password (see docs/pam.md)."})
	}
	if user == "root" || user == "" {
		prr := c.Get("permitrootlogin")
		needsKbd := len(lists) > 0
		for _, l := range lists {
			if !hasKbd(l) {
				needsKbd = false
			}
		}
		switch {
		case user == "root" && needsKbd && (prr == "prohibit-password" || prr == "without-password" || prr == "forced-commands-only"):
			out = append(out, Finding{ID: "sshd-root-blocked", Severity: Warning, Where: where,
				Problem: fmt.Sprintf("root must pass keyboard-interactive, but PermitRootLogin is %s", prr),
				Why:     "with prohibit-password sshd refuses keyboard-interactive for root, so root cannot log in over SSH at all.",
				Fix:     bySetup(SetupSSHD) + "add 'Match User root' with 'AuthenticationMethods publickey' (root: a key only) at the end of /etc/ssh/sshd_config, or set 'PermitRootLogin yes' (root: a key and a code)."})
		case prr == "yes" && c.Get("passwordauthentication") == "yes":
			fix := "set 'PasswordAuthentication no' (or 'PermitRootLogin prohibit-password' with a key-only Match block for root)."
			if user == "" {
				fix = bySetup(SetupSSHD) + fix
			}
			out = append(out, Finding{ID: "sshd-root-password", Severity: Warning, Where: where,
				Problem: "sshd has PermitRootLogin yes together with PasswordAuthentication yes",
				Why:     "root's password alone is offered to the whole network.",
				Fix:     fix})
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(not printed)"
	}
	return s
}
