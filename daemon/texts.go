package daemon

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/protocol"
)

// Every text a person reads during a login or at a CLI code prompt comes
// from here, so that OpenSSH with the PAM module, sudo, otpgate-sshd and
// the CLI say the same thing. Durations are in words ("1 minute"), never
// in Go's notation.

// The fixed texts.
const (
	textWrongCode     = "Wrong code."
	textCodeBurned    = "This code can no longer be used: an earlier wrong attempt revealed it. Wait for the next one."
	textCodePrompt    = "Verification code: "
	textPasswordCode  = "Password and verification code: "
	textRecoverySaved = "Press Enter once you have saved them: "
	textNoPublicKey   = "This server accepts a verification code only after a key: log in with your SSH key."

	textEnrollIntro     = "Two-factor authentication is required and not set up yet.\nScan this QR code with your authenticator app:"
	textEnrollKey       = "Or enter this key in the app: "
	textEnrollRecovery  = "Two-factor authentication is now on.\nYour recovery codes, each usable once if you lose your phone.\nWrite them down now; they are not shown again:"
	textEnrollWrongCode = "Wrong code: two-factor authentication was not set up. Log in again to get a new QR code."
	textEnrollNoRoom    = "The QR code does not fit this terminal: make the window larger and log in again, or enter the key below in the app."
)

// codeFormatText answers an answer that is neither a code nor a recovery
// code.
func codeFormatText(digits int) string {
	return fmt.Sprintf("A code is %d digits.", digits)
}

// humanDuration says seconds in words, rounded up to whole minutes from a
// minute on: "45 seconds", "1 minute", "15 minutes", "1 hour 30 minutes".
func humanDuration(seconds int64) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	if seconds < 60 {
		return plural(max(seconds, 1), "second")
	}
	mins := (seconds + 59) / 60
	if mins < 60 {
		return plural(mins, "minute")
	}
	h, m := mins/60, mins%60
	if m == 0 {
		return plural(h, "hour")
	}
	return plural(h, "hour") + " " + plural(m, "minute")
}

func enrollHint(user string) string {
	return fmt.Sprintf("A verification code is required for %s, but two-factor authentication is not set up: log in another way and run 'otpgate enroll', or ask an administrator.", user)
}

func sourceLockedMessage(retryAfter int64) string {
	return "Too many failed attempts from your address: try again in " + humanDuration(retryAfter) + "."
}

func lockedMessage(user string, retryAfter int64) string {
	if retryAfter < 0 {
		return fmt.Sprintf("Too many failed attempts: this account is locked until an administrator runs 'otpgate admin unlock %s'.", user)
	}
	return "Too many failed attempts: try again in " + humanDuration(retryAfter) + "."
}

// recoveryMessage tells the user that a recovery code was used up and how
// many are left, and, when few are, how to make new ones.
func recoveryMessage(remaining int) string {
	switch {
	case remaining > lowRecovery:
		return fmt.Sprintf("Recovery code accepted; %d left.", remaining)
	case remaining == 0:
		return "Recovery code accepted; none left: run 'otpgate recovery-codes' to make new ones."
	}
	return fmt.Sprintf("Recovery code accepted; only %d left: run 'otpgate recovery-codes' to make new ones.", remaining)
}

// clockMessage is the hint for a code that matched a step offsetSeconds
// away from now and was never used.
func clockMessage(offsetSeconds int64) string {
	dir := "ahead"
	if offsetSeconds < 0 {
		dir, offsetSeconds = "behind", -offsetSeconds
	}
	mins := (offsetSeconds + 30) / 60
	amount := fmt.Sprintf("%d minutes", mins)
	if mins <= 1 {
		amount = "a minute"
	}
	return fmt.Sprintf("%s Your device's clock seems to be about %s %s: turn on automatic date and time on it and try again.", textWrongCode, amount, dir)
}

// recoveryCodesText lists new recovery codes after an enrollment at login.
func recoveryCodesText(codes []string) string {
	var b strings.Builder
	b.WriteString(textEnrollRecovery)
	for _, c := range codes {
		b.WriteString("\n  " + c)
	}
	return b.String()
}

// codeUsedMessage refuses a code that was already used, saying where and
// when it was accepted (last, nil for a record from before that was kept),
// the time in the server's local zone, and how long until the next code
// comes up at next: "This code was already used at 10:41:07 UTC on bastion1
// (sshd from 192.0.2.4): the next code comes in 12 seconds."
func codeUsedMessage(last *store.CodeUse, next, now time.Time) string {
	var b strings.Builder
	b.WriteString("This code was already used")
	if last != nil {
		b.WriteString(" at " + last.At.In(time.Local).Format("15:04:05 MST"))
		if last.Host != "" {
			b.WriteString(" on " + last.Host)
		}
		switch {
		case last.Service != "" && last.RHost != "":
			fmt.Fprintf(&b, " (%s from %s)", last.Service, last.RHost)
		case last.Service != "":
			fmt.Fprintf(&b, " (%s)", last.Service)
		case last.RHost != "":
			fmt.Fprintf(&b, " (from %s)", last.RHost)
		}
	}
	if wait := int64(math.Ceil(next.Sub(now).Seconds())); wait > 0 {
		b.WriteString(": the next code comes in " + humanDuration(wait) + ".")
	} else {
		b.WriteString(": a new code is showing now.")
	}
	return b.String()
}

// textRetiredOp is the log line and the error reply for a client that logs
// in with the operations used before the login dialogue.
func textRetiredOp(op protocol.Op) string {
	return fmt.Sprintf("a client sent '%s', which this otpgated no longer answers: the login was refused; upgrade pam_otpgate and otpgate-sshd to the version of otpgated", op)
}
