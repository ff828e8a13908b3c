package main

import (
	"strings"

	"github.com/msteinert/pam/v2"
)

// The PAM codes that end a login for good depend on the application, since
// the usual ones make the two tested applications ask again:
//
//   - sudo treats PAM_MAXTRIES and PAM_AUTHINFO_UNAVAIL like a wrong
//     password and calls pam_authenticate again, up to passwd_tries times; it
//     stops on a code outside PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL,
//     PAM_MAXTRIES and PAM_PERM_DENIED, after one line of its own ("sudo: PAM
//     authentication error: ..."). Under sudo the code is
//     PAM_CRED_INSUFFICIENT.
//   - sshd's keyboard-interactive child (auth-pam.c, sshpam_thread) passes on
//     only PAM_ACCT_EXPIRED and PAM_MAXTRIES; every other failure reaches
//     the monitor as PAM_AUTH_ERR, after which the client may start
//     keyboard-interactive again (ssh's NumberOfPasswordPrompts, 3), and
//     each attempt runs the stack and shows the words again. PAM_MAXTRIES
//     makes sshd turn keyboard-interactive and password authentication off
//     for the connection (sshpam_set_maxtries_reached); with
//     "AuthenticationMethods publickey,keyboard-interactive" nothing is left
//     to offer, sshd answers with an empty list of methods (auth2.c,
//     authmethods_get), and the OpenSSH client reads an empty list as "try
//     every method I know" (sshconnect2.c, authmethod_get): it asks for a
//     password that sshd then refuses. PAM_ACCT_EXPIRED instead makes sshd
//     refuse to start PAM for the rest of the connection (sshpam_init_ctx
//     checks sshpam_account_status) while still offering
//     keyboard-interactive: the client's further attempts fail at once,
//     without a word or a prompt, until it gives up ("Permission denied
//     (keyboard-interactive).") or sshd 9.2p1's monitor ends the connection
//     at the third attempt ("Connection closed by ..."; monitor.c,
//     mm_answer_pam_init_ctx allows a new attempt only after a started
//     one). Under sshd the code is PAM_ACCT_EXPIRED. As
//     both verdicts come with words to show, sshd logs the code at debug
//     level only (without words it would log "PAM: User account has
//     expired").
//
// Everywhere else (login, pamtester, screen lockers) the codes are PAM's
// own: PAM_MAXTRIES for refused, PAM_AUTHINFO_UNAVAIL for unavailable.

// refusedStatus is the PAM code for the refused verdict (a lockout, an
// enrollment that must come first): the one that makes the application
// stop asking, so that the person reads otpgated's reason once.
func refusedStatus(app string) pam.Error {
	return finalStatus(app, pam.ErrMaxtries)
}

// unavailableStatus is the PAM code for a login that fails closed because
// otpgated could not decide: said once, like refused.
func unavailableStatus(app string) pam.Error {
	return finalStatus(app, pam.ErrAuthinfoUnavail)
}

// finalStatus is the code that ends a login in app without asking again:
// the application's own (see above), else code.
func finalStatus(app string, code pam.Error) pam.Error {
	switch program(app) {
	case "sudo", "sudoedit":
		return pam.ErrCredInsufficient
	case "sshd", "sshd-session":
		// sshd-session is the per-connection sshd from OpenSSH 9.8 on,
		// with the same keyboard-interactive child.
		return pam.ErrAcctExpired
	}
	return code
}

// program is the file name of app, the running program's path.
func program(app string) string {
	return app[strings.LastIndexByte(app, '/')+1:]
}
