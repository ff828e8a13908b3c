package daemon

import (
	"errors"
	"fmt"
	"os"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

func (s *Server) dispatch(rc *reqCtx) (*protocol.Response, error) {
	switch rc.Op {
	case protocol.OpPing:
		return &protocol.Response{}, nil
	case protocol.OpCheck:
		return s.check(rc)
	case protocol.OpVerify:
		return s.verify(rc)
	case protocol.OpStatus, protocol.OpAdminShow:
		return s.status(rc)
	case protocol.OpEnrollBegin:
		return s.enrollBegin(rc)
	case protocol.OpEnrollConfirm:
		return s.enrollConfirm(rc)
	case protocol.OpDisable:
		return s.disable(rc)
	case protocol.OpRecoveryCodes:
		return s.regenerateRecovery(rc)
	case protocol.OpAdminList:
		return s.adminList(rc)
	case protocol.OpAdminReset:
		return s.adminReset(rc)
	case protocol.OpAdminUnlock:
		return s.adminUnlock(rc)
	case protocol.OpAdminImport:
		return s.adminImport(rc)
	case protocol.OpForget:
		return s.forget(rc)
	}
	return nil, &protocol.Error{Code: protocol.ErrBadRequest, Message: "unknown operation"}
}

// getRecord returns the user's record or nil.
func (s *Server) getRecord(user string) (*store.Record, error) {
	rec, err := s.store.Get(user)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return rec, err
}

// gate is the policy step shared by check and verify: it returns a final
// result when no code is to be checked, or nil with the record to check.
func (s *Server) gate(rc *reqCtx) (*protocol.VerifyResult, *store.Record, error) {
	a, err := s.gateAccount(rc)
	if err != nil {
		return nil, nil, err
	}
	req := decide(&rc.cfg.Policy, a)
	if req == exempt {
		s.auditDecision(rc, string(protocol.OutcomeExempt), "policy")
		return &protocol.VerifyResult{Outcome: protocol.OutcomeExempt}, nil, nil
	}
	if exemptNetwork(&rc.cfg.Policy, rc.RHost) {
		s.auditDecision(rc, string(protocol.OutcomeExempt), "exempt_network")
		return &protocol.VerifyResult{Outcome: protocol.OutcomeExempt}, nil, nil
	}
	rec, err := s.getRecord(rc.User)
	if err != nil {
		return nil, nil, err
	}
	if rec == nil || rec.Active == nil {
		if req == required {
			s.auditDecision(rc, string(protocol.OutcomeEnrollRequired), "not_enrolled")
			return &protocol.VerifyResult{Outcome: protocol.OutcomeEnrollRequired, Message: enrollHint(rc.User)}, nil, nil
		}
		s.auditDecision(rc, string(protocol.OutcomeNotEnrolled), "not_enrolled")
		return &protocol.VerifyResult{Outcome: protocol.OutcomeNotEnrolled}, nil, nil
	}
	return nil, rec, nil
}

// gateAccount is the account a check or verify decides on: the one
// resolveUser resolved, whichever of its names the request gave, once
// authorize let the peer ask.
func (s *Server) gateAccount(rc *reqCtx) (account, error) {
	return s.authorize(rc, needsGroups(&rc.cfg.Policy))
}

func (s *Server) check(rc *reqCtx) (*protocol.Response, error) {
	res, rec, err := s.gate(rc)
	if err == nil && res != nil && res.Outcome == protocol.OutcomeEnrollRequired {
		offer, err := s.enrollAtLogin(rc)
		if err != nil {
			return nil, err
		}
		if offer {
			return s.offerEnrollment(rc)
		}
	}
	if err != nil || res != nil {
		return &protocol.Response{Verify: res}, err
	}
	if blocked, retry, err := s.globalSourceBlock(rc); err != nil || blocked {
		if err != nil {
			return nil, err
		}
		s.auditDecision(rc, "locked", "source_blocked")
		return &protocol.Response{Verify: &protocol.VerifyResult{Outcome: protocol.OutcomeLocked, RetryAfter: retry, Message: sourceLockedMessage(retry)}}, nil
	}
	if blocked, retry := sourceBlocked(&rc.cfg.RateLimit, rec, rc.source, rc.now); blocked {
		s.auditDecision(rc, "locked", "source_locked")
		return &protocol.Response{Verify: &protocol.VerifyResult{Outcome: protocol.OutcomeLocked, RetryAfter: retry, Message: sourceLockedMessage(retry)}}, nil
	}
	if locked, retry := lockState(rec, rc.now); locked {
		s.auditDecision(rc, "locked", "locked")
		return &protocol.Response{Verify: &protocol.VerifyResult{Outcome: protocol.OutcomeLocked, RetryAfter: retry, Message: lockedMessage(rc.User, retry)}}, nil
	}
	if dev, ok := deviceOf(rc); ok && remembered(rc, rec, dev) {
		s.auditDecision(rc, string(protocol.OutcomeRemembered), "remembered_device", "source", dev.source, "fingerprint", dev.fingerprint)
		return &protocol.Response{Verify: &protocol.VerifyResult{Outcome: protocol.OutcomeRemembered}}, nil
	}
	if dev, last, ok := jumpPass(rc, rec); ok {
		s.auditDecision(rc, string(protocol.OutcomeRemembered), "jump_host", "source", dev.source, "fingerprint", dev.fingerprint,
			"code_at", last.At, "code_host", last.Host, "code_rhost", last.RHost)
		return &protocol.Response{Verify: &protocol.VerifyResult{Outcome: protocol.OutcomeRemembered}}, nil
	}
	return &protocol.Response{Verify: &protocol.VerifyResult{Outcome: protocol.OutcomeCodeRequired, Digits: rec.Active.Digits}}, nil
}

// useCode runs applyCode in a store transaction against the active (or
// pending) enrollment. onAccept may change the record further in the
// same transaction (it must be repeatable: the store may rerun it); it
// returns the record to store (nil deletes it).
func (s *Server) useCode(rc *reqCtx, rec *store.Record, pending bool, onAccept func(*store.Record) *store.Record) (attempt, error) {
	digits := rc.cfg.TOTP.Digits
	if enr := enrollmentOf(rec, pending); enr != nil {
		digits = enr.Digits
	}
	code, ok := readCode(rc.Code, digits)
	if !ok {
		// Not a code at all: say what a code looks like, and count
		// nothing (it cannot be a guess).
		a := attempt{outcome: protocol.OutcomeReject, reason: "unreadable_code", message: codeFormatText(digits)}
		s.auditDecision(rc, string(a.outcome), a.reason)
		return a, nil
	}
	rc.Code = code
	// The recovery-code KDF is slow: skip it for a user who is locked
	// anyway (the transaction re-checks the lock), so guessing cannot burn
	// CPU and memory.
	var guess *recoveryGuess
	if rec != nil && !pending {
		if locked, _ := lockState(rec, rc.now); !locked {
			guess = guessRecovery(rec.Active, rc.Code)
		}
	}
	if blocked, retry, err := s.globalSourceBlock(rc); err != nil {
		return attempt{}, err
	} else if blocked {
		a := attempt{outcome: protocol.OutcomeLocked, reason: "source_blocked", retryAfter: retry, message: sourceLockedMessage(retry)}
		s.auditDecision(rc, string(a.outcome), a.reason)
		return a, nil
	}
	var a attempt
	err := s.store.Update(rc.User, func(cur *store.Record) (*store.Record, error) {
		if cur == nil || (!pending && cur.Active == nil) || (pending && cur.Pending == nil) {
			return nil, &protocol.Error{Code: protocol.ErrNotFound, Message: "no enrollment for " + rc.User}
		}
		var err error
		if a, err = s.applyCode(rc, cur, pending, rc.Code, guess); err != nil {
			return nil, err
		}
		switch a.outcome {
		case protocol.OutcomeLocked:
			return nil, errNoChange
		case protocol.OutcomeAccept:
			if onAccept != nil {
				return onAccept(cur), nil
			}
		}
		return cur, nil
	})
	if errors.Is(err, errNoChange) {
		err = nil
	}
	if err != nil {
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			s.auditDecision(rc, "error", "store", "err", err.Error())
		}
		return attempt{}, err
	}
	s.auditDecision(rc, string(a.outcome), a.reason)
	if a.outcome != protocol.OutcomeLocked && a.outcome != protocol.OutcomeAccept {
		if err := s.noteSourceFailure(rc); err != nil {
			s.log.Error("per-address failure count not updated", "source", rc.source, "err", err)
		}
	}
	return a, nil
}

func (s *Server) verify(rc *reqCtx) (*protocol.Response, error) {
	res, rec, err := s.gate(rc)
	if err != nil || res != nil {
		return &protocol.Response{Verify: res}, err
	}
	var onAccept func(*store.Record) *store.Record
	dev, rememberDevice := deviceOf(rc)
	if d := rc.cfg.Policy.Remember.Duration; rememberDevice && d > 0 {
		onAccept = func(cur *store.Record) *store.Record {
			remember(cur, dev, rc.now, d)
			return cur
		}
	}
	a, err := s.useCode(rc, rec, false, onAccept)
	if err != nil {
		return nil, err
	}
	if onAccept != nil && a.outcome == protocol.OutcomeAccept {
		s.auditDecision(rc, "remembered", "device_remembered", "source", dev.source, "fingerprint", dev.fingerprint,
			"until", rc.now.Add(rc.cfg.Policy.Remember.Duration))
	}
	return &protocol.Response{Verify: &protocol.VerifyResult{
		Outcome: a.outcome, Message: a.message, RetryAfter: a.retryAfter, ClockOffset: a.clockOffset,
		Recovery: a.recovery, RecoveryRemaining: a.remaining,
	}}, nil
}

// codeError turns a failed attempt into an error reply for operations that
// need a valid code (enroll confirm, disable, re-enroll, recovery codes).
func codeError(a attempt) error {
	if a.outcome == protocol.OutcomeLocked {
		return &protocol.Error{Code: protocol.ErrLocked, Message: a.message, RetryAfter: a.retryAfter}
	}
	msg := a.message
	if msg == "" {
		msg = textWrongCode
	}
	return &protocol.Error{Code: protocol.ErrInvalidCode, Message: msg, RetryAfter: a.retryAfter}
}

func (s *Server) status(rc *reqCtx) (*protocol.Response, error) {
	a, err := s.authorize(rc, needsGroups(&rc.cfg.Policy))
	if err != nil {
		return nil, err
	}
	rec, err := s.getRecord(rc.User)
	if err != nil {
		return nil, err
	}
	if rc.Op == protocol.OpAdminShow && rec == nil && !a.Known {
		return nil, &protocol.Error{Code: protocol.ErrNotFound, Message: "no such user and no enrollment: " + rc.User}
	}
	st := s.userStatus(rc, rec, a)
	return &protocol.Response{Status: &st}, nil
}

func (s *Server) userStatus(rc *reqCtx, rec *store.Record, a account) protocol.UserStatus {
	req := decide(&rc.cfg.Policy, a)
	st := protocol.UserStatus{User: a.Name, State: protocol.StateNone, Required: req == required, Exempt: req == exempt}
	if rec == nil {
		return st
	}
	enr := rec.Active
	switch {
	case rec.Active != nil:
		st.State = protocol.StateActive
	case rec.Pending != nil:
		st.State, enr = protocol.StatePending, rec.Pending
	}
	if enr != nil {
		st.Algorithm, st.Digits, st.Period = enr.Algorithm, enr.Digits, enr.Period
		st.EnrolledAt = enr.ActivatedAt
		st.EnrolledVia, st.EnrolledFrom, st.EnrolledKey = enr.Method, enr.Source, enr.Fingerprint
		st.RecoveryRemaining = len(enr.Recovery)
	}
	st.Failures = rec.Failures
	st.LockedByAdmin = rec.AdminLocked
	if rc.now.Before(rec.LockedUntil) {
		st.LockedUntil = rec.LockedUntil
	}
	st.LastSuccess = rec.LastSuccess
	st.BlockedSources = blockedSources(rec, rc.now)
	st.Remembered = rememberedDevices(rc, rec)
	return st
}

// newRecovery makes a fresh set of recovery codes and their hashes.
func newRecovery(n int) (codes []string, salt []byte, hashes [][]byte, err error) {
	if n == 0 {
		return nil, nil, nil, nil
	}
	if codes, err = store.GenerateRecoveryCodes(n); err != nil {
		return nil, nil, nil, err
	}
	if salt, err = store.NewRecoverySalt(); err != nil {
		return nil, nil, nil, err
	}
	for _, c := range codes {
		norm, ok := normalizeRecovery(c)
		if !ok {
			return nil, nil, nil, fmt.Errorf("generated recovery code does not normalize")
		}
		hashes = append(hashes, store.HashRecoveryCode(salt, norm))
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
		if rc.Op == protocol.OpCheck && cur.EnrollOfferedAt.IsZero() {
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
		at, err := s.useCode(rc, rec, false, setPending)
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
	codes, salt, hashes, err := newRecovery(rc.cfg.Enroll.RecoveryCodes)
	if err != nil {
		return nil, err
	}
	method, source, fp := enrollMethod(rc, a)
	at, err := s.useCode(rc, rec, true, func(cur *store.Record) *store.Record {
		enr := *cur.Pending
		enr.ActivatedAt = rc.now
		enr.Method, enr.Source, enr.Fingerprint = method, source, fp
		enr.RecoverySalt, enr.Recovery = salt, hashes
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
	return &protocol.Response{RecoveryCodes: codes}, nil
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
	at, err := s.useCode(rc, rec, false, afterDisable)
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
	codes, salt, hashes, err := newRecovery(rc.cfg.Enroll.RecoveryCodes)
	if err != nil {
		return nil, err
	}
	at, err := s.useCode(rc, rec, false, func(cur *store.Record) *store.Record {
		cur.Active.RecoverySalt, cur.Active.Recovery = salt, hashes
		return cur
	})
	if err != nil {
		return nil, err
	}
	if at.outcome != protocol.OutcomeAccept {
		return nil, codeError(at)
	}
	s.auditDecision(rc, "ok", "recovery_codes_regenerated")
	return &protocol.Response{RecoveryCodes: codes}, nil
}

// enrollmentOf is rec's pending or active enrollment, nil when it has none.
func enrollmentOf(rec *store.Record, pending bool) *store.Enrollment {
	switch {
	case rec == nil:
		return nil
	case pending:
		return rec.Pending
	}
	return rec.Active
}
