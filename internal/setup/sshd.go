package setup

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
)

// Paths of the OpenSSH server configuration on Debian.
const (
	// SSHDConfig is sshd's main configuration file.
	SSHDConfig = "/etc/ssh/sshd_config"
	// SSHDDropIn is the file setup writes when SSHDConfig includes
	// sshd_config.d/*.conf before anything else: its name sorts first, so
	// its values win over the other drop-ins and the main file.
	SSHDDropIn = "/etc/ssh/sshd_config.d/00-otpgate.conf"
)

// sshdSettings are docs/pam.md's settings: a public key, then a code
// through PAM keyboard-interactive, and no password authentication
// (whose PAM conversation would answer the code prompt with the
// password).
var sshdSettings = []struct{ keyword, name, value string }{
	{"usepam", "UsePAM", "yes"},
	{"kbdinteractiveauthentication", "KbdInteractiveAuthentication", "yes"},
	{"passwordauthentication", "PasswordAuthentication", "no"},
	{"authenticationmethods", "AuthenticationMethods", "publickey,keyboard-interactive"},
}

// RootKeyOnly is the AuthenticationMethods of root's Match block.
const RootKeyOnly = "publickey"

// SSHDOptions are the inputs of [PlanSSHD].
type SSHDOptions struct {
	// Main and DropIn default to SSHDConfig and SSHDDropIn.
	Main, DropIn string
	// PermitRootLogin is root's effective PermitRootLogin as
	// `sshd -T -C user=root,...` prints it; "" reads it from the files.
	PermitRootLogin string
	// Users are other users (the administrator running setup) who must
	// end up with a key and a code, whatever Match blocks say.
	Users []string
}

// SSHDPlan is what [PlanSSHD] decided.
type SSHDPlan struct {
	// Change is the file to write; nil when the effective configuration
	// already is the wanted one.
	Change *Change
	// DropIn is true when Change is the drop-in file, false when it edits
	// the main file.
	DropIn bool
	// PermitRootLogin is root's effective value, normalised.
	PermitRootLogin string
	// RootRule is true when root gets 'Match User root' /
	// 'AuthenticationMethods publickey' (PermitRootLogin prohibit-password
	// or forced-commands-only, under which sshd refuses
	// keyboard-interactive for root).
	RootRule bool
	// Root says in a sentence how root logs in afterwards.
	Root string
	// Wants are the effective values checked, per user ("" is global),
	// for the checks after writing.
	Wants []Want
}

// ConflictError is a plan that cannot reach the wanted values: another
// line would still win.
type ConflictError struct {
	File      string // the file setup would write
	Conflicts []Conflict
}

func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "even with the otpgate lines in %s, sshd would not use the wanted values:", e.File)
	for _, c := range e.Conflicts {
		b.WriteString("\n  " + c.String())
	}
	b.WriteString("\nfix: remove or change the lines named above (sshd uses the first value it reads, and a matching Match block overrides the global value), then run otpgate setup sshd again")
	return b.String()
}

// PlanSSHD decides the sshd_config change. When the main file includes
// the drop-in's directory (as Debian 12's does, at its top), the
// settings go into the drop-in, whose name sorts first; otherwise they
// are inserted at the top of the main file, before any other keyword.
// The root rule goes after them (at the end of the drop-in, where a
// Match block ends with the file; or at the end of the main file).
// The result is checked with the same parser: if another line would
// still win, PlanSSHD returns a *ConflictError naming it.
func PlanSSHD(files Files, o SSHDOptions) (*SSHDPlan, error) {
	if o.Main == "" {
		o.Main = SSHDConfig
	}
	if o.DropIn == "" {
		o.DropIn = SSHDDropIn
	}
	dirs, err := ParseSSHDConfig(o.Main, files)
	if err != nil {
		return nil, err
	}
	p := &SSHDPlan{}
	prr := normValue("permitrootlogin", o.PermitRootLogin)
	if prr == "" {
		prr = sshdDefaults["permitrootlogin"]
		if d, ok, _ := Effective(dirs, "permitrootlogin", "root"); ok {
			prr = normValue("permitrootlogin", d.Value)
		}
	}
	p.PermitRootLogin = prr

	global := Want{Values: map[string][]string{}}
	for _, s := range sshdSettings {
		global.Values[s.keyword] = []string{s.value}
	}
	p.Wants = []Want{global}
	for _, u := range o.Users {
		if u == "root" || u == "" {
			continue
		}
		w := Want{User: u, Values: map[string][]string{}}
		for _, s := range sshdSettings[1:] { // UsePAM is global only
			w.Values[s.keyword] = []string{s.value}
		}
		p.Wants = append(p.Wants, w)
	}
	var rootWant *Want
	switch prr {
	case "prohibit-password", "forced-commands-only":
		p.RootRule = true
		p.Root = fmt.Sprintf("PermitRootLogin is %s, under which sshd refuses keyboard-interactive for root: root logs in with a key only, without a code ('Match User root' / 'AuthenticationMethods publickey'), which also keeps working when otpgated is down", prr)
		rootWant = &Want{User: "root", Values: map[string][]string{"authenticationmethods": {RootKeyOnly}}}
	case "yes":
		p.Root = "PermitRootLogin is yes: root logs in with a key and a code like everyone else (or with a key only, if a Match block for root says so)"
		rootWant = &Want{User: "root", Values: map[string][]string{
			"authenticationmethods":        {RootKeyOnly, "publickey,keyboard-interactive"},
			"passwordauthentication":       {"no"},
			"kbdinteractiveauthentication": {"yes"},
		}}
	default:
		p.Root = fmt.Sprintf("PermitRootLogin is %s: root cannot log in over SSH; nothing is added for root", prr)
	}
	if rootWant != nil {
		p.Wants = append(p.Wants, *rootWant)
	}
	if len(Conflicts(dirs, p.Wants)) == 0 {
		return p, nil // already configured
	}
	addRoot := p.RootRule && len(Conflicts(dirs, []Want{*rootWant})) > 0

	var target string
	var old []byte
	var newData []byte
	if includes(dirs, o.Main, o.DropIn) {
		target, p.DropIn = o.DropIn, true
		old, err = files.Read(o.DropIn)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if err != nil {
			old = nil
		}
		newData = dropInText(o.Main, prr, addRoot)
	} else {
		target = o.Main
		old, err = files.Read(o.Main)
		if err != nil {
			return nil, err
		}
		newData = editMainSSHD(old, prr, addRoot)
	}
	after, err := ParseSSHDConfig(o.Main, files.withFile(target, newData))
	if err != nil {
		return nil, err
	}
	if c := Conflicts(after, p.Wants); len(c) > 0 {
		return nil, &ConflictError{File: target, Conflicts: c}
	}
	p.Change = &Change{Path: target, Old: old, New: newData, Mode: 0o644}
	return p, nil
}

// includes reports whether main has a global Include line whose pattern
// matches path.
func includes(dirs []Directive, main, path string) bool {
	for _, d := range dirs {
		if d.Keyword == "include" && d.File == main && d.Match == "" {
			if ok, _ := filepath.Match(d.Value, path); ok {
				return true
			}
		}
	}
	return false
}

// settingsText is the block of docs/pam.md's settings.
func settingsText() string {
	var b strings.Builder
	for _, s := range sshdSettings {
		fmt.Fprintf(&b, "%s %s\n", s.name, s.value)
	}
	return b.String()
}

// rootText is root's Match block, with why.
func rootText(prr string) string {
	return fmt.Sprintf(`# root: with PermitRootLogin %s sshd refuses keyboard-interactive for
# root, so root logs in with a key only (no code); this also keeps
# working when otpgated is down. See docs/pam.md, "Root and PermitRootLogin".
Match User root
	AuthenticationMethods %s
`, prr, RootKeyOnly)
}

// dropInText is the drop-in file.
func dropInText(main, prr string, root bool) []byte {
	s := fmt.Sprintf(`# Written by 'otpgate setup sshd' (docs/pam.md): a public key, then a
# verification code through PAM (pam_otpgate in /etc/pam.d/sshd).
# sshd uses the first value it reads for each keyword and %s
# includes this directory before its own lines, so these win. To undo,
# remove this file and restore /etc/pam.d/sshd from its backup.
`, main) + settingsText()
	if root {
		s += "\n" + rootText(prr)
	}
	return []byte(s)
}

// mainBegin marks the block setup inserts into the main file.
const mainBegin = "# otpgate setup sshd: a public key, then a verification code through PAM\n"

// editMainSSHD inserts the settings before the first keyword line of the
// main file (so that they are read first and win), and root's Match
// block at the end.
func editMainSSHD(data []byte, prr string, root bool) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	at := len(lines)
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "#") {
			at = i
			break
		}
	}
	block := mainBegin + "# (docs/pam.md). sshd uses the first value it reads, so these lines win\n# over the same keywords further down.\n" + settingsText() + "\n"
	var b strings.Builder
	for _, l := range lines[:at] {
		b.WriteString(l)
	}
	b.WriteString(block)
	for _, l := range lines[at:] {
		b.WriteString(l)
	}
	s := b.String()
	if root {
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		s += "\n" + rootText(prr)
	}
	return []byte(s)
}

// CheckSSHDT checks `sshd -T` output against one Want: it returns the
// keywords whose value is not acceptable, as "keyword: sshd -T says X,
// want Y".
func CheckSSHDT(w Want, values func(keyword string) string) []string {
	var out []string
	for _, kw := range slices.Sorted(maps.Keys(w.Values)) {
		got := normValue(kw, values(kw))
		if !slices.Contains(w.Values[kw], got) {
			out = append(out, fmt.Sprintf("%s is %q, want %s", kw, got, quoteAll(w.Values[kw])))
		}
	}
	return out
}
