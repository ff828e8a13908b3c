package protocol

import (
	"errors"
	"fmt"
	"time"
)

// A login is one dialogue on one connection. The front end (the PAM module,
// otpgate-sshd) opens it with OpLoginStart and what it knows of the login;
// otpgated answers each request with a LoginStep: texts to show, prompts to
// ask, or the verdict with its last words. The front end relays the
// person's answers with OpLoginAnswer until a step carries a verdict. The
// daemon owns every decision, text and way of reading an answer; the front
// end only renders steps and maps the verdict to its own result.

// Limits of a dialogue's messages.
const (
	// MaxAnswers bounds the answers of one OpLoginAnswer.
	MaxAnswers = 4
	// MaxAnswerLen bounds one answer (a password and a code in one
	// field, or a long paste that the daemon then refuses in words).
	MaxAnswerLen = 1024
	// MaxPromptLen bounds a prompt's text.
	MaxPromptLen = 256
	// MaxMessageLen bounds one message's text (a QR code with its key).
	MaxMessageLen = 16 << 10
)

// UnavailableText is the one text a front end owns: what the person reads,
// before the login fails closed, when otpgated cannot be reached or gives
// an answer the front end does not understand. The reason goes to the
// front end's log.
const UnavailableText = "The verification service is not available; ask your administrator."

// LoginStart is what a front end knows when a login begins. The remote
// address, the methods sshd verified and the prior factor are in the
// Request (RHost, AuthInfo, PriorFactor) and count only from root.
type LoginStart struct {
	// Width and Height are the person's terminal size in characters,
	// 0 when unknown (then 80×24 is assumed).
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// Prompt replaces the code prompt's text (the PAM module's prompt=
	// argument, otpgate-sshd's [sshd] prompt); empty for the default.
	Prompt string `json:"prompt,omitempty"`
	// PasswordAndCode asks for the password and the code in one answer
	// (the PAM module's password_and_code): the success verdict then
	// carries the password in LoginStep.AuthTok, for the modules after.
	PasswordAndCode bool `json:"password_and_code,omitempty"`
	// RequirePublicKey says the login must have passed a public key
	// verified by sshd (the PAM module's require_publickey): without one
	// in AuthInfo the login is denied.
	RequirePublicKey bool `json:"require_publickey,omitempty"`
}

// MessageStyle says how a front end shows a message.
type MessageStyle string

// Message styles.
const (
	MessageInfo  MessageStyle = "info"  // PAM_TEXT_INFO
	MessageError MessageStyle = "error" // PAM_ERROR_MSG
)

// LoginMessage is one text to show, as it is: it may span lines.
type LoginMessage struct {
	Style MessageStyle `json:"style"`
	Text  string       `json:"text"`
}

// LoginPrompt is one question to ask. Echo is false for codes and
// passwords.
type LoginPrompt struct {
	Text string `json:"text"`
	Echo bool   `json:"echo,omitempty"`
}

// Verdict ends a dialogue.
type Verdict string

// Verdicts. A front end admits the login only on VerdictSuccess and
// VerdictSkip, and fails closed on anything it does not know.
const (
	// VerdictSuccess: the second factor was passed (a code, a recovery
	// code, an enrollment at login, or a remembered device).
	VerdictSuccess Verdict = "success"
	// VerdictSkip: no second factor applies to this login (the user is
	// exempt or not enrolled and policy allows it). A PAM module
	// answers PAM_IGNORE, so that the rest of the stack decides.
	VerdictSkip Verdict = "skip"
	// VerdictDeny: refused (wrong code, replay, not enrolled where
	// required); the person may try again.
	VerdictDeny Verdict = "deny"
	// VerdictRefused: refused whatever is typed now (a lockout, an
	// enrollment that is required first): a front end stops asking.
	VerdictRefused Verdict = "refused"
	// VerdictUnavailable: otpgated could not decide (an internal
	// error); the front end fails closed.
	VerdictUnavailable Verdict = "unavailable"
)

// Known reports whether v is one of the verdicts.
func (v Verdict) Known() bool {
	switch v {
	case VerdictSuccess, VerdictSkip, VerdictDeny, VerdictRefused, VerdictUnavailable:
		return true
	}
	return false
}

// LoginStep is otpgated's answer in a dialogue: messages to show in order,
// then either prompts to ask (their answers go back in one OpLoginAnswer,
// in the same order) or a verdict.
type LoginStep struct {
	Messages []LoginMessage `json:"messages,omitempty"`
	Prompts  []LoginPrompt  `json:"prompts,omitempty"`
	Verdict  Verdict        `json:"verdict,omitempty"`
	// AuthTok, with VerdictSuccess or VerdictSkip after a
	// PasswordAndCode prompt, is the password part of the answer, for
	// PAM_AUTHTOK. Only root receives it.
	AuthTok string `json:"authtok,omitempty"`
}

// Validate checks a step's shape: a verdict (known) or prompts, never
// both; bounded texts.
func (st *LoginStep) Validate() error {
	switch {
	case st.Verdict == "" && len(st.Prompts) == 0:
		return errors.New("step has neither prompts nor a verdict")
	case st.Verdict != "" && len(st.Prompts) > 0:
		return errors.New("step has both prompts and a verdict")
	case st.Verdict != "" && !st.Verdict.Known():
		return fmt.Errorf("unknown verdict %q", st.Verdict)
	case len(st.Prompts) > MaxAnswers:
		return fmt.Errorf("step has %d prompts, at most %d", len(st.Prompts), MaxAnswers)
	}
	for _, p := range st.Prompts {
		if err := checkField("prompt", p.Text, MaxPromptLen, false); err != nil {
			return err
		}
	}
	for _, m := range st.Messages {
		if m.Style != MessageInfo && m.Style != MessageError {
			return fmt.Errorf("unknown message style %q", m.Style)
		}
		if err := checkText(m.Text); err != nil {
			return err
		}
	}
	return nil
}

// checkText allows a message's newlines and nothing else below space.
func checkText(s string) error {
	if len(s) > MaxMessageLen {
		return fmt.Errorf("message is longer than %d bytes", MaxMessageLen)
	}
	for _, c := range s {
		if c < 0x20 && c != '\n' || c == 0x7f {
			return errors.New("message contains a control character")
		}
	}
	return checkField("message", s, MaxMessageLen, true)
}

// Dialogue is one login conversation with otpgated, on a connection of its
// own that it keeps until Close. It uses blocking system calls on the
// calling thread (see Client.Do), each exchange bounded by the client's
// Timeout; the person's time to answer is not, as the daemon bounds it.
type Dialogue struct {
	conn    *blockingConn
	socket  string
	timeout time.Duration
}

// StartDialogue connects to otpgated and sends start (OpLoginStart). It
// returns the open dialogue and otpgated's first step. On an error nothing
// is left open. Failures to reach the daemon wrap ErrUnavailable.
func (c *Client) StartDialogue(start *Request) (*Dialogue, *LoginStep, error) {
	socket, timeout := c.config()
	if start.Op != OpLoginStart {
		return nil, nil, fmt.Errorf("a dialogue starts with %s, not %s", OpLoginStart, start.Op)
	}
	conn, err := dialRoot(socket, time.Now().Add(timeout))
	if err != nil {
		return nil, nil, err
	}
	d := &Dialogue{conn: conn, socket: socket, timeout: timeout}
	step, err := d.exchange(start)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return d, step, nil
}

// Answer sends the answers to the last step's prompts and returns the next
// step. The request holds the answers only until it is encoded.
func (d *Dialogue) Answer(answers []string) (*LoginStep, error) {
	return d.exchange(&Request{Op: OpLoginAnswer, Answers: answers})
}

// Close ends the dialogue; otpgated forgets it.
func (d *Dialogue) Close() error {
	return d.conn.Close()
}

// exchange sends req and returns the step of its reply, validated.
func (d *Dialogue) exchange(req *Request) (*LoginStep, error) {
	payload, err := prepareRequest(req)
	if err != nil {
		return nil, err
	}
	d.conn.deadline = time.Now().Add(d.timeout)
	frame, err := roundTrip(d.conn, d.socket, payload)
	clear(payload)
	if err != nil {
		return nil, err
	}
	resp, err := decodeStep(frame)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := resp.check(req); err != nil {
		return nil, err
	}
	if resp.Step == nil {
		return nil, fmt.Errorf("%w: reply to %s: %w", ErrUnavailable, req.Op, ErrNoUsableStep)
	}
	if err := resp.Step.Validate(); err != nil {
		return nil, fmt.Errorf("%w: reply to %s: %w: %w", ErrUnavailable, req.Op, ErrNoUsableStep, err)
	}
	return resp.Step, nil
}

// stepResponse is the parts of a Response a dialogue's reply has.
type stepResponse struct {
	ResponseHeader
	StepReply
}

// decodeStep decodes a dialogue's reply: otpgated's own form with
// parseStepReply, anything else with encoding/json. That decodes only the
// parts such a reply has, so that a process builds no decoder for the rest
// of Response. A reply with other parts of a
// Response is read as the whole: it is then a reply without a step (a
// reply the front end does not understand), not an unreadable one.
func decodeStep(frame []byte) (*stepResponse, error) {
	if resp, ok := parseStepReply(frame); ok {
		return resp, nil
	}
	var resp stepResponse
	err := decodeResponse(frame, &resp, &resp.ResponseHeader)
	if err == nil {
		return &resp, nil
	}
	full, ferr := DecodeResponse(frame)
	if ferr != nil {
		return nil, err
	}
	return &stepResponse{full.ResponseHeader, full.StepReply}, nil
}
