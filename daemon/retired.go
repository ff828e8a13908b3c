package daemon

import "github.com/otpgate/otpgate/internal/protocol"

// The steps of a login dialogue that decide (check.go, verify.go). They are
// the daemon's own operations: the audit log names a login's decisions by
// them, and authorize applies their access rule, but no peer can send them
// (protocol.Request.Validate refuses any operation not in protocol.Ops).
const (
	opCheck  protocol.Op = "check"  // should a code be asked for User?
	opVerify protocol.Op = "verify" // is Code right for User?
)

// retiredOp reports whether op is one a PAM module or otpgate-sshd older
// than the login dialogue sends to log a user in: those clients asked
// check, then verify, and decided themselves.
func retiredOp(op protocol.Op) bool {
	return op == opCheck || op == opVerify
}

// refuseRetired answers an old client's check or verify with an error
// reply, which such clients take as a denial (never as "otpgated is down",
// which their fail=open would let through), and says in the log and the
// audit log what happened and what to do.
func (s *Server) refuseRetired(req *protocol.Request, peer Peer) *protocol.Response {
	msg := textRetiredOp(req.Op)
	s.dropUntrustedContext(req, peer) // the audit line keeps only what root may claim
	s.log.Error(msg, "peer_uid", peer.UID, "peer_pid", peer.PID, "user", auditField(req.User), "service", auditField(req.Service))
	rc := &reqCtx{Request: req, peer: peer, loginName: req.User}
	s.auditDecision(rc, "denied", "old_client")
	return errorResponse(req.ID, protocol.ErrBadRequest, msg)
}
