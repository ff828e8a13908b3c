package daemon

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/otpgate/otpgate/daemon/recovery"
	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/config"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// errNoChange aborts a store transaction that decided without changing
// anything (e.g. a locked user), so no write or fsync happens.
var errNoChange = errors.New("no change")

// errPrepare abandons a store transaction that accepted a code before the
// work its change needs is done (useCode's prepare).
var errPrepare = errors.New("accepted, not prepared")

// attempt is the result of checking one code against a record.
type attempt struct {
	outcome    protocol.Outcome // accept, reject, replay or locked
	reason     string           // for the audit log
	message    string           // for the user
	retryAfter int64
	step       uint64
}

// hashRecoveryCode is recovery.Hash, the slow KDF; tests count its calls.
var hashRecoveryCode = recovery.Hash

// recoveryGuess is a recovery code hashed outside the store transaction
// (the KDF is slow), with the salt it was hashed with.
type recoveryGuess struct {
	salt, hash []byte
}

// normalizeRecovery accepts otpgate's own codes (with Crockford
// substitutions) and, for imported scratch codes, any 6 to 64 letters and
// digits, lower-cased, without spaces or hyphens.
func normalizeRecovery(code string) (string, bool) {
	if n, ok := recovery.Normalize(code); ok {
		return n, true
	}
	n := strings.ToLower(strings.NewReplacer(" ", "", "-", "").Replace(code))
	if len(n) < 6 || len(n) > 64 {
		return "", false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return "", false
		}
	}
	return n, true
}

// guessRecovery hashes code as a recovery code for enr, or returns nil when
// code is a TOTP code or cannot be a recovery code.
func guessRecovery(enr *store.Enrollment, code string) *recoveryGuess {
	if enr == nil || len(enr.RecoverySalt) == 0 || otp.ValidCode(code, enr.Digits) {
		return nil
	}
	n, ok := normalizeRecovery(code)
	if !ok {
		return nil
	}
	return &recoveryGuess{salt: enr.RecoverySalt, hash: hashRecoveryCode(enr.RecoverySalt, n)}
}

// lockState reports whether rec is locked at now.
func lockState(rec *store.Record, now time.Time) (locked bool, retryAfter int64) {
	if rec.AdminLocked {
		return true, -1
	}
	if now.Before(rec.LockedUntil) {
		return true, int64(math.Ceil(rec.LockedUntil.Sub(now).Seconds()))
	}
	return false, 0
}

// applyCode checks code against rec's active (or, with pending, its pending)
// enrollment and updates the replay and failure state in rec. It runs inside
// a store transaction, so check and update are one atomic step: a locked
// user is refused before the code is looked at, and a failure is counted in
// the same commit that decided it.
func (s *Server) applyCode(rc *reqCtx, rec *store.Record, pending bool, code string, guess *recoveryGuess) (attempt, error) {
	rl := &rc.cfg.RateLimit
	if blocked, retry := sourceBlocked(rl, rec, rc.source, rc.now); blocked {
		return attempt{outcome: protocol.OutcomeLocked, reason: "source_locked", retryAfter: retry, message: sourceLockedMessage(retry)}, nil
	}
	if locked, retry := lockState(rec, rc.now); locked {
		return attempt{outcome: protocol.OutcomeLocked, reason: "locked", retryAfter: retry, message: lockedMessage(rec.User, retry)}, nil
	}
	enr := rec.Active
	if pending {
		enr = rec.Pending
	}
	if enr == nil {
		return attempt{}, errors.New("record has no enrollment to check")
	}
	p, err := enrollmentParams(enr)
	if err != nil {
		return attempt{}, err
	}
	cfg := rc.cfg.TOTP
	center := otp.Step(rc.now, p.Period)

	var a attempt
	if otp.ValidCode(code, p.Digits) {
		secret, err := s.sealer.Open(rec.User, enr.SealedSecret)
		if err != nil {
			return attempt{}, fmt.Errorf("open secret of %s: %w", rec.User, err)
		}
		step, ok := otp.Verify(secret, code, center, cfg.Skew, cfg.Skew, p)
		var hintStep, futureStep uint64
		var hinted, future bool
		if !ok && cfg.ClockHintSteps > 0 {
			hintStep, hinted = otp.Verify(secret, code, center, cfg.ClockHintSteps, cfg.ClockHintSteps, p)
			// The hint tells whoever typed the code that it belongs to
			// another step; were that step still to come, a guesser could
			// wait for it and log in. Search the future part of the hint
			// range on its own (the code may match a past step too).
			futureStep, future = otp.Verify(secret, code, center+uint64(cfg.Skew)+1, 0, cfg.ClockHintSteps-cfg.Skew-1, p) //nolint:gosec // skew is validated to 0..10
		}
		clear(secret)
		enr.BurnedSteps = slices.DeleteFunc(enr.BurnedSteps, func(s uint64) bool { return s+uint64(cfg.Skew) < center }) //nolint:gosec // skew is validated to 0..10
		if future && !slices.Contains(enr.BurnedSteps, futureStep) {
			enr.BurnedSteps = append(enr.BurnedSteps, futureStep)
		}
		switch {
		case ok && slices.Contains(enr.BurnedSteps, step):
			a = attempt{outcome: protocol.OutcomeReplay, reason: "burned_code", step: step,
				message: textCodeBurned}
		case ok && (pending || step > rec.LastStep):
			if step >= rec.LastStep {
				rec.LastCode = s.codeUse(rc)
			}
			rec.LastStep = max(rec.LastStep, step)
			a = attempt{outcome: protocol.OutcomeAccept, reason: "ok", step: step}
		case ok:
			a = attempt{outcome: protocol.OutcomeReplay, reason: "replay", message: codeUsedMessage(rec.LastCode, nextCodeAt(rec.LastStep, p.Period), rc.now), step: step}
			// Only a last step beyond the window's upper edge proves that
			// the clock went back: within it, the step was accepted from a
			// device slightly ahead.
			if center+uint64(cfg.Skew) < rec.LastStep { //nolint:gosec // skew is validated to 0..10
				a.reason = "replay_clock_backwards"
			}
		case hinted && !pending && hintStep == rec.LastStep:
			// The last code accepted, typed again once it has left
			// the window: the clock is fine, the code is old.
			a = attempt{outcome: protocol.OutcomeReplay, reason: "replay_old", message: codeUsedMessage(rec.LastCode, nextCodeAt(rec.LastStep, p.Period), rc.now), step: hintStep}
		case hinted && !pending && hintStep < rec.LastStep:
			// An older step than one already accepted: a device
			// whose clock is that far off could not have given the
			// last code, so no clock hint.
			a = attempt{outcome: protocol.OutcomeReject, reason: "bad_code_old_step", message: textWrongCode}
		case hinted:
			off := (int64(hintStep) - int64(center)) * int64(p.Period) //nolint:gosec // steps are Unix seconds / period, far below 2^63
			a = attempt{outcome: protocol.OutcomeReject, reason: "clock_skew", message: clockMessage(off)}
		default:
			a = attempt{outcome: protocol.OutcomeReject, reason: "bad_code", message: textWrongCode}
		}
	} else if guess != nil && !pending && subtle.ConstantTimeCompare(guess.salt, enr.RecoverySalt) == 1 {
		a = attempt{outcome: protocol.OutcomeReject, reason: "bad_recovery_code", message: textWrongCode}
		for i, h := range enr.Recovery {
			if subtle.ConstantTimeCompare(h, guess.hash) == 1 {
				enr.Recovery = append(enr.Recovery[:i:i], enr.Recovery[i+1:]...)
				a = attempt{outcome: protocol.OutcomeAccept, reason: "recovery_code", message: recoveryMessage(len(enr.Recovery))}
				break
			}
		}
	} else {
		a = attempt{outcome: protocol.OutcomeReject, reason: "malformed_code", message: textWrongCode}
	}

	if a.outcome == protocol.OutcomeAccept {
		rec.Failures, rec.FailuresFromBlockedSources, rec.Lockouts, rec.LockedUntil = 0, 0, 0, time.Time{}
		rec.LastSuccess = rc.now
		delete(rec.Sources, rc.source)
		pruneSources(rl, rec, rc.now)
		return a, nil
	}
	s.chargeFailure(rc.cfg, rec, rc.now, !sourceWasBlocked(rl, rec, rc.source, rc.now), &a)
	chargeSource(rl, rec, rc.source, rc.now, &a)
	return a, nil
}

// chargeFailure counts one failure and imposes a lockout when the limit is
// reached: after every MaxFailures consecutive failures that count towards
// lockouts (towardsLockout: not from an address already blocked for this
// user) the user is locked for Lockout × Backoff^(lockouts so far), capped
// at MaxLockout; at MaxConsecutiveFailures of any kind only an admin can
// unlock.
func (s *Server) chargeFailure(cfg *config.Config, rec *store.Record, now time.Time, towardsLockout bool, a *attempt) {
	rl := cfg.RateLimit
	rec.Failures++
	if !towardsLockout {
		rec.FailuresFromBlockedSources++
	}
	switch {
	case rec.Failures >= rl.MaxConsecutiveFailures:
		rec.AdminLocked = true
		a.retryAfter = -1
	case towardsLockout && (rec.Failures-rec.FailuresFromBlockedSources)%rl.MaxFailures == 0:
		d := float64(rl.Lockout.Duration) * math.Pow(rl.Backoff, float64(rec.Lockouts))
		d = min(d, float64(rl.MaxLockout.Duration))
		rec.Lockouts++
		rec.LockedUntil = now.Add(time.Duration(d))
		a.retryAfter = int64(math.Ceil(time.Duration(d).Seconds()))
	default:
		return
	}
	// A lockout ends every remembered device of the user.
	rec.Remembered = nil
	a.reason += "+lockout"
	lock := lockedMessage(rec.User, a.retryAfter)
	if a.message != "" {
		a.message += " " + lock
	} else {
		a.message = textWrongCode + " " + lock
	}
}

// lowRecovery is the number of recovery codes left at or below which the
// user is told to make new ones.
const lowRecovery = 2

// enrollmentParams reads an enrollment's TOTP parameters, refusing
// corrupt ones.
func enrollmentParams(enr *store.Enrollment) (otp.Params, error) {
	alg, err := otp.ParseAlgorithm(enr.Algorithm)
	if err != nil {
		return otp.Params{}, err
	}
	p := otp.Params{Algorithm: alg, Digits: enr.Digits, Period: enr.Period}
	if err := p.Validate(); err != nil {
		return otp.Params{}, fmt.Errorf("stored enrollment: %w", err)
	}
	return p, nil
}

// useCode runs applyCode in a store transaction against the active (or
// pending) enrollment. onAccept may change the record further in the
// same transaction (it must be repeatable: the store may rerun it); it
// returns the record to store (nil deletes it).
//
// prepare, when not nil, is work onAccept needs that is too slow for a
// store transaction (hashing new recovery codes): it runs once, outside
// the transaction, and only for a code the transaction accepts. That
// transaction is then abandoned without writing, and the code is checked
// again in a new one, which commits. A wrong code thus costs no prepare.
func (s *Server) useCode(rc *reqCtx, rec *store.Record, pending bool, prepare func() error, onAccept func(*store.Record) *store.Record) (attempt, error) {
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
	tx := func(cur *store.Record) (*store.Record, error) {
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
			if prepare != nil {
				return nil, errPrepare
			}
			if onAccept != nil {
				return onAccept(cur), nil
			}
		}
		return cur, nil
	}
	err := s.store.Update(rc.User, tx)
	if errors.Is(err, errPrepare) {
		if err := prepare(); err != nil {
			return attempt{}, err
		}
		prepare = nil
		err = s.store.Update(rc.User, tx)
	}
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

func (s *Server) verify(rc *reqCtx) (*verifyResult, error) {
	res, rec, err := s.gate(rc)
	if err != nil || res != nil {
		return res, err
	}
	var onAccept func(*store.Record) *store.Record
	dev, rememberDevice := deviceOf(rc)
	if d := rc.cfg.Policy.Remember.Duration; rememberDevice && d > 0 {
		onAccept = func(cur *store.Record) *store.Record {
			remember(cur, dev, rc.now, d)
			return cur
		}
	}
	a, err := s.useCode(rc, rec, false, nil, onAccept)
	if err != nil {
		return nil, err
	}
	if onAccept != nil && a.outcome == protocol.OutcomeAccept {
		s.auditDecision(rc, "remembered", "device_remembered", "source", dev.source, "fingerprint", dev.fingerprint,
			"until", rc.now.Add(rc.cfg.Policy.Remember.Duration))
	}
	return &verifyResult{outcome: a.outcome, message: a.message, retryAfter: a.retryAfter}, nil
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
