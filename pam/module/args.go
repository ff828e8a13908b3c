package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
)

// Defaults for the module arguments.
const (
	defaultPrompt         = "Verification code: "
	defaultPasswordPrompt = "Password and verification code: "
	defaultTimeout        = 10 * time.Second
	maxTimeout            = 5 * time.Minute
)

// options are the parsed module arguments of one pam.d line.
type options struct {
	// socket is otpgated's socket (socket=).
	socket string
	// prompt is the code prompt (prompt=); in password_and_code mode the
	// default is defaultPasswordPrompt.
	prompt string
	// failOpen (fail=open) turns "the daemon cannot be reached" into
	// PAM_IGNORE instead of PAM_AUTHINFO_UNAVAIL.
	failOpen bool
	// passwordAndCode (password_and_code, alias forward_pass) asks for the
	// password and the code in one prompt and hands the password on in
	// PAM_AUTHTOK.
	passwordAndCode bool
	// enrollAfterPassword (enroll_after_password) tells otpgated that a
	// password module ahead of this one must have succeeded when
	// PAM_AUTHTOK is set (the administrator made it requisite), so that
	// policy.enroll_on_login may count it as the other factor.
	enrollAfterPassword bool
	// requirePublickey (require_publickey) refuses the login unless sshd
	// verified a public key for it (SSH_AUTH_INFO_0 in the PAM
	// environment): for sshd stacks that expect a key first.
	requirePublickey bool
	// debug logs each decision to syslog (never a code).
	debug bool
	// timeout bounds each daemon round trip (timeout=, seconds).
	timeout time.Duration
}

// parseArgs parses the module arguments. Unknown or malformed arguments do
// not stop authentication; they are returned as warnings for syslog and the
// setting keeps its safe default (a malformed fail= value stays closed).
func parseArgs(args []string) (options, []string) {
	o := options{socket: protocol.DefaultSocket, timeout: defaultTimeout}
	var warnings []string
	promptSet := false
	for _, arg := range args {
		name, value, hasValue := strings.Cut(arg, "=")
		switch {
		case name == "socket" && hasValue:
			if !strings.HasPrefix(value, "/") {
				warnings = append(warnings, fmt.Sprintf("socket=%q is not an absolute path; using %s", value, o.socket))
				continue
			}
			o.socket = value
		case name == "prompt" && hasValue:
			o.prompt = value
			promptSet = true
		case name == "fail" && hasValue:
			switch value {
			case "closed":
				o.failOpen = false
			case "open":
				o.failOpen = true
			default:
				o.failOpen = false
				warnings = append(warnings, fmt.Sprintf("fail=%q is neither open nor closed; failing closed", value))
			}
		case (name == "password_and_code" || name == "forward_pass") && !hasValue:
			o.passwordAndCode = true
		case name == "debug" && !hasValue:
			o.debug = true
		case name == "enroll_after_password" && !hasValue:
			o.enrollAfterPassword = true
		case name == "require_publickey" && !hasValue:
			o.requirePublickey = true
		case name == "timeout" && hasValue:
			secs, err := strconv.Atoi(value)
			if err != nil || secs <= 0 || time.Duration(secs)*time.Second > maxTimeout {
				warnings = append(warnings, fmt.Sprintf("timeout=%q is not a number of seconds between 1 and %d; using %d",
					value, int(maxTimeout/time.Second), int(o.timeout/time.Second)))
				continue
			}
			o.timeout = time.Duration(secs) * time.Second
		case name == "golib" && hasValue:
			// Read by the C loader (pam/loader.c), which chose this library.
		default:
			warnings = append(warnings, fmt.Sprintf("unknown argument %q ignored", arg))
		}
	}
	if !promptSet {
		o.prompt = defaultPrompt
		if o.passwordAndCode {
			o.prompt = defaultPasswordPrompt
		}
	}
	return o, warnings
}
