package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/msteinert/pam/v2"

	"github.com/otpgate/otpgate/internal/protocol"
)

// maxMessage bounds a daemon message shown to the user.
const maxMessage = 512

// errUnreachable marks failures to get any answer from otpgated (no socket,
// refused, timed out, garbled reply): the only failures fail=open relaxes.
var errUnreachable = errors.New("pam_otpgate: otpgated unreachable")

// errRemembered is checkDecision's result for otpgated's "remembered"
// answer: the only way to PAM_SUCCESS without a code.
var errRemembered = errors.New("pam_otpgate: remembered device")

// errUnexpected marks replies the module does not understand.
var errUnexpected = errors.New("pam_otpgate: unexpected reply from otpgated")

// passwordGiven reports whether a module ahead of this one stored a
// password in PAM_AUTHTOK. With enroll_after_password the administrator
// vouches that this module is reached only if that password was right
// (the password module is requisite); doctor checks the stack.
func passwordGiven(s session) bool {
	tok, err := s.GetItem(pam.Authtok)
	return err == nil && tok != ""
}

// session is what authentication needs from the PAM transaction. The cgo
// export wraps the msteinert/pam transaction with the two methods that must
// keep secrets out of Go strings.
type session interface {
	GetUser(prompt string) (string, error)
	GetItem(pam.Item) (string, error)
	GetEnv(name string) string
	StartStringConv(style pam.Style, prompt string) (pam.StringConvResponse, error)
	// promptSecret asks prompt with echo off. The caller wipes the answer.
	promptSecret(prompt string) ([]byte, error)
	// setAuthtok sets PAM_AUTHTOK for the modules stacked after this one.
	setAuthtok(tok []byte) error
}

// otpgateModule is the pam.ModuleHandler of pam_otpgate. Only Authenticate
// is ever called: the C loader answers every other PAM function itself
// without loading Go, and these methods give the same answers.
type otpgateModule struct{}

var pamModuleHandler pam.ModuleHandler = otpgateModule{}

// Authenticate asks otpgated whether mt's user needs a code, asks for it and
// has it verified. mt must implement session (the cgo export's transaction).
func (otpgateModule) Authenticate(mt pam.ModuleTransaction, flags pam.Flags, args []string) error {
	s, ok := mt.(session)
	if !ok {
		return fmt.Errorf("%w: pam_otpgate: unsupported transaction type %T", pam.ErrAuthinfoUnavail, mt)
	}
	return authenticate(s, args)
}

// SetCred succeeds: PAM_IGNORE here turns into PAM_PERM_DENIED when no other
// auth module set credentials.
func (otpgateModule) SetCred(pam.ModuleTransaction, pam.Flags, []string) error { return nil }

// AcctMgmt takes no part in account management.
func (otpgateModule) AcctMgmt(pam.ModuleTransaction, pam.Flags, []string) error {
	return pam.ErrIgnore
}

// ChangeAuthTok takes no part in password changes.
func (otpgateModule) ChangeAuthTok(pam.ModuleTransaction, pam.Flags, []string) error {
	return pam.ErrIgnore
}

// OpenSession takes no part in sessions.
func (otpgateModule) OpenSession(pam.ModuleTransaction, pam.Flags, []string) error {
	return pam.ErrIgnore
}

// CloseSession takes no part in sessions.
func (otpgateModule) CloseSession(pam.ModuleTransaction, pam.Flags, []string) error {
	return pam.ErrIgnore
}

// authenticate runs one authentication. It returns nil (PAM_SUCCESS) only
// after otpgated accepted a code, or when otpgated's check answered
// "remembered" (its own audited decision); every other path returns an error that
// pamStatus maps to a failure or, for the daemon's own "no code needed"
// answers, to PAM_IGNORE.
func authenticate(s session, args []string) error {
	stress()
	opts, warnings := parseArgs(args)
	lg := &logger{debug: opts.debug}
	for _, w := range warnings {
		lg.warning("%s", w)
	}

	user, err := s.GetUser("login: ")
	if err != nil || user == "" {
		lg.error("cannot get the user name: %v", err)
		return fmt.Errorf("%w: pam_otpgate: no user: %w", pam.ErrAuthinfoUnavail, err)
	}
	lg.user = user
	base := protocol.Request{User: user, AuthInfo: s.GetEnv("SSH_AUTH_INFO_0")}
	for _, it := range []struct {
		item pam.Item
		dst  *string
	}{{pam.Service, &base.Service}, {pam.Rhost, &base.RHost}, {pam.Tty, &base.TTY}} {
		if *it.dst, err = s.GetItem(it.item); err != nil {
			lg.error("cannot read PAM item %d: %v", it.item, err)
			return fmt.Errorf("%w: pam_otpgate: pam item %d: %w", pam.ErrAuthinfoUnavail, it.item, err)
		}
	}
	lg.service, lg.rhost = base.Service, base.RHost
	if opts.requirePublickey {
		// Before otpgated is asked anything: no answer of it (not
		// enrolled, exempt, remembered) and no fail=open may let a login
		// through that sshd did not start with a verified key.
		if why, ok := publickeyVerified(base.AuthInfo); !ok {
			lg.error("require_publickey: %s; denying", why)
			return fmt.Errorf("%w: pam_otpgate: require_publickey: %s", pam.ErrAuth, why)
		}
	}
	if opts.enrollAfterPassword && passwordGiven(s) {
		base.PriorFactor = protocol.PriorFactorPassword
	}

	// DoBlocking, not Do: this goroutine runs on the PAM application's
	// thread, which should block in the kernel rather than park on the
	// runtime's network poller (see protocol.Client.DoBlocking).
	client := &protocol.Client{Socket: opts.socket, Timeout: opts.timeout}

	check := base
	check.Op = protocol.OpCheck
	resp, err := client.DoBlocking(&check)
	digits, msg, result := checkDecision(resp, err)
	lg.debugf("check: %s", describe(resp, err))
	if errors.Is(result, errEnrollOffered) {
		return enrollAtLogin(s, lg, opts, client, base, resp.Enroll)
	}
	if errors.Is(result, errRemembered) {
		// otpgated's explicit, audited decision: this user gave a code
		// from this address with this verified key within
		// policy.remember.
		return nil
	}
	if result != nil {
		return finish(s, lg, opts, "check", msg, result)
	}

	answer, err := s.promptSecret(opts.prompt)
	defer wipe(answer)
	if err != nil {
		lg.debugf("conversation failed: %v", err)
		return fmt.Errorf("%w: pam_otpgate: conversation: %w", pam.ErrConv, err)
	}
	code := answer
	if opts.passwordAndCode {
		var password []byte
		password, code = splitPasswordAndCode(answer, digits)
		if err := s.setAuthtok(password); err != nil {
			lg.error("cannot set PAM_AUTHTOK: %v", err)
			return fmt.Errorf("%w: pam_otpgate: set authtok: %w", pam.ErrAuthinfoUnavail, err)
		}
	}

	verify := base
	verify.Op = protocol.OpVerify
	// The request must carry the code as a string, which Go cannot wipe;
	// it lives only until the next garbage collection.
	verify.Code = string(code)
	resp, err = client.DoBlocking(&verify)
	verify.Code = ""
	info, msg, result := verifyDecision(resp, err)
	lg.debugf("verify: %s", describe(resp, err))
	if result != nil {
		return finish(s, lg, opts, "verify", msg, result)
	}
	if info != "" {
		showMessage(s, pam.TextInfo, info)
	}
	return nil
}

// finish shows msg and returns result, or PAM_IGNORE when the daemon could
// not be reached and this line says fail=open.
func finish(s session, lg *logger, opts options, step, msg string, result error) error {
	if errors.Is(result, errUnreachable) {
		if opts.failOpen {
			lg.warning("%s: %v; fail=open: continuing WITHOUT a verification code", step, result)
			return pam.ErrIgnore
		}
		lg.error("%s: %v; denying (fail=closed)", step, result)
	} else if errors.Is(result, errUnexpected) {
		lg.error("%s: %v; denying", step, result)
	}
	if msg != "" {
		showMessage(s, pam.ErrorMsg, msg)
	}
	return result
}

// checkDecision maps the reply to OpCheck. A nil result means "ask for a
// code of digits digits"; otherwise msg is for the user and result is the
// error to return.
func checkDecision(resp *protocol.Response, err error) (digits int, msg string, result error) {
	if err != nil {
		return 0, replyErrorMessage(err), replyError(err)
	}
	if resp == nil || resp.Verify == nil {
		return 0, "", fmt.Errorf("%w: %w: check reply without a result", pam.ErrAuthinfoUnavail, errUnexpected)
	}
	v := resp.Verify
	switch v.Outcome {
	case protocol.OutcomeCodeRequired:
		if v.Digits < 1 || v.Digits > 10 {
			return 0, "", fmt.Errorf("%w: %w: check reply with %d digits", pam.ErrAuthinfoUnavail, errUnexpected, v.Digits)
		}
		return v.Digits, "", nil
	case protocol.OutcomeNotEnrolled, protocol.OutcomeExempt:
		return 0, "", pam.ErrIgnore
	case protocol.OutcomeRemembered:
		return 0, "", errRemembered
	case protocol.OutcomeEnrollOffered:
		return 0, "", errEnrollOffered
	case protocol.OutcomeEnrollRequired, protocol.OutcomeLocked:
		return 0, sanitize(v.Message), fmt.Errorf("%w: pam_otpgate: %s", pam.ErrAuth, v.Outcome)
	}
	return 0, "", fmt.Errorf("%w: %w: check outcome %q", pam.ErrAuthinfoUnavail, errUnexpected, v.Outcome)
}

// verifyDecision maps the reply to OpVerify. A nil result means the code
// was accepted; info is then an optional note for the user. Otherwise msg
// is for the user and result is the error to return.
func verifyDecision(resp *protocol.Response, err error) (info, msg string, result error) {
	if err != nil {
		return "", replyErrorMessage(err), replyError(err)
	}
	if resp == nil || resp.Verify == nil {
		return "", "", fmt.Errorf("%w: %w: verify reply without a result", pam.ErrAuthinfoUnavail, errUnexpected)
	}
	v := resp.Verify
	switch v.Outcome {
	case protocol.OutcomeAccept:
		if msg := sanitize(v.Message); msg != "" {
			return msg, "", nil
		}
		if v.Recovery {
			return fmt.Sprintf("Recovery code accepted; %d left.", v.RecoveryRemaining), "", nil
		}
		return "", "", nil
	case protocol.OutcomeReject, protocol.OutcomeReplay, protocol.OutcomeLocked:
		return "", sanitize(v.Message), fmt.Errorf("%w: pam_otpgate: %s", pam.ErrAuth, v.Outcome)
	case protocol.OutcomeNotEnrolled, protocol.OutcomeExempt:
		return "", "", pam.ErrIgnore
	}
	return "", "", fmt.Errorf("%w: %w: verify outcome %q", pam.ErrAuthinfoUnavail, errUnexpected, v.Outcome)
}

// replyError maps a failed round trip. Error replies the daemon did give
// (permission denied, internal error, ...) are denials, never "unreachable".
func replyError(err error) error {
	var perr *protocol.Error
	switch {
	case errors.As(err, &perr) && (perr.Code == protocol.ErrLocked || perr.Code == protocol.ErrInvalidCode):
		return fmt.Errorf("%w: pam_otpgate: %w", pam.ErrAuth, err)
	case errors.As(err, &perr):
		return fmt.Errorf("%w: pam_otpgate: otpgated refused: %w", pam.ErrAuthinfoUnavail, err)
	case errors.Is(err, protocol.ErrUnavailable):
		return fmt.Errorf("%w: %w: %w", pam.ErrAuthinfoUnavail, errUnreachable, err)
	}
	return fmt.Errorf("%w: %w: %w", pam.ErrAuthinfoUnavail, errUnexpected, err)
}

// replyErrorMessage is what the user sees for a failed round trip: the
// daemon's own message for a lockout, nothing otherwise.
func replyErrorMessage(err error) string {
	var perr *protocol.Error
	if errors.As(err, &perr) && perr.Code == protocol.ErrLocked {
		return sanitize(perr.Message)
	}
	return ""
}

// pamStatus is the PAM return code for authenticate's result: PAM_SUCCESS
// only for nil; a PAM error code carried by err; PAM_AUTHINFO_UNAVAIL for
// anything else.
func pamStatus(err error) int {
	if err == nil {
		return 0
	}
	var perr pam.Error
	if errors.As(err, &perr) && perr > 0 {
		return int(perr)
	}
	return int(pam.ErrAuthinfoUnavail)
}

// splitPasswordAndCode splits "password" + "code" typed in one answer: the
// last digits bytes are the code. Both results alias answer (the caller
// wipes it). A too-short answer is all code and no password.
func splitPasswordAndCode(answer []byte, digits int) (password, code []byte) {
	if len(answer) <= digits {
		return answer[:0:0], answer
	}
	cut := len(answer) - digits
	return answer[:cut:cut], answer[cut:]
}

// sanitize makes a daemon message safe to show on a terminal: control
// characters are dropped and the length is bounded.
func sanitize(msg string) string {
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, msg)
	if len(msg) > maxMessage {
		msg = strings.ToValidUTF8(msg[:maxMessage], "")
	}
	return msg
}

// showMessage sends a message through the conversation, best effort.
func showMessage(s session, style pam.Style, msg string) {
	_, _ = s.StartStringConv(style, msg)
}

// describe summarises a reply for the debug log; it never includes a code.
func describe(resp *protocol.Response, err error) string {
	switch {
	case err != nil:
		return "error: " + err.Error()
	case resp == nil || resp.Verify == nil:
		return "reply without a result"
	}
	return fmt.Sprintf("outcome %s", resp.Verify.Outcome)
}

// wipe zeroes b.
func wipe(b []byte) {
	clear(b)
}

// publickeyVerified reports whether info, sshd's SSH_AUTH_INFO_0 (one line
// per authentication method that succeeded before PAM, e.g. "publickey
// ssh-ed25519 AAAA..."), holds a verified public key. When it does not,
// why says what sshd reported instead, without the key material.
func publickeyVerified(info string) (why string, ok bool) {
	var methods []string
	for _, line := range strings.Split(info, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		methods = append(methods, f[0])
		if f[0] != "publickey" || len(f) < 3 || f[1] == "" {
			continue
		}
		if _, err := base64.StdEncoding.DecodeString(f[2]); err == nil {
			return "", true
		}
	}
	if len(methods) == 0 {
		return "sshd verified no public key for this login (SSH_AUTH_INFO_0 is empty or unset: a password or keyboard-interactive alone, or not sshd)", false
	}
	return fmt.Sprintf("sshd verified no public key for this login (SSH_AUTH_INFO_0 lists only: %s)", strings.Join(methods, ", ")), false
}
