package daemon

import (
	"bytes"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/internal/qrterm"
)

// loginQRWidth is the widest QR code sent for enrollment at login: it
// must fit an 80-column terminal.
const loginQRWidth = 80

// loginFactor is the other factor that root's SSH server or PAM module
// says the user passed before this request: "publickey" with the key's
// fingerprint when the auth info shows exactly one verified public key,
// else "password" when the PAM module vouches for a password module ahead
// of it (Request.PriorFactor). ok is false for anything else and for
// callers other than root.
func loginFactor(rc *reqCtx) (factor, fingerprint string, ok bool) {
	if rc.peer.UID != 0 {
		return "", "", false
	}
	if fp, ok := publickeyFingerprint(rc.AuthInfo); ok {
		return "publickey", fp, true
	}
	if rc.PriorFactor == protocol.PriorFactorPassword {
		return protocol.PriorFactorPassword, "", true
	}
	return "", "", false
}

// factorAttrs are the audit attributes of loginFactor: the factor, and the
// key's fingerprint after a public key.
func factorAttrs(rc *reqCtx) []any {
	factor, fp, _ := loginFactor(rc)
	if fp == "" {
		return []any{"factor", factor}
	}
	return []any{"factor", factor, "fingerprint", fp}
}

// enrollAtLogin reports whether a check for a required but not enrolled
// user may offer enrollment inside the login (policy.enroll_on_login): the
// caller is root (an SSH server or PAM module), another factor was passed
// before (loginFactor), and neither the deadline (enroll_on_login_until)
// nor the user's grace period (enroll_on_login_days after the first
// offer) has run out.
func (s *Server) enrollAtLogin(rc *reqCtx) (bool, error) {
	p := rc.cfg.Policy
	if !p.EnrollOnLogin {
		return false, nil
	}
	if _, _, ok := loginFactor(rc); !ok {
		return false, nil
	}
	if p.EnrollOnLoginUntil != "" {
		end, err := time.Parse(time.DateOnly, p.EnrollOnLoginUntil)
		if err != nil || !rc.now.Before(end) {
			return false, nil // validated at load; fail closed anyway
		}
	}
	if p.EnrollOnLoginDays > 0 {
		rec, err := s.getRecord(rc.User)
		if err != nil {
			return false, err
		}
		if rec != nil && !rec.EnrollOfferedAt.IsZero() &&
			!rc.now.Before(rec.EnrollOfferedAt.AddDate(0, 0, p.EnrollOnLoginDays)) {
			s.auditDecision(rc, string(protocol.OutcomeEnrollRequired), "enroll_on_login_days_over",
				"first_offered", rec.EnrollOfferedAt.UTC().Format(time.RFC3339))
			return false, nil
		}
	}
	return true, nil
}

// offerEnrollment starts a pending enrollment for the user of a login
// check and answers enroll_offered with the key, its QR code drawn for an
// 80-column terminal, and the code length. The login client shows them,
// asks the first code and sends enroll_confirm.
func (s *Server) offerEnrollment(rc *reqCtx) (*verifyResult, error) {
	resp, err := s.enrollBegin(rc)
	if err != nil {
		return nil, err
	}
	var qr bytes.Buffer
	if err := qrterm.Render(&qr, resp.Enroll.URI, qrterm.Options{MaxWidth: loginQRWidth}); err != nil {
		return nil, err
	}
	resp.Enroll.QR = qr.String()
	s.auditDecision(rc, string(protocol.OutcomeEnrollOffered), "enroll_on_login", factorAttrs(rc)...)
	return &verifyResult{outcome: protocol.OutcomeEnrollOffered, digits: resp.Enroll.Digits, enroll: resp.Enroll}, nil
}
