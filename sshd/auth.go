package sshd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"strings"
	"time"

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
	extSecondStep  = "otpgate-2fa"        // "code", "recovery", "remembered", "exempt" or "not_enrolled"
	extNoPTY       = "otpgate-no-pty"     // "1" when the key has no-pty/restrict
	extNoForward   = "otpgate-no-fwd"     // "1" when the key has no-port-forwarding/restrict
	extCommand     = "otpgate-command"    // forced command; present only if set
	extPermitOpen  = "otpgate-permitopen" // newline-separated permitopen= entries
)

// maxAnswer bounds a keyboard-interactive answer; longer ones are refused
// without asking the daemon.
const maxAnswer = 64

// maxCodePrompts is how many codes one keyboard-interactive attempt asks
// for before the connection is closed.
const maxCodePrompts = 3

// User-visible texts. They say no more than the outcome.
const (
	codePrompt         = "Verification code: "
	msgInvalidCode     = "Invalid verification code."
	msgUnavailable     = "otpgate: the verification service is unavailable; try again later.\n"
	msgTooMany         = "otpgate: too many invalid codes.\n"
	msgCodeInstruction = "Enter the code from your authenticator app."
)

// errDenied is the one error every refused key or user gets, so that an
// unknown user looks like a wrong key.
var errDenied = errors.New("sshd: public key not authorized")

// daemonClient is the part of protocol.Client the server uses.
type daemonClient interface {
	Do(ctx context.Context, req *protocol.Request) (*protocol.Response, error)
}

// authenticator holds one connection's authentication state. Its
// callbacks are closures over it, so the code step is bound to the key
// proven on this connection and to nothing else.
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
// Permissions publicKey returned for that very key.
func (a *authenticator) verifiedKey(c ssh.ConnMetadata, key ssh.PublicKey, perms *ssh.Permissions, _ string) (*ssh.Permissions, error) {
	fp := ssh.FingerprintSHA256(key)
	if perms == nil || perms.Extensions[extFingerprint] != fp {
		// Cannot happen with x/crypto's contract; refuse if it does.
		a.log.Error("verified key does not match its permissions", "user", c.User(), "fingerprint", fp)
		return nil, errDenied
	}
	log := a.log.With("user", c.User(), "fingerprint", fp)
	log.Info("publickey verified")
	req := &protocol.Request{
		Op:       protocol.OpCheck,
		User:     c.User(),
		Service:  Service,
		RHost:    remoteHost(c),
		TTY:      "ssh",
		AuthInfo: "publickey " + key.Type() + " " + fp,
	}
	resp, err := a.askResponse(req)
	if err != nil {
		log.Error("login denied: otpgated check failed", "err", err)
		return nil, a.terminal(msgUnavailable)
	}
	res := resp.Verify
	switch res.Outcome {
	case protocol.OutcomeEnrollOffered:
		// policy.enroll_on_login: the key step proved another factor.
		if resp.Enroll == nil {
			log.Error("login denied: enrollment offered without a key")
			return nil, a.terminal(msgUnavailable)
		}
		log.Info("enrollment at login offered")
		return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
			KeyboardInteractiveCallback: a.enrollStep(c.User(), perms, key, resp.Enroll),
		}}
	case protocol.OutcomeExempt, protocol.OutcomeNotEnrolled, protocol.OutcomeRemembered:
		// remembered: otpgated's audited decision that this key and
		// address gave a code within policy.remember.
		log.Info("login accepted", "second_factor", string(res.Outcome))
		return finalPerms(perms, string(res.Outcome)), nil
	case protocol.OutcomeCodeRequired:
		log.Info("code required")
		return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{
			KeyboardInteractiveCallback: a.codeStep(c.User(), perms, key, res.Digits),
		}}
	case protocol.OutcomeEnrollRequired, protocol.OutcomeLocked:
		log.Info("login denied", "outcome", string(res.Outcome))
		return nil, a.terminal(userMessage(res.Message, "otpgate: login refused."))
	default:
		log.Error("login denied: unexpected check outcome", "outcome", string(res.Outcome))
		return nil, a.terminal(msgUnavailable)
	}
}

// codeStep returns the keyboard-interactive callback for the second step.
// It captures the user and the Permissions of the key proven in the first
// step, and refuses to run for any other user.
func (a *authenticator) codeStep(user string, perms *ssh.Permissions, key ssh.PublicKey, digits int) func(ssh.ConnMetadata, ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	return func(c ssh.ConnMetadata, challenge ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		fp := perms.Extensions[extFingerprint]
		log := a.log.With("user", user, "fingerprint", fp)
		if c.User() != user {
			// x/crypto refuses a user change after a partial success;
			// refuse here too rather than check another user's code.
			log.Error("login denied: user changed after publickey", "new_user", c.User())
			return nil, a.terminal("")
		}
		instruction := msgCodeInstruction
		for try := 1; try <= maxCodePrompts; try++ {
			answers, err := challenge("", instruction, []string{codePrompt}, []bool{false})
			if err != nil {
				log.Info("login failed: no code", "err", err)
				return nil, err
			}
			code, ok := normalizeAnswer(answers, digits)
			if !ok {
				log.Info("code refused: malformed answer", "try", try)
				instruction = msgInvalidCode
				continue
			}
			res, err := a.ask(&protocol.Request{
				Op:       protocol.OpVerify,
				User:     user,
				Code:     code,
				Service:  Service,
				RHost:    remoteHost(c),
				TTY:      "ssh",
				AuthInfo: "publickey " + key.Type() + " " + fp,
			})
			if err != nil {
				log.Error("login denied: otpgated verify failed", "err", err)
				return nil, a.terminal(msgUnavailable)
			}
			switch res.Outcome {
			case protocol.OutcomeAccept:
				second := "code"
				if res.Recovery {
					second = "recovery"
				}
				log.Info("login accepted", "second_factor", second)
				a.notice(res.Message)
				return finalPerms(perms, second), nil
			case protocol.OutcomeReject, protocol.OutcomeReplay:
				log.Info("code refused", "outcome", string(res.Outcome), "try", try)
				instruction = userMessage(res.Message, msgInvalidCode)
			case protocol.OutcomeLocked:
				log.Info("login denied", "outcome", string(res.Outcome))
				return nil, a.terminal(userMessage(res.Message, "otpgate: login refused."))
			default:
				log.Error("login denied: unexpected verify outcome", "outcome", string(res.Outcome))
				return nil, a.terminal(msgUnavailable)
			}
		}
		log.Info("login denied: too many invalid codes")
		return nil, a.terminal(msgTooMany)
	}
}

// ask sends one request to otpgated and returns its verify result; any
// error, error reply or missing result is an error.
func (a *authenticator) ask(req *protocol.Request) (*protocol.VerifyResult, error) {
	resp, err := a.askResponse(req)
	if err != nil {
		return nil, err
	}
	return resp.Verify, nil
}

// askResponse is ask returning the whole reply (which has a verify result).
func (a *authenticator) askResponse(req *protocol.Request) (*protocol.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.LoginGraceTime.Duration)
	defer cancel()
	resp, err := a.daemon.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp == nil || resp.Verify == nil {
		return nil, errors.New("sshd: otpgated reply has no result")
	}
	return resp, nil
}

// terminal sends msg as an auth banner and returns the error that makes
// x/crypto end authentication at once: a partial success with no further
// methods. The banner carries only the fixed or daemon-provided text.
func (a *authenticator) terminal(msg string) error {
	if a.preauth != nil && msg != "" {
		if !strings.HasSuffix(msg, "\n") {
			msg += "\n"
		}
		_ = a.preauth.SendAuthBanner(msg)
	}
	return &ssh.PartialSuccessError{}
}

// notice sends the daemon's note on a successful step (how many recovery
// codes are left) as an auth banner; OpenSSH's client prints it before the
// session starts. Unprintable or empty notes are dropped.
func (a *authenticator) notice(msg string) {
	if msg = userMessage(msg, ""); msg == "" || a.preauth == nil {
		return
	}
	_ = a.preauth.SendAuthBanner(msg + "\n")
}

// userMessage returns the daemon's text if it is printable, else def.
func userMessage(msg, def string) string {
	if msg == "" || len(msg) > 512 {
		return def
	}
	for _, r := range msg {
		if r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return def
		}
	}
	return msg
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

// normalizeAnswer checks a keyboard-interactive answer before it can reach
// the daemon. Exactly one answer of at most maxAnswer bytes is accepted;
// leading and trailing ASCII spaces and tabs are trimmed, and spaces inside
// a code are removed (apps show "123 456"). What is left must be either a
// TOTP code (exactly digits ASCII digits, or 6 to 8 if the daemon did not
// say; 8 digits are also let through for imported google-authenticator
// scratch codes) or a recovery code
// (6 to 64 ASCII letters and digits, with hyphens or spaces between them).
// Everything else (other Unicode digits, control bytes, punctuation,
// padding) is refused here.
func normalizeAnswer(answers []string, digits int) (string, bool) {
	if len(answers) != 1 || len(answers[0]) > maxAnswer {
		return "", false
	}
	s := strings.Trim(answers[0], " \t")
	if s == "" {
		return "", false
	}
	allDigits, alnum := true, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			alnum++
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			alnum++
			allDigits = false
		case c == ' ' || c == '-':
			if c == '-' {
				allDigits = false
			}
		default:
			return "", false
		}
	}
	if allDigits {
		code := strings.ReplaceAll(s, " ", "")
		if len(code) == digits || len(code) == 8 || digits == 0 && len(code) >= 6 && len(code) <= 8 {
			return code, true
		}
		return "", false
	}
	if alnum < 6 || strings.Contains(s, "  ") || strings.Contains(s, "--") {
		return "", false
	}
	return s, true
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
