package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os/user"
	"strings"
)

const exitCodesText = `Exit codes:
    0  success
    1  failure: wrong code, locked, refused by otpgated, bad input
    2  usage error
    3  otpgated is not reachable: nothing answers at the socket
    4  permission denied (admin commands need root)
  130  interrupted (Ctrl-C)
`

// usages holds the hand-written usage text of each command.
var usages = map[string]string{
	"": `Usage: otpgate [--socket PATH] COMMAND [ARGS]

Two-factor authentication (TOTP) for this server, managed by otpgated.

Commands for every user:
  enroll [--no-qr] [--qr=png FILE]   set up your authenticator app
  status [--json]                    show your two-factor status
  disable                            turn two-factor authentication off (asks for a code)
  recovery-codes                     replace your recovery codes (asks for a code)
  forget                             forget your remembered devices (asks nothing)

Commands for root (run with sudo):
  admin list [--json]                all enrolled users
  admin show USER [--json]           one user's status
  admin reset USER                   delete USER's enrollment and state
  admin unlock USER                  clear USER's failed attempts and lockout
  admin forget USER                  forget USER's remembered devices
  admin enroll USER [--force]        enroll USER at this terminal (to hand over the QR code)
  admin import --from google-authenticator (--user USER ... | --all-users) [--replace] [--dry-run]
  admin import --from oath FILE [--replace] [--dry-run]
  doctor [--json] [--config FILE]    check otpgated, PAM, sshd, sudo, admins and the clock
  setup sshd|sudo [--apply]          print (or write, with a backup) the sshd_config and
                                     /etc/pam.d changes that make sshd or sudo ask for a code

Other:
  help [COMMAND]                     this text, or a command's
  version                            print the version

Global flag:
  --socket PATH   otpgated's socket (default $OTPGATE_SOCKET, else /run/otpgate/otpgated.sock)

` + exitCodesText,
	"enroll": `Usage: otpgate enroll [--no-qr | --qr=png FILE]

Sets up two-factor authentication for you (the account of your real uid).
otpgated makes a new secret; otpgate shows it as a QR code and as a key to
type, then asks for the code your app shows. Only a correct code activates
the new secret. Then your recovery codes are shown, once.

If you are already enrolled, a current code (or a recovery code) is asked
for first; your old device stops working once the new one is confirmed.

Flags:
  --no-qr          do not draw the QR code; print only the key and the URI
  --qr=png FILE    write the QR code to FILE (a new file, mode 0600) instead
                   of drawing it; FILE contains the secret: delete it after use

~ in FILE, and in a path typed to save the recovery codes, is your home.
otpgate never writes through a symbolic link in any part of such a path.
`,
	"version": `Usage: otpgate version

Print otpgate's version and exit.
`,
	"status": `Usage: otpgate status [--json]

Shows whether two-factor authentication is set up for you, how many
recovery codes are left, failed attempts and any lockout.

Flags:
  --json   print the status as JSON (the protocol's UserStatus)
`,
	"disable": `Usage: otpgate disable

Turns two-factor authentication off for you. A current code (or a recovery
code) is required, so that someone at your unlocked terminal cannot remove
your second factor. Root needs no code.
`,
	"recovery-codes": `Usage: otpgate recovery-codes

Makes a new set of recovery codes; the old ones stop working. A current
code is required. The new codes are shown once.
`,
	"doctor": `Usage: otpgate doctor [--json] [--config FILE] [--pam-dir DIR]   (as root)

Inspects this server's otpgate setup and prints, for each problem, what
is wrong, why it matters and the exact fix: otpgated running, its socket,
state directory and configuration; the sshd, sudo, sudo-i and login PAM
stacks and the files they include; the PAM module files; sshd's effective
configuration (sshd -T, and Match blocks for root, admins and required
users); sudo's timestamp_timeout; enrolled administrators and required
users; the system clock. See docs/doctor.md.

Exits 0 when nothing is wrong (notes do not count), 1 when there is an
error or a warning.

Flags:
  --json           print the report as JSON
  --config FILE    otpgated's configuration (default /etc/otpgate/config.toml)
  --pam-dir DIR    the PAM module directory (default: where pam_unix.so is)
`,
	"setup": `Usage: otpgate setup sshd|sudo [--apply [--force]] [--config FILE] [--pam-dir DIR]

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
every file if one fails, naming the line that wins. A second run says
"already configured" and writes nothing. It does not reload sshd.

Flags:
  --apply          write the changes (root only)
  --force          DANGEROUS: apply although the administrator is not
                   enrolled and has no console way back in; only with
                   another way in (an open root shell you keep, a console)
  --config FILE    otpgated's configuration, for its socket (default
                   /etc/otpgate/config.toml)
  --pam-dir DIR    the PAM module directory (default: where pam_unix.so is)

Exits 0 when the changes are printed, written or not needed; 1 when it
refuses or a check after writing fails (the files are then restored).
`,
	"admin": `Usage: otpgate admin COMMAND [ARGS]   (as root)

  list [--json]                      all enrolled users
  show USER [--json]                 one user's status
  reset USER                         delete USER's enrollment and state
  unlock USER                        clear USER's failed attempts and lockout
  forget USER                        forget USER's remembered devices
  enroll USER [--force] [--no-qr | --qr=png FILE]
                                     enroll USER at this terminal
  import --from google-authenticator (--user USER ... | --all-users) [--replace] [--dry-run]
  import --from oath FILE [--replace] [--dry-run]

Run 'otpgate help admin COMMAND' for details.
`,
	"admin list": `Usage: otpgate admin list [--json]

Lists every user otpgated has a record for: state, whether a code is
required, recovery codes left, failed attempts, lockout, last success.
`,
	"admin show": `Usage: otpgate admin show USER [--json]

Shows USER's status, as 'otpgate status' shows it to USER.
`,
	"admin reset": `Usage: otpgate admin reset USER

Deletes USER's enrollment, recovery codes, failure count and lockout.
USER can then enroll again (and, unless a policy requires a code, logs in
without one until then).
`,
	"admin unlock": `Usage: otpgate admin unlock USER

Clears USER's failed attempts and lockout, including a lockout that only
an administrator can lift.
`,
	"admin enroll": `Usage: otpgate admin enroll USER [--force] [--no-qr | --qr=png FILE]

Runs the enrollment for USER at this terminal, for an administrator who
hands the QR code (or the PNG file) over to the user. The user's app must
show the confirmation code. If USER is already enrolled, USER's current code
is asked for, unless --force replaces the enrollment without one.

~ in FILE, and in a path typed to save the recovery codes, is your own
(root's) home, never USER's; the files stay root's, mode 0600, for you to
hand over. otpgate never writes through a symbolic link in any part of
such a path: a link in USER's home is refused, naming it.
`,
	"admin import": `Usage:
  otpgate admin import --from google-authenticator (--user USER ... | --all-users) [--replace] [--dry-run]
  otpgate admin import --from oath FILE [--replace] [--dry-run]

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

Flags:
  --from SOURCE    google-authenticator or oath
  --user USER      import this user (repeatable; google-authenticator)
  --all-users      every account with a ~/.google_authenticator
  --replace        overwrite existing otpgate enrollments
  --dry-run        check everything and print what would be imported
  --config FILE    otpgated's configuration, to compare settings with
                   (default /etc/otpgate/config.toml)
`,
}

// printUsage writes the usage of cmd ("" for the top level).
func (a *app) printUsage(w io.Writer, cmd string) {
	fmt.Fprint(w, usages[cmd])
}

// newFlagSet returns a flag set that reports errors to the caller instead
// of printing or exiting.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// flagError turns a flag parsing error into a usage error, or prints the
// usage for -h/--help.
func (a *app) flagError(cmd string, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		a.printUsage(a.stdout, cmd)
		return nil
	}
	return usagef(cmd, "%v", err)
}

// parseArgs parses args with fs, allowing flags after positional
// arguments ("admin show alice --json"); "--" ends the flags. It returns
// the positional arguments, or (nil, nil) after printing help.
func (a *app) parseArgs(cmd string, fs *flag.FlagSet, args []string) ([]string, bool, error) {
	fs.StringVar(&a.socketFlag, "socket", a.socketFlag, "")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false, a.flagError(cmd, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, true, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), true, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// wantArgs checks the number of positional arguments.
func wantArgs(cmd string, pos []string, names ...string) error {
	if len(pos) == len(names) {
		return nil
	}
	if len(names) == 0 {
		return usagef(cmd, "%s takes no arguments, got %q", cmd, strings.Join(pos, " "))
	}
	if len(pos) < len(names) {
		return usagef(cmd, "%s needs %s", cmd, strings.Join(names, " "))
	}
	return usagef(cmd, "too many arguments for %s: %q", cmd, strings.Join(pos[len(names):], " "))
}

// selfCommand parses the flags of a command that acts on the caller's own
// account and takes no arguments, and returns that account. A nil account
// with a nil error means help was printed.
func (a *app) selfCommand(cmd string, fs *flag.FlagSet, args []string) (*user.User, error) {
	pos, ok, err := a.parseArgs(cmd, fs, args)
	if !ok || err != nil {
		return nil, err
	}
	if err := wantArgs(cmd, pos); err != nil {
		return nil, err
	}
	return a.self()
}
