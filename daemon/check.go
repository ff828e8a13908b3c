package daemon

import (
	"errors"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/protocol"
)

// getRecord returns the user's record or nil.
func (s *Server) getRecord(user string) (*store.Record, error) {
	rec, err := s.store.Get(user)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return rec, err
}

// verifyResult is a login's decision (check, verify): the outcome, the
// words for the person, and what the dialogue's next step needs. It stays
// inside otpgated: the front end sees the LoginStep made of it.
type verifyResult struct {
	outcome protocol.Outcome
	// message is a short text for the person (lockout, clock hint, how to
	// enroll); it never says more than the outcome itself.
	message string
	// retryAfter: seconds until a lockout ends; -1 means until an admin
	// unlocks. Set on the failure that starts a lockout, too.
	retryAfter int64
	// digits, with OutcomeCodeRequired or OutcomeEnrollOffered, is the
	// length of the user's codes.
	digits int
	// enroll, with OutcomeEnrollOffered, is the new pending key to show.
	enroll *protocol.EnrollInfo
}

// gate is the policy step shared by check and verify: it returns a final
// result when no code is to be checked, or nil with the record to check.
func (s *Server) gate(rc *reqCtx) (*verifyResult, *store.Record, error) {
	a, err := s.gateAccount(rc)
	if err != nil {
		return nil, nil, err
	}
	req := decide(&rc.cfg.Policy, a)
	if req == exempt {
		s.auditDecision(rc, string(protocol.OutcomeExempt), "policy")
		return &verifyResult{outcome: protocol.OutcomeExempt}, nil, nil
	}
	if exemptNetwork(&rc.cfg.Policy, rc.RHost) {
		s.auditDecision(rc, string(protocol.OutcomeExempt), "exempt_network")
		return &verifyResult{outcome: protocol.OutcomeExempt}, nil, nil
	}
	rec, err := s.getRecord(rc.User)
	if err != nil {
		return nil, nil, err
	}
	if rec == nil || rec.Active == nil {
		if req == required {
			s.auditDecision(rc, string(protocol.OutcomeEnrollRequired), "not_enrolled")
			return &verifyResult{outcome: protocol.OutcomeEnrollRequired, message: enrollHint(rc.User)}, nil, nil
		}
		s.auditDecision(rc, string(protocol.OutcomeNotEnrolled), "not_enrolled")
		return &verifyResult{outcome: protocol.OutcomeNotEnrolled}, nil, nil
	}
	return nil, rec, nil
}

// gateAccount is the account a check or verify decides on: the one
// resolveUser resolved, whichever of its names the request gave, once
// authorize let the peer ask.
func (s *Server) gateAccount(rc *reqCtx) (account, error) {
	return s.authorize(rc, needsGroups(&rc.cfg.Policy))
}

func (s *Server) check(rc *reqCtx) (*verifyResult, error) {
	res, rec, err := s.gate(rc)
	if err == nil && res != nil && res.outcome == protocol.OutcomeEnrollRequired {
		offer, err := s.enrollAtLogin(rc)
		if err != nil {
			return nil, err
		}
		if offer {
			return s.offerEnrollment(rc)
		}
	}
	if err != nil || res != nil {
		return res, err
	}
	if blocked, retry, err := s.globalSourceBlock(rc); err != nil || blocked {
		if err != nil {
			return nil, err
		}
		s.auditDecision(rc, "locked", "source_blocked")
		return &verifyResult{outcome: protocol.OutcomeLocked, retryAfter: retry, message: sourceLockedMessage(retry)}, nil
	}
	if blocked, retry := sourceBlocked(&rc.cfg.RateLimit, rec, rc.source, rc.now); blocked {
		s.auditDecision(rc, "locked", "source_locked")
		return &verifyResult{outcome: protocol.OutcomeLocked, retryAfter: retry, message: sourceLockedMessage(retry)}, nil
	}
	if locked, retry := lockState(rec, rc.now); locked {
		s.auditDecision(rc, "locked", "locked")
		return &verifyResult{outcome: protocol.OutcomeLocked, retryAfter: retry, message: lockedMessage(rc.User, retry)}, nil
	}
	if dev, ok := deviceOf(rc); ok && remembered(rc, rec, dev) {
		s.auditDecision(rc, string(protocol.OutcomeRemembered), "remembered_device", "source", dev.source, "fingerprint", dev.fingerprint)
		return &verifyResult{outcome: protocol.OutcomeRemembered}, nil
	}
	if dev, last, ok := jumpPass(rc, rec); ok {
		s.auditDecision(rc, string(protocol.OutcomeRemembered), "jump_host", "source", dev.source, "fingerprint", dev.fingerprint,
			"code_at", last.At, "code_host", last.Host, "code_rhost", last.RHost)
		return &verifyResult{outcome: protocol.OutcomeRemembered}, nil
	}
	return &verifyResult{outcome: protocol.OutcomeCodeRequired, digits: rec.Active.Digits}, nil
}
