package daemon

import (
	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/protocol"
)

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
	st := protocol.UserStatus{User: a.Name, State: protocol.StateNone, PolicyRequires: req == required, Exempt: req == exempt}
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
