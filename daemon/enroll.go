package daemon

import (
	"errors"
	"fmt"
	"os"

	"github.com/otpgate/otpgate/daemon/recovery"
	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// newCodes is a set of recovery codes: the codes, shown to the user once,
// and the salt and hashes that are stored.
type newCodes struct {
	codes  []string
	salt   []byte
	hashes [][]byte
}

// recoveryOnAccept returns an empty set of recovery codes and the function
// that fills it with n new ones, for useCode to call (as its prepare) once
// a code is accepted: hashing them is slow.
func recoveryOnAccept(n int) (*newCodes, func() error) {
	c := &newCodes{}
	return c, func() (err error) {
		c.codes, c.salt, c.hashes, err = newRecovery(n)
		return err
	}
}

// newRecovery makes a fresh set of recovery codes and their hashes.
func newRecovery(n int) (codes []string, salt []byte, hashes [][]byte, err error) {
	if n == 0 {
		return nil, nil, nil, nil
	}
	if codes, err = recovery.Generate(n); err != nil {
		return nil, nil, nil, err
	}
	if salt, err = recovery.NewSalt(); err != nil {
		return nil, nil, nil, err
	}
	for _, c := range codes {
		norm, ok := normalizeRecovery(c)
		if !ok {
			return nil, nil, nil, fmt.Errorf("generated recovery code does not normalize")
		}
		hashes = append(hashes, hashRecoveryCode(salt, norm))
	}
	return codes, salt, hashes, nil
}

func (s *Server) enrollBegin(rc *reqCtx) (*protocol.Response, error) {
	a, err := s.authorize(rc, false)
	if err != nil {
		return nil, err
	}
	if !a.Known {
		return nil, &protocol.Error{Code: protocol.ErrNotFound, Message: "no such user: " + rc.User}
	}
	rec, err := s.getRecord(rc.User)
	if err != nil {
		return nil, err
	}
	cfg := rc.cfg
	alg, err := otp.ParseAlgorithm(cfg.TOTP.Algorithm)
	if err != nil {
		return nil, err
	}
	params := otp.Params{Algorithm: alg, Digits: cfg.TOTP.Digits, Period: cfg.TOTP.Period}
	secret, err := otp.GenerateSecret(cfg.Enroll.SecretBytes)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	sealed, err := s.sealer.Seal(rc.User, secret)
	if err != nil {
		return nil, err
	}
	pending := &store.Enrollment{SealedSecret: sealed, Algorithm: alg.String(), Digits: params.Digits, Period: params.Period, CreatedAt: rc.now}
	setPending := func(cur *store.Record) *store.Record {
		if cur == nil {
			cur = &store.Record{User: rc.User}
		}
		cur.Pending = pending
		if rc.Op == opCheck && cur.EnrollOfferedAt.IsZero() {
			// Enrollment offered at login (offerEnrollment): the
			// user's enroll_on_login_days start now.
			cur.EnrollOfferedAt = rc.now
		}
		return cur
	}

	if rec != nil && rec.Active != nil && !(rc.peer.UID == 0 && rc.Force) {
		if rc.Code == "" {
			return nil, &protocol.Error{Code: protocol.ErrInvalidCode, Message: "You are already enrolled: a current code is needed to enroll a new device."}
		}
		at, err := s.useCode(rc, rec, false, nil, setPending)
		if err != nil {
			return nil, err
		}
		if at.outcome != protocol.OutcomeAccept {
			return nil, codeError(at)
		}
	} else {
		err := s.store.Update(rc.User, func(cur *store.Record) (*store.Record, error) {
			if cur != nil {
				if locked, retry := lockState(cur, rc.now); locked {
					return nil, &protocol.Error{Code: protocol.ErrLocked, Message: lockedMessage(rc.User, retry), RetryAfter: retry}
				}
			}
			return setPending(cur), nil
		})
		if err != nil {
			return nil, err
		}
		s.auditDecision(rc, "pending", "enroll_begin")
	}
	host, _ := os.Hostname()
	account := rc.User
	if host != "" {
		account += "@" + host
	}
	key := otp.Key{Issuer: cfg.Issuer, Account: account, Secret: secret, Params: params}
	return &protocol.Response{Enroll: &protocol.EnrollInfo{
		URI: key.URI(), Secret: otp.EncodeSecret(secret), Issuer: cfg.Issuer, Account: account,
		Algorithm: alg.String(), Digits: params.Digits, Period: params.Period,
	}}, nil
}

func (s *Server) enrollConfirm(rc *reqCtx) (*protocol.Response, error) {
	a, err := s.authorize(rc, false)
	if err != nil {
		return nil, err
	}
	rec, err := s.getRecord(rc.User)
	if err != nil {
		return nil, err
	}
	if rec == nil || rec.Pending == nil {
		return nil, &protocol.Error{Code: protocol.ErrNotFound, Message: "No enrollment is waiting for confirmation: run 'otpgate enroll' first."}
	}
	if rc.now.Sub(rec.Pending.CreatedAt) > rc.cfg.Enroll.PendingTimeout.Duration {
		err := s.store.Update(rc.User, func(cur *store.Record) (*store.Record, error) {
			if cur == nil {
				return nil, errNoChange
			}
			cur.Pending = nil
			if cur.Active == nil && cur.Failures == 0 && cur.LastStep == 0 && cur.EnrollOfferedAt.IsZero() {
				return nil, nil
			}
			return cur, nil
		})
		if err != nil && !errors.Is(err, errNoChange) {
			return nil, err
		}
		return nil, &protocol.Error{Code: protocol.ErrNotFound, Message: "The enrollment expired: run 'otpgate enroll' again."}
	}
	// The recovery codes are hashed (slow) only once the code is accepted.
	codes, makeCodes := recoveryOnAccept(rc.cfg.Enroll.RecoveryCodes)
	method, source, fp := enrollMethod(rc, a)
	at, err := s.useCode(rc, rec, true, makeCodes, func(cur *store.Record) *store.Record {
		enr := *cur.Pending
		enr.ActivatedAt = rc.now
		enr.Method, enr.Source, enr.Fingerprint = method, source, fp
		enr.RecoverySalt, enr.Recovery = codes.salt, codes.hashes
		cur.Active, cur.Pending = &enr, nil
		cur.Remembered = nil // a new device: trust starts over
		return cur
	})
	if err != nil {
		return nil, err
	}
	if at.outcome != protocol.OutcomeAccept {
		return nil, codeError(at)
	}
	if method == store.MethodLogin {
		s.auditDecision(rc, "active", "enrolled_at_login", factorAttrs(rc)...)
	} else {
		s.auditDecision(rc, "active", "enrolled", "method", method)
	}
	return &protocol.Response{RecoveryCodes: codes.codes}, nil
}

// enrollMethod says how the enrollment confirmed by rc was made: at a
// login (root's SSH server or PAM module vouches for another factor), by
// an admin for another user, or by the user. For a login it also returns
// the remote address and the key's fingerprint ("" after a password).
func enrollMethod(rc *reqCtx, a account) (method, source, fingerprint string) {
	if rc.peer.UID != 0 {
		return store.MethodCLI, "", ""
	}
	if _, fp, ok := loginFactor(rc); ok {
		return store.MethodLogin, rc.RHost, fp
	}
	if a.UID != 0 {
		return store.MethodAdmin, "", ""
	}
	return store.MethodCLI, "", ""
}

func (s *Server) disable(rc *reqCtx) (*protocol.Response, error) {
	if _, err := s.authorize(rc, false); err != nil {
		return nil, err
	}
	rec, err := s.getRecord(rc.User)
	if err != nil {
		return nil, err
	}
	if rec == nil || (rec.Active == nil && rec.Pending == nil) {
		return nil, &protocol.Error{Code: protocol.ErrNotFound, Message: rc.User + " is not enrolled."}
	}
	if rc.peer.UID == 0 || rec.Active == nil {
		if err := s.store.Update(rc.User, func(cur *store.Record) (*store.Record, error) { return afterDisable(cur), nil }); err != nil {
			return nil, err
		}
		s.auditDecision(rc, "disabled", "disable")
		return &protocol.Response{}, nil
	}
	if rc.Code == "" {
		return nil, &protocol.Error{Code: protocol.ErrInvalidCode, Message: "A current code is needed to turn off two-factor authentication."}
	}
	at, err := s.useCode(rc, rec, false, nil, afterDisable)
	if err != nil {
		return nil, err
	}
	if at.outcome != protocol.OutcomeAccept {
		return nil, codeError(at)
	}
	s.auditDecision(rc, "disabled", "disable")
	return &protocol.Response{}, nil
}

// afterDisable is what remains of a record when its user turns two-factor
// authentication off: nothing, except when enrollment at login was offered
// (a disable must not start enroll_on_login_days over).
func afterDisable(cur *store.Record) *store.Record {
	if cur == nil || cur.EnrollOfferedAt.IsZero() {
		return nil
	}
	return &store.Record{User: cur.User, EnrollOfferedAt: cur.EnrollOfferedAt}
}

func (s *Server) regenerateRecovery(rc *reqCtx) (*protocol.Response, error) {
	if _, err := s.authorize(rc, false); err != nil {
		return nil, err
	}
	rec, err := s.getRecord(rc.User)
	if err != nil {
		return nil, err
	}
	if rec == nil || rec.Active == nil {
		return nil, &protocol.Error{Code: protocol.ErrNotFound, Message: rc.User + " is not enrolled."}
	}
	if rc.Code == "" {
		return nil, &protocol.Error{Code: protocol.ErrInvalidCode, Message: "A current code is needed to make new recovery codes."}
	}
	// As for enroll_confirm: hashed only once the code is accepted.
	codes, makeCodes := recoveryOnAccept(rc.cfg.Enroll.RecoveryCodes)
	at, err := s.useCode(rc, rec, false, makeCodes, func(cur *store.Record) *store.Record {
		cur.Active.RecoverySalt, cur.Active.Recovery = codes.salt, codes.hashes
		return cur
	})
	if err != nil {
		return nil, err
	}
	if at.outcome != protocol.OutcomeAccept {
		return nil, codeError(at)
	}
	s.auditDecision(rc, "ok", "recovery_codes_regenerated")
	return &protocol.Response{RecoveryCodes: codes.codes}, nil
}
