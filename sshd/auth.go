package sshd

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/otpgate/otpgate/internal/protocol"
)

// Service is the service name otpgate-sshd gives otpgated.
const Service = "otpgate-sshd"

// Permissions extensions set on an authenticated connection. They are
// derived only from the key the client proved.
const (
	extFingerprint = "otpgate-fingerprint" // SHA256 fingerprint of the proven key
	extKeyType     = "otpgate-key-type"
	extSecondStep  = "otpgate-2fa"        // otpgated's verdict: "success" or "skip"
	extNoPTY       = "otpgate-no-pty"     // "1" when the key has no-pty/restrict
	extNoForward   = "otpgate-no-fwd"     // "1" when the key has no-port-forwarding/restrict
	extCommand     = "otpgate-command"    // forced command; present only if set
	extPermitOpen  = "otpgate-permitopen" // newline-separated permitopen= entries
)

// errDenied is the one error every refused key or user gets, so that an
// unknown user looks like a wrong key.
var errDenied = errors.New("sshd: public key not authorized")

// daemonClient is the part of protocol.Client the server uses.
type daemonClient interface {
	StartDialogue(start *protocol.Request) (*protocol.Dialogue, *protocol.LoginStep, error)
}

// authenticator holds one connection's authentication state. Its
// callbacks are closures over it, so the dialogue is bound to the key
// proven on this connection and to nothing else. The callbacks run one at
// a time, on the connection's goroutine.
type authenticator struct {
	cfg     *Config
	daemon  daemonClient
	log     *slog.Logger
	now     func() time.Time
	preauth ssh.ServerPreAuthConn
	// handshakeDone, if set, is called once the version exchange and the
	// first key exchange are over and the client asked for authentication.
	handshakeDone func()
	// readKeys reads a user's authorized_keys; a seam for tests that
	// cannot create files owned by other users.
	readKeys func(a *account) ([]byte, error)
	// held is the first step of the dialogue opened at the publickey
	// step, until keyboard-interactive relays it; close ends it.
	held *heldStep
}

func defaultReadKeys(a *account) ([]byte, error) {
	return readAuthorizedKeys(authorizedKeysPath(a.home), a.uid)
}

// serverConfig builds the ssh.ServerConfig for one connection.
func (a *authenticator) serverConfig(signers []ssh.Signer) *ssh.ServerConfig {
	sc := &ssh.ServerConfig{
		MaxAuthTries:              a.cfg.MaxAuthTries,
		PublicKeyCallback:         a.publicKey,
		VerifiedPublicKeyCallback: a.verifiedKey,
		PreAuthConnCallback: func(c ssh.ServerPreAuthConn) {
			a.preauth = c
			if a.handshakeDone != nil {
				a.handshakeDone()
			}
		},
		AuthLogCallback: a.authLog,
		ServerVersion:   "SSH-2.0-otpgate",
		// SHA-1 RSA signatures and DSA keys are refused, as in OpenSSH 8.8+.
		PublicKeyAuthAlgorithms: []string{
			ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256,
			ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
			ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512,
		},
	}
	if a.cfg.Banner != "" {
		banner := a.cfg.Banner
		if !strings.HasSuffix(banner, "\n") {
			banner += "\n"
		}
		sc.BannerCallback = func(ssh.ConnMetadata) string { return banner }
	}
	for _, s := range signers {
		sc.AddHostKey(s)
	}
	return sc
}

func remoteIP(c ssh.ConnMetadata) net.IP {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.IP
	}
	return nil
}

func remoteHost(c ssh.ConnMetadata) string {
	if ip := remoteIP(c); ip != nil {
		return ip.String()
	}
	return c.RemoteAddr().String()
}

// publicKey runs for every key offered, proven or not. It only says
// whether the key is listed for the user (and with which options); no
// decision is taken and nothing is remembered here (CVE-2024-45337).
func (a *authenticator) publicKey(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	if _, ok := key.(*ssh.Certificate); ok {
		a.log.Debug("certificate refused", "user", c.User())
		return nil, errDenied
	}
	acct, err := lookupAccount(c.User())
	if err != nil {
		if !errors.Is(err, errNoUser) {
			a.log.Error("user lookup failed", "user", c.User(), "err", err)
		}
		return nil, errDenied
	}
	if acct.uid == 0 && !a.cfg.PermitRootLogin {
		return nil, errDenied
	}
	if err := acct.usable(a.now()); err != nil {
		a.log.Info("login refused", "user", acct.name, "err", err)
		return nil, errDenied
	}
	data, err := a.readKeys(acct)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("authorized_keys refused", "user", acct.name, "err", err)
		}
		return nil, errDenied
	}
	opts, ok := findAuthorizedKey(data, key, remoteIP(c), a.now(), func(line int, err error) {
		a.log.Warn("authorized_keys line skipped", "user", acct.name, "line", line, "err", err)
	})
	if !ok {
		return nil, errDenied
	}
	ext := map[string]string{
		extFingerprint: ssh.FingerprintSHA256(key),
		extKeyType:     key.Type(),
	}
	if opts.noPTY {
		ext[extNoPTY] = "1"
	}
	if opts.noPortForwarding {
		ext[extNoForward] = "1"
	}
	if opts.hasCommand {
		ext[extCommand] = opts.command
	}
	if len(opts.permitOpen) > 0 {
		ext[extPermitOpen] = strings.Join(opts.permitOpen, "\n")
	}
	return &ssh.Permissions{Extensions: ext}, nil
}

// verifiedKey runs only after the client signed with key, and receives the
// Permissions publicKey returned for that very key. It opens the login
// dialogue with otpgated: a login that needs no second factor (a skip or
// a success verdict in the first step) is admitted with the key alone, so
// that clients which offer only publickey keep working for it; anything
// else continues with keyboard-interactive, which relays the dialogue.
func (a *authenticator) verifiedKey(c ssh.ConnMetadata, key ssh.PublicKey, perms *ssh.Permissions, _ string) (*ssh.Permissions, error) {
	fp := ssh.FingerprintSHA256(key)
	if perms == nil || perms.Extensions[extFingerprint] != fp {
		// Cannot happen with x/crypto's contract; refuse if it does.
		a.log.Error("verified key does not match its permissions", "user", c.User(), "fingerprint", fp)
		return nil, errDenied
	}
	l := &login{
		user:  c.User(),
		perms: perms,
		log:   a.log.With("user", c.User(), "fingerprint", fp),
		start: protocol.Request{
			Op:       protocol.OpLoginStart,
			User:     c.User(),
			Service:  Service,
			RHost:    remoteHost(c),
			TTY:      "ssh",
			AuthInfo: "publickey " + key.Type() + " " + fp,
			// The terminal size is not known before the session.
			Login: &protocol.LoginStart{Prompt: a.cfg.Prompt},
		},
	}
	l.log.Info("publickey verified")
	next := &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
		KeyboardInteractiveCallback: a.keyboardInteractive(l),
	}}
	d, step, err := a.startDialogue(l)
	if err != nil {
		// Said in keyboard-interactive, the one way to reach the person
		// that every client waits for before the connection closes.
		a.held = &heldStep{unavailable: true}
		return nil, next
	}
	if ok(step.Verdict) {
		if len(step.Messages) > 0 && a.preauth != nil {
			_ = a.preauth.SendAuthBanner(messageText(step.Messages))
		}
		return a.admit(l, step.Verdict), nil
	}
	a.held = &heldStep{dialogue: d, step: step}
	return nil, next
}

// login is what the publickey step proved, to which the dialogue of the
// keyboard-interactive step is bound.
type login struct {
	user  string
	perms *ssh.Permissions
	log   *slog.Logger
	// start is the OpLoginStart request of every dialogue of this login.
	start protocol.Request
}

// heldStep is the first step of a dialogue opened at the publickey step,
// kept for the keyboard-interactive step that relays it.
type heldStep struct {
	dialogue *protocol.Dialogue // nil once the step is a verdict
	step     *protocol.LoginStep
	// unavailable: otpgated could not be asked.
	unavailable bool
}

// close ends a dialogue still held when the connection ends.
func (a *authenticator) close() {
	if a.held != nil && a.held.dialogue != nil {
		a.held.dialogue.Close()
	}
	a.held = nil
}

// ok reports whether v admits the login.
func ok(v protocol.Verdict) bool {
	return v == protocol.VerdictSuccess || v == protocol.VerdictSkip
}

// startDialogue opens a dialogue for l and returns it with its first
// step. A verdict step comes back with the dialogue already closed (nil).
// Errors are logged here.
func (a *authenticator) startDialogue(l *login) (*protocol.Dialogue, *protocol.LoginStep, error) {
	start := l.start
	login := *l.start.Login
	start.Login = &login
	d, step, err := a.daemon.StartDialogue(&start)
	if err != nil {
		a.logUnavailable(l, err)
		return nil, nil, err
	}
	if step.Verdict != "" {
		d.Close()
		d = nil
	}
	return d, step, nil
}

// logUnavailable logs why otpgated could not be asked, naming an otpgated
// that predates the login dialogue.
func (a *authenticator) logUnavailable(l *login, err error) {
	var perr *protocol.Error
	if errors.As(err, &perr) && perr.Code == protocol.ErrBadRequest && strings.Contains(perr.Message, "unknown operation") {
		l.log.Error("login denied: otpgated does not know the login dialogue (it is older than otpgate-sshd); upgrade otpgated", "err", err)
		return
	}
	l.log.Error("login denied: otpgated unavailable", "err", err)
}

// keyboardInteractive returns the keyboard-interactive callback of l: it
// relays the dialogue held from the publickey step, or opens a new one
// for a new try, turning each step into a challenge until a verdict. It
// refuses to run for another user.
func (a *authenticator) keyboardInteractive(l *login) func(ssh.ConnMetadata, ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	return func(c ssh.ConnMetadata, challenge ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		if c.User() != l.user {
			// x/crypto refuses a user change after a partial success;
			// refuse here too rather than ask for another user.
			l.log.Error("login denied: user changed after publickey", "new_user", c.User())
			a.close()
			return nil, a.terminal()
		}
		held := a.held
		a.held = nil
		var d *protocol.Dialogue
		var step *protocol.LoginStep
		switch {
		case held != nil && held.unavailable:
			return nil, a.unavailable(challenge)
		case held != nil:
			d, step = held.dialogue, held.step
		default:
			var err error
			if d, step, err = a.startDialogue(l); err != nil {
				return nil, a.unavailable(challenge)
			}
		}
		if d != nil {
			defer d.Close()
		}
		for step.Verdict == "" {
			questions, echos := renderPrompts(step)
			l.log.Debug("dialogue prompts", "prompts", len(questions))
			answers, err := challenge("", "", questions, echos)
			if err != nil {
				l.log.Info("login failed: no answer", "err", err)
				return nil, err
			}
			fitAnswers(answers)
			if step, err = d.Answer(answers); err != nil {
				clear(answers)
				a.logUnavailable(l, err)
				return nil, a.unavailable(challenge)
			}
			clear(answers)
		}
		return a.verdict(l, step, challenge)
	}
}

// verdict shows a verdict's last words and maps the verdict to the
// result of the keyboard-interactive step.
func (a *authenticator) verdict(l *login, step *protocol.LoginStep, challenge ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	if step.Verdict == protocol.VerdictUnavailable {
		l.log.Error("login denied: otpgated could not decide", "verdict", string(step.Verdict))
		if len(step.Messages) == 0 {
			return nil, a.unavailable(challenge)
		}
	}
	if len(step.Messages) > 0 {
		if _, err := challenge("", messageText(step.Messages), nil, nil); err != nil {
			l.log.Info("last words not acknowledged", "verdict", string(step.Verdict), "err", err)
			if !ok(step.Verdict) {
				return nil, err
			}
		}
	}
	switch step.Verdict {
	case protocol.VerdictSuccess, protocol.VerdictSkip:
		return a.admit(l, step.Verdict), nil
	case protocol.VerdictDeny:
		// The client may try again, within sshd.max_auth_tries.
		l.log.Info("login denied", "verdict", string(step.Verdict))
		return nil, errDeniedByDaemon
	case protocol.VerdictRefused:
		l.log.Info("login refused", "verdict", string(step.Verdict))
		return nil, a.terminal()
	}
	return nil, a.terminal()
}

// errDeniedByDaemon is a keyboard-interactive failure the client may
// retry.
var errDeniedByDaemon = errors.New("sshd: second factor denied")

// admit logs the admitted login and returns its Permissions.
func (a *authenticator) admit(l *login, v protocol.Verdict) *ssh.Permissions {
	l.log.Info("login accepted", "second_factor", string(v))
	return finalPerms(l.perms, string(v))
}

// unavailable shows protocol.UnavailableText, the one text otpgate-sshd
// owns, and ends authentication (the reason is already logged).
func (a *authenticator) unavailable(challenge ssh.KeyboardInteractiveChallenge) error {
	_, _ = challenge("", protocol.UnavailableText+"\n", nil, nil)
	return a.terminal()
}

// fitAnswers makes answers fit the protocol, which carries valid UTF-8 of
// at most protocol.MaxAnswerLen bytes: invalid bytes become U+FFFD and a
// longer answer (a long paste) is cut there, at a character boundary.
// otpgated then answers it in its own words, where sending it as it came
// would fail the request. Nothing else is changed: what a code may look
// like is otpgated's to say.
func fitAnswers(answers []string) {
	for i, s := range answers {
		s = strings.ToValidUTF8(s, "\uFFFD")
		if len(s) > protocol.MaxAnswerLen {
			cut := protocol.MaxAnswerLen
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			s = s[:cut]
		}
		answers[i] = s
	}
}

// renderPrompts turns a step's prompts into a challenge's questions. The
// messages go before the first question, each on lines of its own, as
// OpenSSH's sshd does with PAM's messages: OpenSSH's client prints a
// challenge's instruction through its logger (cut at 1 KiB, non-ASCII
// escaped, silent with -q, never shown to SSH_ASKPASS), while it shows a
// question as it is.
func renderPrompts(step *protocol.LoginStep) ([]string, []bool) {
	questions := make([]string, len(step.Prompts))
	echos := make([]bool, len(step.Prompts))
	for i, p := range step.Prompts {
		questions[i], echos[i] = p.Text, p.Echo
	}
	if len(step.Messages) > 0 && len(questions) > 0 {
		questions[0] = messageText(step.Messages) + questions[0]
	}
	return questions, echos
}

// messageText joins messages, each ending with a newline, so that what
// follows (a question, or the client's own words) starts a line of its own.
func messageText(messages []protocol.LoginMessage) string {
	var b strings.Builder
	for _, m := range messages {
		b.WriteString(m.Text)
		if !strings.HasSuffix(m.Text, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// terminal returns the error that makes x/crypto end authentication at
// once: a partial success with no further methods. Whatever the person
// must read was said before, in a challenge the client answered.
func (a *authenticator) terminal() error {
	return &ssh.PartialSuccessError{}
}

// finalPerms copies the key's Permissions and records the second step.
func finalPerms(perms *ssh.Permissions, second string) *ssh.Permissions {
	ext := make(map[string]string, len(perms.Extensions)+1)
	for k, v := range perms.Extensions {
		ext[k] = v
	}
	ext[extSecondStep] = second
	return &ssh.Permissions{Extensions: ext}
}

// authLog logs each authentication attempt at debug level (the decisions
// themselves are logged at info by the callbacks).
func (a *authenticator) authLog(c ssh.ConnMetadata, method string, err error) {
	var ps *ssh.PartialSuccessError
	switch {
	case err == nil:
		a.log.Debug("auth step", "user", c.User(), "method", method, "result", "success")
	case errors.As(err, &ps):
		a.log.Debug("auth step", "user", c.User(), "method", method, "result", "partial")
	default:
		a.log.Debug("auth step", "user", c.User(), "method", method, "result", "failure", "err", fmt.Sprint(err))
	}
}
