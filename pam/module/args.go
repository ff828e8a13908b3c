package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otpgate/otpgate/internal/protocol"
)

// Defaults for the module arguments.
const (
	defaultTimeout = 10 * time.Second
	maxTimeout     = 5 * time.Minute
)

// options are the parsed module arguments of one pam.d line.
type options struct {
	// socket is otpgated's socket (socket=).
	socket string
	// prompt replaces the text of otpgated's code prompt (prompt=); empty
	// for otpgated's own.
	prompt string
	// failOpen (fail=open) turns "the daemon cannot be reached" into
	// PAM_IGNORE instead of PAM_AUTHINFO_UNAVAIL.
	failOpen bool
	// passwordAndCode (password_and_code, alias forward_pass) has
	// otpgated ask for the password and the code in one prompt; the
	// password it hands back goes on in PAM_AUTHTOK.
	passwordAndCode bool
	// enrollAfterPassword (enroll_after_password) tells otpgated that a
	// password module ahead of this one must have succeeded when
	// PAM_AUTHTOK is set (the administrator made it requisite), so that
	// policy.enroll_on_login may count it as the other factor.
	enrollAfterPassword bool
	// requirePublickey (require_publickey) tells otpgated to refuse the
	// login unless sshd verified a public key for it (SSH_AUTH_INFO_0 in
	// the PAM environment, passed on): for sshd stacks that expect a key
	// first.
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
			if why := badPrompt(value); why != "" {
				warnings = append(warnings, fmt.Sprintf("prompt=%q %s; using otpgated's prompt", value, why))
				continue
			}
			o.prompt = value
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
	return o, warnings
}

// badPrompt says why text cannot be a prompt (the protocol's limits for
// LoginStart.Prompt), or "" when it can.
func badPrompt(text string) string {
	switch {
	case len(text) > protocol.MaxPromptLen:
		return fmt.Sprintf("is longer than %d bytes", protocol.MaxPromptLen)
	case !utf8.ValidString(text):
		return "is not valid UTF-8"
	case strings.ContainsFunc(text, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "contains a control character"
	}
	return ""
}
