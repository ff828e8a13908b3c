package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one otpgate command as its help shows it. The commands table
// is the one list of commands: the overviews of 'otpgate help' and
// 'otpgate help admin' are made from it. A command's flags are defined
// once, where the command registers them with their usage strings; its
// help (otpgate CMD --help, otpgate help CMD) prints them from that flag
// set, so no flag is described by hand.
type command struct {
	name string // "status", "admin list"
	// synopsis follows "otpgate NAME" in the usage lines, one line per
	// form ("[--json]"; admin import has two).
	synopsis []string
	summary  string // one line for the overviews
	asRoot   bool   // root only: "(as root)" on the usage line
	// text is what the command does, after the usage line; the Flags
	// section, when there are flags, follows it.
	text string
}

// Overview groups, in the order 'otpgate help' lists them.
const (
	groupUser  = "Commands for every user:"
	groupRoot  = "Commands for root (run with sudo):"
	groupOther = "Other:"
)

// group is the overview group of c.
func (c *command) group() string {
	switch {
	case c.name == "help" || c.name == "version":
		return groupOther
	case c.asRoot:
		return groupRoot
	}
	return groupUser
}

var commands = []command{
	{name: "enroll", synopsis: []string{"[--no-qr | --qr=png FILE]"}, summary: "set up your authenticator app", text: `
Sets up two-factor authentication for you (the account of your real uid).
otpgated makes a new secret; otpgate shows it as a QR code and as a key to
type, then asks for the code your app shows. Only a correct code activates
the new secret. Then your recovery codes are shown, once.

If you are already enrolled, a current code (or a recovery code) is asked
for first; your old device stops working once the new one is confirmed.

~ in FILE, and in a path typed to save the recovery codes, is your home.
otpgate never writes through a symbolic link in any part of such a path.
`},
	{name: "status", synopsis: []string{"[--json]"}, summary: "show your two-factor status", text: `
Shows whether two-factor authentication is set up for you, whether a code
is required at your login (by the policy, or because you are enrolled),
how many recovery codes are left, failed attempts and any lockout.
`},
	{name: "disable", summary: "turn two-factor authentication off (asks for a code)", text: `
Turns two-factor authentication off for you. A current code (or a recovery
code) is required, so that someone at your unlocked terminal cannot remove
your second factor. Root needs no code.
`},
	{name: "recovery-codes", summary: "replace your recovery codes (asks for a code)", text: `
Makes a new set of recovery codes; the old ones stop working. A current
code is required. The new codes are shown once.
`},
	{name: "forget", summary: "forget your remembered devices (asks nothing)", text: `
Forgets every device remembered for you (policy.remember): your next login
from any address and key asks for a code again. No code is needed, since
this only takes trust away.
`},
	{name: "admin list", synopsis: []string{"[--json]"}, asRoot: true, summary: "all enrolled users", text: `
Lists every user otpgated has a record for: state, whether a code is
required at login (as 'otpgate status' says it), recovery codes left,
failed attempts, lockout, last success.
`},
	{name: "admin show", synopsis: []string{"USER [--json]"}, asRoot: true, summary: "one user's status", text: `
Shows USER's status, as 'otpgate status' shows it to USER.
`},
	{name: "admin reset", synopsis: []string{"USER"}, asRoot: true, summary: "delete USER's enrollment and state", text: `
Deletes USER's enrollment, recovery codes, failure count and lockout.
USER can then enroll again (and, unless a policy requires a code, logs in
without one until then).
`},
	{name: "admin unlock", synopsis: []string{"USER"}, asRoot: true, summary: "clear USER's failed attempts and lockout", text: `
Clears USER's failed attempts and lockout, including a lockout that only
an administrator can lift.
`},
	{name: "admin forget", synopsis: []string{"USER"}, asRoot: true, summary: "forget USER's remembered devices", text: `
Forgets every device remembered for USER (policy.remember): USER's next
login asks for a code again.
`},
	{name: "admin enroll", synopsis: []string{"USER [--force] [--no-qr | --qr=png FILE]"}, asRoot: true,
		summary: "enroll USER at this terminal (to hand over the QR code)", text: `
Runs the enrollment for USER at this terminal, for an administrator who
hands the QR code (or the PNG file) over to the user. The user's app must
show the confirmation code. If USER is already enrolled, USER's current code
is asked for, unless --force replaces the enrollment without one.

~ in FILE, and in a path typed to save the recovery codes, is your own
(root's) home, never USER's; the files stay root's, mode 0600, for you to
hand over. otpgate never writes through a symbolic link in any part of
such a path: a link in USER's home is refused, naming it.
`},
	{name: "admin import", asRoot: true, synopsis: []string{
		"--from google-authenticator (--user USER ... | --all-users) [--replace] [--dry-run] [--config FILE]",
		"--from oath FILE [--replace] [--dry-run] [--config FILE]",
	}, summary: "move existing TOTP secrets into otpgated", text: `
Moves existing TOTP secrets into otpgated, so users keep their app entry.

--from google-authenticator reads ~/.google_authenticator of each USER
(--user may be repeated, or given a comma-separated list), or of every
account of the user database (NSS) that has one (--all-users). The files are read
as root without following symbolic links, and must be regular files owned
by their user. Scratch codes become recovery codes. HOTP (counter-based)
files are refused.

--from oath reads a pam_oath usersfile: lines 'HOTP/T30 USER - HEXSECRET'
(also HOTP/T30/8, HOTP/T60, ...). Counter-based HOTP lines and PINs other
than '-' are refused.

All or nothing: if any file or line is wrong, every problem is listed as
FILE:LINE: what is wrong, and nothing is imported. Users already enrolled
in otpgate are refused unless --replace is given.

Files of any size are read a line at a time, first to check, then again
to import; a file that changed in between stops the import. On a
terminal, a status line on stderr shows how far the import is.
`},
	{name: "doctor", synopsis: []string{"[--json] [--config FILE] [--pam-dir DIR]"}, asRoot: true,
		summary: "check otpgated, PAM, sshd, sudo, admins and the clock", text: `
Inspects this server's otpgate setup and prints, for each problem, what
is wrong, why it matters and the exact fix: otpgated running, its socket,
state directory and configuration; the sshd, sudo, sudo-i and login PAM
stacks and the files they include; the PAM module files; sshd's effective
configuration (sshd -T, and Match blocks for root, admins and required
users); sudo's timestamp_timeout; enrolled administrators and required
users; the system clock. See docs/doctor.md.

Exits 0 when nothing is wrong (notes do not count), 1 when there is an
error or a warning.
`},
	{name: "setup", synopsis: []string{"sshd|sudo [--apply [--force]] [--config FILE] [--pam-dir DIR]"}, asRoot: true,
		summary: "print (or write, with a backup) the changes that make sshd or sudo ask for a code", text: `
Prints the exact changes, as a unified diff per file, that make sshd or
sudo ask for a verification code (docs/pam.md), and what --apply checks.
Without --apply nothing is changed.

setup sshd: UsePAM yes, KbdInteractiveAuthentication yes,
PasswordAuthentication no and AuthenticationMethods
publickey,keyboard-interactive, in /etc/ssh/sshd_config.d/00-otpgate.conf
when /etc/ssh/sshd_config includes that directory first (Debian 12), else
at the top of /etc/ssh/sshd_config; with PermitRootLogin prohibit-password
(the default) also 'Match User root' / 'AuthenticationMethods publickey'
(root: key only). In /etc/pam.d/sshd, '@include common-auth' becomes
'auth required pam_otpgate.so' and 'auth required pam_permit.so'.
setup sudo: 'auth required pam_otpgate.so' right after '@include
common-auth' in /etc/pam.d/sudo and /etc/pam.d/sudo-i.

--apply (as root) first refuses, changing nothing, when otpgated does not
answer, when pam_otpgate.so or its Go library is missing or unsafe, or when
the administrator running it (SUDO_USER, else root) is not enrolled and
either the policy requires a code from them, the console
(/etc/pam.d/login) uses pam_otpgate, or root's password is locked. It then
writes each file through a temporary file and rename, after a backup
FILE.otpgate-backup-YYYYMMDDThhmmss; runs sshd -t and sshd -T (also for
root and the administrator) and otpgate doctor's PAM checks; and restores
every file if one fails, naming the line that wins. setup sshd writes
sshd's files first, reloads the running sshd and asks it from outside
which methods it offers before it writes /etc/pam.d/sshd; a failure
restores the files and reloads sshd again. A second run says "already
configured" and writes nothing.

Exits 0 when the changes are printed, written or not needed; 1 when it
refuses or a check after writing fails (the files are then restored).
`},
	{name: "help", synopsis: []string{"[COMMAND]"}, summary: "this text, or a command's", text: `
Prints the overview of otpgate's commands, or the help of COMMAND (the
same as 'otpgate COMMAND --help').
`},
	{name: "version", summary: "print the version", text: `
Prints otpgate's version and exits.
`},
}

// lookupCommand returns the command named name ("status", "admin list"),
// or nil.
func lookupCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// socketUsage is the usage of the global --socket flag.
const socketUsage = "the `PATH` of otpgated's socket (default $OTPGATE_SOCKET, else /run/otpgate/otpgated.sock)"

const exitCodesText = `Exit codes:
    0  success
    1  failure: wrong code, locked, refused by otpgated, bad input
    2  usage error
    3  otpgated is not reachable: nothing answers at the socket
    4  permission denied (admin commands need root)
  130  interrupted (Ctrl-C)
`

// printOverview writes 'otpgate help' (prefix "") or 'otpgate help admin'
// (prefix "admin "): the commands whose name starts with prefix, one line
// per form, with their summaries.
func printOverview(w io.Writer, prefix string) {
	if prefix == "" {
		fmt.Fprint(w, "Usage: otpgate [--socket PATH] COMMAND [ARGS]\n\nTwo-factor authentication (TOTP) for this server, managed by otpgated.\n")
	} else {
		fmt.Fprintf(w, "Usage: otpgate %sCOMMAND [ARGS]   (as root)\n", prefix)
	}
	group := ""
	for i := range commands {
		c := &commands[i]
		if !strings.HasPrefix(c.name, prefix) {
			continue
		}
		if prefix == "" && c.group() != group {
			group = c.group()
			fmt.Fprintf(w, "\n%s\n", group)
		} else if prefix != "" && group == "" {
			group = prefix
			fmt.Fprintln(w)
		}
		forms := c.synopsis
		if len(forms) == 0 {
			forms = []string{""}
		}
		for j, form := range forms {
			line := strings.TrimSpace(strings.TrimPrefix(c.name, prefix) + " " + form)
			switch {
			case j > 0:
				fmt.Fprintf(w, "  %s\n", line)
			case len(line) <= 32:
				fmt.Fprintf(w, "  %-32s   %s\n", line, c.summary)
			default:
				fmt.Fprintf(w, "  %s\n  %-32s   %s\n", line, "", c.summary)
			}
		}
	}
	if prefix != "" {
		fmt.Fprintf(w, "\nRun 'otpgate help %sCOMMAND' for details.\n", prefix)
		return
	}
	fmt.Fprintf(w, "\nGlobal flag:\n")
	printFlags(w, []*flag.Flag{{Name: "socket", Usage: socketUsage}})
	fmt.Fprintf(w, "\n%s", exitCodesText)
}

// printHelp writes the help of c: its usage lines, what it does and the
// flags of fs, the flag set the command parses its arguments with.
func printHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	root := ""
	if c.asRoot {
		root = "   (as root)"
	}
	forms := c.synopsis
	if len(forms) == 0 {
		forms = []string{""}
	}
	if len(forms) == 1 {
		fmt.Fprintf(w, "Usage: %s%s\n", strings.TrimSpace("otpgate "+c.name+" "+forms[0]), root)
	} else {
		fmt.Fprintf(w, "Usage%s:\n", strings.TrimRight(strings.Replace(root, "   ", " ", 1), " "))
		for _, form := range forms {
			fmt.Fprintf(w, "  otpgate %s %s\n", c.name, form)
		}
	}
	fmt.Fprint(w, c.text)
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "socket" { // global: 'otpgate help' shows it
			flags = append(flags, f)
		}
	})
	if len(flags) > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		printFlags(w, flags)
	}
}

// helpWidth is the width help text is wrapped to.
const helpWidth = 78

// printFlags writes each flag: its name and the `NAME` of its value from
// the usage string, then the usage, with the default unless zero, wrapped
// to helpWidth in a column of its own.
func printFlags(w io.Writer, flags []*flag.Flag) {
	names := make([]string, len(flags))
	col := 0
	for i, f := range flags {
		names[i] = "--" + f.Name
		if name, _ := flag.UnquoteUsage(f); name != "" {
			names[i] += " " + name
		}
		col = max(col, len(names[i]))
	}
	col += 2 + 3 // indent, gap
	for i, f := range flags {
		_, usage := flag.UnquoteUsage(f)
		if f.DefValue != "" && f.DefValue != "false" && f.Name != "socket" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		for j, line := range wrap(usage, helpWidth-col) {
			left := ""
			if j == 0 {
				left = "  " + names[i]
			}
			fmt.Fprintf(w, "%-*s%s\n", col, left, line)
		}
	}
}

// wrap breaks text into lines of at most width bytes at spaces (a longer
// word gets a line of its own).
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	return append(lines, line)
}
