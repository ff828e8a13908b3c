package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/msteinert/pam/v2"

	"github.com/otpgate/otpgate/internal/protocol"
)

// maxSteps bounds the steps of one dialogue. otpgated bounds the person's
// time and attempts itself; this only ends a dialogue that would never
// reach a verdict.
const maxSteps = 64

// session is what authentication needs from the PAM transaction. The cgo
// export wraps the msteinert/pam transaction with the two methods that must
// keep secrets out of Go strings.
type session interface {
	GetUser(prompt string) (string, error)
	GetItem(pam.Item) (string, error)
	GetEnv(name string) string
	// converse sends msgs in one call of the application's conversation
	// function. The result has one entry per message: the answer to a
	// prompt, nil for a text. The caller wipes the answers.
	converse(msgs []convMessage) ([][]byte, error)
	// setAuthtok sets PAM_AUTHTOK for the modules stacked after this one.
	setAuthtok(tok string) error
	// application is the PAM application's program (/proc/self/exe),
	// "" when unknown.
	application() string
	// syslog logs one line through libpam (pam_syslog), best effort.
	syslog(prio priority, line string)
}

// convMessage is one message of a conversation call.
type convMessage struct {
	style pam.Style
	text  string
}

// prompt reports whether m asks for an answer.
func (m convMessage) prompt() bool {
	return m.style == pam.PromptEchoOff || m.style == pam.PromptEchoOn
}

// otpgateModule is the pam.ModuleHandler of pam_otpgate. Only Authenticate
// is ever called: the C loader answers every other PAM function itself
// without loading Go, and these methods give the same answers.
type otpgateModule struct{}

var pamModuleHandler pam.ModuleHandler = otpgateModule{}

// Authenticate relays otpgated's login dialogue for mt's user. mt must
// implement session (the cgo export's transaction).
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

// authenticate runs one login dialogue with otpgated: it opens it with what
// PAM knows of the login, shows each step's messages and asks its prompts
// through the conversation, sends the answers back, and maps the verdict to
// a PAM code. It returns nil (PAM_SUCCESS) only for otpgated's success
// verdict; everything it does not understand fails closed.
func authenticate(s session, args []string) error {
	stress()
	opts, warnings := parseArgs(args)
	lg := &logger{debug: opts.debug, out: s.syslog}
	for _, w := range warnings {
		lg.warning("%s", w)
	}

	user, err := s.GetUser("login: ")
	if err != nil || user == "" {
		lg.error("cannot get the user name: %v", err)
		return fmt.Errorf("%w: pam_otpgate: no user: %w", pam.ErrAuthinfoUnavail, err)
	}
	lg.user = user
	start := &protocol.Request{Op: protocol.OpLoginStart, User: user, AuthInfo: s.GetEnv("SSH_AUTH_INFO_0")}
	for _, it := range []struct {
		item pam.Item
		dst  *string
	}{{pam.Service, &start.Service}, {pam.Rhost, &start.RHost}, {pam.Tty, &start.TTY}} {
		if *it.dst, err = s.GetItem(it.item); err != nil {
			lg.error("cannot read PAM item %d: %v", it.item, err)
			return fmt.Errorf("%w: pam_otpgate: pam item %d: %w", pam.ErrAuthinfoUnavail, it.item, err)
		}
	}
	lg.service, lg.rhost = start.Service, start.RHost
	if opts.enrollAfterPassword && passwordGiven(s) {
		start.PriorFactor = protocol.PriorFactorPassword
	}
	width, height := terminalSize(start.TTY)
	start.Login = &protocol.LoginStart{
		Width:            width,
		Height:           height,
		Prompt:           opts.prompt,
		PasswordAndCode:  opts.passwordAndCode,
		RequirePublicKey: opts.requirePublickey,
	}

	// Blocking system calls on the PAM application's thread (see
	// protocol.Client.Do), each exchange with a deadline.
	client := &protocol.Client{Socket: opts.socket, Timeout: opts.timeout}
	d, step, err := client.StartDialogue(start)
	if err != nil {
		return startFailed(s, lg, opts, err)
	}
	defer d.Close()
	for n := 1; step.Verdict == ""; n++ {
		if n > maxSteps {
			lg.error("otpgated sent %d steps without a verdict; denying", maxSteps)
			return unavailable(s, nil, errors.New("pam_otpgate: dialogue without a verdict"))
		}
		lg.debugf("step %d: %d messages, %d prompts", n, len(step.Messages), len(step.Prompts))
		answers, err := ask(s, step)
		if err != nil {
			wipeAll(answers)
			lg.debugf("conversation failed: %v", err)
			return fmt.Errorf("%w: pam_otpgate: conversation: %w", pam.ErrConv, err)
		}
		step, err = d.Answer(answerStrings(answers))
		// The answers' strings alias these buffers (answerStrings): the
		// request that carried them is encoded and gone.
		wipeAll(answers)
		if err != nil {
			lg.error("otpgated did not answer the dialogue: %v; denying", err)
			return unavailable(s, nil, err)
		}
	}
	return verdict(s, lg, opts, step)
}

// startFailed handles a dialogue that could not be opened. Only when
// otpgated could not be reached or gave no usable reply does fail=open
// let the stack decide (PAM_IGNORE), and not with require_publickey; a
// reply otpgated did give (an old otpgated that does not know the
// dialogue, permission denied, busy, an internal error) fails closed.
func startFailed(s session, lg *logger, opts options, err error) error {
	var perr *protocol.Error
	switch {
	case errors.As(err, &perr) && olderDaemon(perr):
		lg.error("otpgated is older than this PAM module: it does not know the login dialogue; upgrade otpgated (it said: %v); denying", err)
	case errors.As(err, &perr):
		lg.error("otpgated refused the login dialogue: %v; denying", err)
	case unreachable(err) && opts.failOpen && opts.requirePublickey:
		// Only otpgated checks the verified key; without it the
		// module cannot, so it does not step aside.
		lg.error("%v; fail=open does not apply with require_publickey; denying", err)
	case unreachable(err) && opts.failOpen:
		lg.warning("%v; fail=open: continuing WITHOUT a verification code", err)
		return fmt.Errorf("%w: pam_otpgate: %w", pam.ErrIgnore, err)
	default:
		lg.error("%v; denying (fail=closed)", err)
	}
	return unavailable(s, nil, err)
}

// unreachable reports whether err says that otpgated gave no usable
// reply: it could not be reached (no socket, refused, timed out, dropped)
// or its reply could not be read. A reply that was read but holds no valid
// step (an unknown verdict, prompts and a verdict at once) is an answer
// this module does not understand, not an unreachable daemon
// (protocol.ErrNoUsableStep).
func unreachable(err error) bool {
	return errors.Is(err, protocol.ErrUnavailable) && !errors.Is(err, protocol.ErrNoUsableStep)
}

// olderDaemon reports whether an error reply to login_start says that
// otpgated does not know the dialogue: an otpgated from before it refuses
// the operation, or the request's login field, as a bad request.
func olderDaemon(perr *protocol.Error) bool {
	return perr.Code == protocol.ErrBadRequest &&
		(strings.Contains(perr.Message, "unknown operation") || strings.Contains(perr.Message, `unknown field "login"`))
}

// unavailable shows msgs, then protocol.UnavailableText unless otpgated
// already said it, and fails closed with PAM_AUTHINFO_UNAVAIL, or under
// sudo and sshd with the code that stops them asking again (see
// unavailableStatus).
func unavailable(s session, msgs []protocol.LoginMessage, cause error) error {
	said := false
	for _, m := range msgs {
		said = said || m.Text == protocol.UnavailableText
	}
	if !said {
		msgs = append(msgs, protocol.LoginMessage{Style: protocol.MessageError, Text: protocol.UnavailableText})
	}
	show(s, msgs)
	return fmt.Errorf("%w: pam_otpgate: %w", unavailableStatus(s.application()), cause)
}

// verdict shows the last step's messages and maps its verdict to the PAM
// result; anything but success and skip fails.
func verdict(s session, lg *logger, opts options, step *protocol.LoginStep) error {
	lg.debugf("verdict %s, %d messages", step.Verdict, len(step.Messages))
	switch step.Verdict {
	case protocol.VerdictSuccess, protocol.VerdictSkip:
		if opts.passwordAndCode && step.AuthTok != "" {
			if err := s.setAuthtok(step.AuthTok); err != nil {
				lg.error("cannot set PAM_AUTHTOK: %v; denying", err)
				return unavailable(s, nil, fmt.Errorf("set authtok: %w", err))
			}
		}
		show(s, step.Messages)
		if step.Verdict == protocol.VerdictSkip {
			return pam.ErrIgnore
		}
		return nil
	case protocol.VerdictDeny:
		show(s, step.Messages)
		return fmt.Errorf("%w: pam_otpgate: denied", pam.ErrAuth)
	case protocol.VerdictRefused:
		show(s, step.Messages)
		return fmt.Errorf("%w: pam_otpgate: refused", refusedStatus(s.application()))
	case protocol.VerdictUnavailable:
		lg.error("otpgated could not decide (verdict unavailable); denying")
		return unavailable(s, step.Messages, errors.New("verdict unavailable"))
	}
	lg.error("unknown verdict %q from otpgated; denying", step.Verdict)
	return unavailable(s, step.Messages, fmt.Errorf("unknown verdict %q", step.Verdict))
}

// ask shows step's messages and asks its prompts, all in one conversation
// call, and returns the prompts' answers in order.
func ask(s session, step *protocol.LoginStep) ([][]byte, error) {
	msgs := conversation(step.Messages)
	for _, p := range step.Prompts {
		style := pam.PromptEchoOff
		if p.Echo {
			style = pam.PromptEchoOn
		}
		msgs = append(msgs, convMessage{style, p.Text})
	}
	replies, err := s.converse(msgs)
	if err != nil {
		return replies, err
	}
	if len(replies) != len(msgs) {
		wipeAll(replies)
		return nil, fmt.Errorf("%d replies to %d messages", len(replies), len(msgs))
	}
	answers := make([][]byte, 0, len(step.Prompts))
	for i, m := range msgs {
		if m.prompt() {
			answers = append(answers, fitAnswer(replies[i]))
		}
	}
	return answers, nil
}

// show shows msgs in one conversation call, best effort: a failure to show
// a text changes no decision.
func show(s session, msgs []protocol.LoginMessage) {
	if len(msgs) == 0 {
		return
	}
	replies, _ := s.converse(conversation(msgs))
	wipeAll(replies)
}

// conversation turns otpgated's messages into conversation messages.
func conversation(msgs []protocol.LoginMessage) []convMessage {
	out := make([]convMessage, 0, len(msgs))
	for _, m := range msgs {
		style := pam.TextInfo
		if m.Style == protocol.MessageError {
			style = pam.ErrorMsg
		}
		out = append(out, convMessage{style, m.Text})
	}
	return out
}

// passwordGiven reports whether a module ahead of this one stored a
// password in PAM_AUTHTOK. With enroll_after_password the administrator
// vouches that this module is reached only if that password was right
// (the password module is requisite); doctor checks the stack.
func passwordGiven(s session) bool {
	tok, err := s.GetItem(pam.Authtok)
	return err == nil && tok != ""
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
