// Package setup computes and applies the configuration changes of
// `otpgate setup sshd` and `otpgate setup sudo` (docs/pam.md): the
// sshd_config settings for a public key followed by a code, the
// /etc/pam.d/sshd stack with pam_otpgate in place of common-auth, and
// pam_otpgate after common-auth in /etc/pam.d/sudo and sudo-i.
//
// Planning is pure: it works on file contents given by a [Files] and
// returns [Change]s, each with its unified diff, and the reasons it
// refuses (a file that does not look as expected, or a line elsewhere
// that would still win). [Apply] then writes the changes with a backup
// of each file and an atomic replace, and the result can be rolled back
// if the checks after writing fail.
//
// [Session] is one run on the live system: [Session.Plan] decides the
// changes, [Session.Guards] runs the checks before writing and returns
// typed results ([Guard]; [Overridable] says whether --force may go
// ahead), and [Session.Write] writes sshd_config first, reloads the
// running sshd and asks it from outside which methods it offers ([SSHD]),
// and only then the PAM stack, restoring every file when a check fails
// ([CheckError]).
//
// sshd uses the first value it reads for each keyword, and a matching
// Match block overrides the global value (the first matching block
// wins). [ParseSSHDConfig] follows Include lines the way OpenSSH 9.2
// does (a Match block inside an included file ends at the end of that
// file) so that [Effective] can say which file and line sets a value.
package setup
