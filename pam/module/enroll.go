package main

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/msteinert/pam/v2"

	"github.com/otpgate/otpgate/internal/protocol"
)

// maxBlock bounds a multi-line text from otpgated (the QR code).
const maxBlock = 16 << 10

// errEnrollOffered is checkDecision's result for otpgated's
// "enroll_offered" answer (policy.enroll_on_login).
var errEnrollOffered = errors.New("pam_otpgate: enrollment offered")

// Texts of enrollment at login.
const (
	enrollIntro     = "Two-factor authentication is required and not set up yet.\nScan this QR code with your authenticator app:\n"
	enrollRecovery  = "Two-factor authentication is now on.\nYour recovery codes, each usable once if you lose your phone.\nWrite them down now; they are not shown again:\n"
	enrollSavedAsk  = "Press Enter once you have saved them: "
	enrollWrongCode = "Wrong code: two-factor authentication was not set up. Log in again to get a new QR code."
)

// sanitizeBlock is sanitize for multi-line text: newlines are kept.
func sanitizeBlock(text string) string {
	if len(text) > maxBlock {
		return ""
	}
	return strings.Map(func(r rune) rune {
		if r != '\n' && unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, text)
}

// enrollAtLogin shows the new key offered by otpgated, asks for its first
// code and has otpgated activate it; on success it shows the recovery
// codes and waits until the user has saved them. It returns nil only
// after otpgated confirmed the enrollment with that code.
func enrollAtLogin(s session, lg *logger, opts options, client *protocol.Client, base protocol.Request, info *protocol.EnrollInfo) error {
	qr := ""
	if info != nil {
		qr = sanitizeBlock(info.QR)
	}
	if info == nil || qr == "" || info.Secret == "" || sanitize(info.Secret) != info.Secret {
		lg.error("check: enrollment offered without a usable key; denying")
		return fmt.Errorf("%w: %w: enrollment offer without a key", pam.ErrAuthinfoUnavail, errUnexpected)
	}
	showMessage(s, pam.TextInfo, enrollIntro+qr+"Or enter this key in the app: "+info.Secret)
	answer, err := s.promptSecret(opts.prompt)
	defer wipe(answer)
	if err != nil {
		return fmt.Errorf("%w: pam_otpgate: conversation: %w", pam.ErrConv, err)
	}
	confirm := base
	confirm.Op = protocol.OpEnrollConfirm
	confirm.Code = string(answer)
	resp, err := client.DoBlocking(&confirm)
	confirm.Code = ""
	lg.debugf("enroll confirm: %s", describeConfirm(err))
	if err != nil {
		msg := replyErrorMessage(err)
		var perr *protocol.Error
		if errors.As(err, &perr) && perr.Code == protocol.ErrInvalidCode {
			msg = enrollWrongCode
		}
		return finish(s, lg, opts, "enroll confirm", msg, replyError(err))
	}
	if resp == nil {
		return fmt.Errorf("%w: %w: enroll confirm without a reply", pam.ErrAuthinfoUnavail, errUnexpected)
	}
	if len(resp.RecoveryCodes) > 0 {
		var b strings.Builder
		b.WriteString(enrollRecovery)
		for _, c := range resp.RecoveryCodes {
			b.WriteString("  " + sanitize(c) + "\n")
		}
		showMessage(s, pam.TextInfo, strings.TrimSuffix(b.String(), "\n"))
		// A prompt, so that sshd sends the codes now rather than after
		// the login (where a session without a terminal never shows them).
		_, _ = s.StartStringConv(pam.PromptEchoOn, enrollSavedAsk)
	}
	return nil
}

func describeConfirm(err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return "enrolled"
}
