package sshd

import (
	"context"
	"errors"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/otpgate/otpgate/internal/protocol"
)

// Texts of enrollment at login: the same as pam_otpgate's, so that a user
// sees one flow whichever server they reach. The QR code and key go into
// the prompt itself (as OpenSSH does with PAM's messages), so clients that
// show only prompts, such as SSH_ASKPASS helpers, still show them.
const (
	enrollIntro     = "Two-factor authentication is required and not set up yet.\nScan this QR code with your authenticator app:\n"
	enrollKeyLine   = "Or enter this key in the app: "
	enrollRecovery  = "Two-factor authentication is now on.\nYour recovery codes, each usable once if you lose your phone.\nWrite them down now; they are not shown again:\n"
	enrollSavedAsk  = "Press Enter once you have saved them: "
	enrollWrongCode = "Wrong code: two-factor authentication was not set up. Log in again to get a new QR code."
	maxEnrollText   = 16 << 10
)

// enrollText is the prompt that shows a new key: the QR code, the key and
// the code prompt. It returns false if the daemon's offer is unusable.
func enrollText(info *protocol.EnrollInfo) (string, bool) {
	qr := info.QR
	if qr == "" || len(qr) > maxEnrollText || info.Secret == "" {
		return "", false
	}
	for _, r := range qr {
		if r != '\n' && (r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0) {
			return "", false
		}
	}
	for _, r := range info.Secret {
		if !(r >= 'A' && r <= 'Z' || r >= '2' && r <= '7') {
			return "", false
		}
	}
	if !strings.HasSuffix(qr, "\n") {
		qr += "\n"
	}
	return enrollIntro + qr + enrollKeyLine + info.Secret + "\n" + codePrompt, true
}

// enrollStep returns the keyboard-interactive callback that enrolls user
// at login (policy.enroll_on_login): it shows the pending key otpgated
// offered, has the first code confirmed by otpgated, shows the recovery
// codes, and admits only after otpgated activated the enrollment. It is
// bound to the user and the key proven in the first step.
func (a *authenticator) enrollStep(user string, perms *ssh.Permissions, key ssh.PublicKey, info *protocol.EnrollInfo) func(ssh.ConnMetadata, ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	return func(c ssh.ConnMetadata, challenge ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		fp := perms.Extensions[extFingerprint]
		log := a.log.With("user", user, "fingerprint", fp)
		if c.User() != user {
			log.Error("login denied: user changed after publickey", "new_user", c.User())
			return nil, a.terminal("")
		}
		prompt, ok := enrollText(info)
		if !ok {
			log.Error("login denied: unusable enrollment offer from otpgated")
			return nil, a.terminal(msgUnavailable)
		}
		answers, err := challenge("", "", []string{prompt}, []bool{false})
		if err != nil {
			log.Info("enrollment at login abandoned", "err", err)
			return nil, err
		}
		code, ok := normalizeAnswer(answers, info.Digits)
		if !ok {
			log.Info("enrollment at login refused: malformed code")
			return nil, a.terminal(enrollWrongCode)
		}
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.LoginGraceTime.Duration)
		defer cancel()
		resp, err := a.daemon.Do(ctx, &protocol.Request{
			Op:       protocol.OpEnrollConfirm,
			User:     user,
			Code:     code,
			Service:  Service,
			RHost:    remoteHost(c),
			TTY:      "ssh",
			AuthInfo: "publickey " + key.Type() + " " + fp,
		})
		var perr *protocol.Error
		switch {
		case errors.As(err, &perr) && perr.Code == protocol.ErrInvalidCode:
			log.Info("enrollment at login refused: wrong first code")
			return nil, a.terminal(enrollWrongCode)
		case errors.As(err, &perr) && perr.Code == protocol.ErrLocked:
			log.Info("enrollment at login refused: locked")
			return nil, a.terminal(userMessage(perr.Message, "otpgate: login refused."))
		case err != nil || resp == nil:
			log.Error("login denied: otpgated enroll confirm failed", "err", err)
			return nil, a.terminal(msgUnavailable)
		}
		log.Info("login accepted", "second_factor", "enrolled_at_login")
		if len(resp.RecoveryCodes) > 0 {
			var b strings.Builder
			b.WriteString(enrollRecovery)
			for _, rc := range resp.RecoveryCodes {
				b.WriteString("  " + userMessage(rc, "?") + "\n")
			}
			b.WriteString(enrollSavedAsk)
			// The answer does not matter: the enrollment is already active.
			_, _ = challenge("", "", []string{b.String()}, []bool{true})
		}
		return finalPerms(perms, "enrolled_at_login"), nil
	}
}
