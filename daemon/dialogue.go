package daemon

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/qrterm"
)

// A login dialogue (login_start, then login_answer until a verdict) lives
// on one connection: the front end (the PAM module, otpgate-sshd) relays
// the steps decided here to the person and their answers back. It reuses
// check, verify and enroll_confirm, so that a login decides exactly as
// those operations do; what it adds is the words, the prompts and the
// reading of answers.

// dialogueAnswerTimeout is how long otpgated waits for the answers to a
// step (a person scanning a QR code takes a while); the front end's own
// limits (sshd's LoginGraceTime) are usually shorter.
const dialogueAnswerTimeout = 5 * time.Minute

// maxUnreadable is how many answers that are not a code a dialogue asks
// again for before it denies.
const maxUnreadable = 3

// Terminal size assumed when the front end does not know it.
const (
	defaultTermWidth  = 80
	defaultTermHeight = 24
)

// dialogueState is what the dialogue's last step asked.
type dialogueState int

const (
	awaitCode          dialogueState = iota + 1 // a code (or password and code)
	awaitEnrollCode                             // the first code of a new key
	awaitRecoverySaved                          // Enter, once the recovery codes are saved
)

// dialogue is the open login dialogue of one connection.
type dialogue struct {
	// start is the login_start request, its user resolved.
	start      protocol.Request
	loginName  string
	account    account
	withGroups bool
	state      dialogueState
	prompt     protocol.LoginPrompt
	digits     int
	unreadable int
}

// loginStart opens a dialogue for rc (login_start). It returns the first
// step, and the dialogue when that step asks something.
func (s *Server) loginStart(rc *reqCtx) (*protocol.LoginStep, *dialogue, error) {
	if _, err := s.authorize(rc, rc.withGroups); err != nil {
		return nil, nil, err
	}
	opts := rc.Login
	if opts.RequirePublicKey {
		if why, ok := publickeyVerified(rc.AuthInfo); !ok {
			s.auditDecision(rc, string(protocol.VerdictRefused), "no_verified_publickey", "detail", why)
			return refused(textNoPublicKey), nil, nil
		}
	}
	d := &dialogue{start: *rc.Request, loginName: rc.loginName, account: rc.account, withGroups: rc.withGroups}
	d.start.Login = &protocol.LoginStart{}
	*d.start.Login = *opts
	rc.Op = opCheck
	v, err := s.check(rc)
	if err != nil {
		return nil, nil, err
	}
	switch v.outcome {
	case protocol.OutcomeExempt, protocol.OutcomeNotEnrolled:
		return &protocol.LoginStep{Verdict: protocol.VerdictSkip}, nil, nil
	case protocol.OutcomeRemembered:
		return &protocol.LoginStep{Verdict: protocol.VerdictSuccess}, nil, nil
	case protocol.OutcomeEnrollRequired, protocol.OutcomeLocked:
		return refused(v.message), nil, nil
	case protocol.OutcomeCodeRequired:
		d.state, d.digits = awaitCode, v.digits
		d.prompt = protocol.LoginPrompt{Text: textCodePrompt}
		if opts.PasswordAndCode {
			d.prompt.Text = textPasswordCode
		}
		if opts.Prompt != "" {
			d.prompt.Text = opts.Prompt
		}
		return &protocol.LoginStep{Prompts: []protocol.LoginPrompt{d.prompt}}, d, nil
	case protocol.OutcomeEnrollOffered:
		d.state, d.digits = awaitEnrollCode, v.digits
		d.prompt = protocol.LoginPrompt{Text: textCodePrompt}
		if opts.Prompt != "" {
			d.prompt.Text = opts.Prompt
		}
		return &protocol.LoginStep{
			Messages: []protocol.LoginMessage{info(enrollmentText(v.enroll, opts.Width, opts.Height))},
			Prompts:  []protocol.LoginPrompt{d.prompt},
		}, d, nil
	}
	return nil, nil, fmt.Errorf("check gave an outcome a login cannot answer: %s", v.outcome)
}

// loginAnswer takes the answers to d's last step and returns the next
// step; d stays open only while that step asks something.
func (s *Server) loginAnswer(rc *reqCtx, d *dialogue) (*protocol.LoginStep, bool, error) {
	if len(rc.Answers) != 1 {
		return nil, false, &protocol.Error{Code: protocol.ErrBadRequest, Message: fmt.Sprintf("this step asks 1 question, not %d", len(rc.Answers))}
	}
	answer := rc.Answers[0]
	if d.state == awaitRecoverySaved {
		return &protocol.LoginStep{Verdict: protocol.VerdictSuccess}, false, nil
	}
	var password string
	if d.state == awaitCode && d.start.Login.PasswordAndCode {
		password, answer = splitPasswordAndCode(answer, d.digits)
	}
	code, ok := readCode(answer, d.digits)
	if !ok {
		d.unreadable++
		msg := protocol.LoginMessage{Style: protocol.MessageError, Text: codeFormatText(d.digits)}
		if d.unreadable >= maxUnreadable {
			return &protocol.LoginStep{Verdict: protocol.VerdictDeny, Messages: []protocol.LoginMessage{msg}}, false, nil
		}
		return &protocol.LoginStep{Messages: []protocol.LoginMessage{msg}, Prompts: []protocol.LoginPrompt{d.prompt}}, true, nil
	}
	// Decide as the operation the step stands for would, on the
	// dialogue's request (its user, context and options).
	req := d.start
	req.Login, req.Answers, req.Code = nil, nil, code
	op := &reqCtx{Request: &req, peer: rc.peer, cfg: rc.cfg, now: rc.now, source: sourceOf(req.RHost),
		loginName: d.loginName, account: d.account, withGroups: d.withGroups}
	switch d.state {
	case awaitCode:
		op.Op = opVerify
		v, err := s.verify(op)
		if err != nil {
			return nil, false, err
		}
		step := verdictOf(v)
		if rc.peer.UID == 0 && (step.Verdict == protocol.VerdictSuccess || step.Verdict == protocol.VerdictSkip) {
			step.AuthTok = password
		}
		return step, false, nil
	case awaitEnrollCode:
		op.Op = protocol.OpEnrollConfirm
		resp, err := s.enrollConfirm(op)
		var pe *protocol.Error
		switch {
		case errors.As(err, &pe) && pe.Code == protocol.ErrInvalidCode:
			return deny(textEnrollWrongCode), false, nil
		case errors.As(err, &pe) && (pe.Code == protocol.ErrLocked || pe.Code == protocol.ErrNotFound):
			return refused(pe.Message), false, nil
		case err != nil:
			return nil, false, err
		case len(resp.RecoveryCodes) == 0:
			return &protocol.LoginStep{Verdict: protocol.VerdictSuccess}, false, nil
		}
		d.state = awaitRecoverySaved
		// A prompt, so that sshd sends the codes now rather than after
		// the login (where a session without a terminal never shows
		// them).
		return &protocol.LoginStep{
			Messages: []protocol.LoginMessage{info(recoveryCodesText(resp.RecoveryCodes))},
			Prompts:  []protocol.LoginPrompt{{Text: textRecoverySaved, Echo: true}},
		}, true, nil
	}
	return nil, false, fmt.Errorf("login dialogue in an unknown state %d", d.state)
}

// verdictOf maps a verify result to the dialogue's last step.
func verdictOf(v *verifyResult) *protocol.LoginStep {
	switch v.outcome {
	case protocol.OutcomeAccept:
		st := &protocol.LoginStep{Verdict: protocol.VerdictSuccess}
		if v.message != "" {
			st.Messages = []protocol.LoginMessage{info(v.message)}
		}
		return st
	case protocol.OutcomeNotEnrolled, protocol.OutcomeExempt:
		return &protocol.LoginStep{Verdict: protocol.VerdictSkip}
	case protocol.OutcomeLocked:
		return refused(v.message)
	}
	msg := v.message
	if msg == "" {
		msg = textWrongCode
	}
	if v.retryAfter != 0 {
		// The failure that started a lockout: asking again cannot help.
		return refused(msg)
	}
	return deny(msg)
}

func info(text string) protocol.LoginMessage {
	return protocol.LoginMessage{Style: protocol.MessageInfo, Text: text}
}

func deny(msg string) *protocol.LoginStep {
	return &protocol.LoginStep{Verdict: protocol.VerdictDeny, Messages: []protocol.LoginMessage{{Style: protocol.MessageError, Text: msg}}}
}

func refused(msg string) *protocol.LoginStep {
	return &protocol.LoginStep{Verdict: protocol.VerdictRefused, Messages: []protocol.LoginMessage{{Style: protocol.MessageError, Text: msg}}}
}

// enrollmentText is the offer of a new key at login: the intro, the QR
// code drawn to fit a width × height terminal (80×24 when unknown) with the
// text around it, and the key to type in by hand.
func enrollmentText(e *protocol.EnrollInfo, width, height int) string {
	if width <= 0 {
		width = defaultTermWidth
	}
	if height <= 0 {
		height = defaultTermHeight
	}
	var qr bytes.Buffer
	// The QR code shares the screen with the intro (2 lines), the key
	// and the prompt (2 lines).
	if err := qrterm.Render(&qr, e.URI, qrterm.Options{MaxWidth: width, MaxHeight: height - 4}); err != nil {
		return textEnrollNoRoom + "\n" + textEnrollKey + e.Secret
	}
	return textEnrollIntro + "\n" + qr.String() + textEnrollKey + e.Secret
}

// splitPasswordAndCode splits "password" + "code" typed in one answer:
// the last digits characters, after trailing white space, are the code. A
// too-short answer is all code and no password.
func splitPasswordAndCode(answer string, digits int) (password, code string) {
	trimmed := strings.TrimRight(answer, " \t")
	if len(trimmed) <= digits {
		return "", answer
	}
	cut := len(trimmed) - digits
	return trimmed[:cut], trimmed[cut:]
}

// publickeyVerified reports whether info, what the SSH server verified
// before the second factor (sshd's SSH_AUTH_INFO_0, one line per method,
// e.g. "publickey ssh-ed25519 AAAA…"; otpgate-sshd's "publickey
// ssh-ed25519 SHA256:…"), holds a public key. When it does not, why says
// what it holds instead, without key material.
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
		key := strings.TrimPrefix(f[2], "SHA256:")
		if _, err := base64.StdEncoding.DecodeString(key); err == nil {
			return "", true
		}
		if _, err := base64.RawStdEncoding.DecodeString(key); err == nil {
			return "", true
		}
	}
	if len(methods) == 0 {
		return "no verified public key (no methods given: a password or keyboard-interactive alone, or not sshd)", false
	}
	return "no verified public key (the methods given: " + strings.Join(methods, ", ") + ")", false
}
