package daemon

import (
	"fmt"
	"strings"
	"syscall"

	"github.com/otpgate/otpgate/internal/protocol"
)

var errTooManyFiles = syscall.EMFILE

// access is who may call an operation.
type access int

const (
	anyone     access = iota // ping
	selfOrRoot               // the peer's uid is the user's, or root
	rootOnly
)

var opAccess = map[protocol.Op]access{
	protocol.OpPing:          anyone,
	opCheck:                  selfOrRoot,
	opVerify:                 selfOrRoot,
	protocol.OpStatus:        selfOrRoot,
	protocol.OpEnrollBegin:   selfOrRoot,
	protocol.OpEnrollConfirm: selfOrRoot,
	protocol.OpDisable:       selfOrRoot,
	protocol.OpRecoveryCodes: selfOrRoot,
	protocol.OpAdminList:     rootOnly,
	protocol.OpAdminShow:     rootOnly,
	protocol.OpAdminReset:    rootOnly,
	protocol.OpAdminUnlock:   rootOnly,
	protocol.OpAdminImport:   rootOnly,
	protocol.OpForget:        selfOrRoot,
	protocol.OpLoginStart:    selfOrRoot,
	protocol.OpLoginAnswer:   anyone, // answers the connection's own dialogue
}

func permissionDenied(msg string) *protocol.Error {
	return &protocol.Error{Code: protocol.ErrPermissionDenied, Message: msg}
}

// resolveUser resolves the user a request names to its account, once, at
// the request's entry, for every operation: the account cache answers
// (a login's check and verify resolve the user once). The request then
// names the account canonically (rc.User; the name as given stays in
// rc.loginName for the audit log), so that every record key, seal and
// audit line of the account is the same whichever of its names or
// spellings was typed. A record still kept under the name as given is
// moved to the account (adoptRecord). An unknown user stays as given, so
// that unknown and unenrolled users get the same answers.
func (s *Server) resolveUser(rc *reqCtx) error {
	rc.loginName = rc.User
	if rc.User == "" {
		return nil
	}
	rc.withGroups = needsGroups(&rc.cfg.Policy)
	a, err := accounts.get(rc.User, rc.withGroups)
	if err != nil {
		return err
	}
	rc.account = a
	if !a.Known || a.Name == rc.User {
		return nil
	}
	if strings.HasPrefix(a.Name, protocol.ReservedUserPrefix) {
		// The daemon's own records start so; no account may reach them.
		return fmt.Errorf("user %s resolves to the name %q, which starts with the reserved %q", auditField(rc.User), a.Name, protocol.ReservedUserPrefix)
	}
	rc.User = a.Name
	if rc.peer.UID != 0 && rc.peer.UID != a.UID {
		return nil // authorize refuses it: move nothing for it
	}
	return s.adoptRecord(rc.loginName, a.Name)
}

// authorize decides from the peer's uid alone whether it may perform the
// request, on the account resolveUser resolved (with its groups if
// withGroups). A refusal is audited.
func (s *Server) authorize(rc *reqCtx, withGroups bool) (account, error) {
	acc, ok := opAccess[rc.Op]
	if !ok {
		return account{}, fmt.Errorf("no access rule for %s", rc.Op)
	}
	a := rc.account
	if withGroups && !rc.withGroups && rc.User != "" {
		var err error
		if a, err = accounts.get(rc.User, true); err != nil {
			return account{}, err
		}
	}
	deny := func(msg string) (account, error) {
		s.auditDecision(rc, "denied", "permission", "detail", "peer may not perform this operation")
		return account{}, permissionDenied(msg)
	}
	switch acc {
	case anyone:
	case rootOnly:
		if rc.peer.UID != 0 {
			return deny("this operation needs root: run it with sudo")
		}
	case selfOrRoot:
		if rc.peer.UID != 0 && (!a.Known || a.UID != rc.peer.UID) {
			return deny("you may only act on your own account")
		}
	}
	return a, nil
}

// dropUntrustedContext clears the context of a request that only root's
// front ends (sshd's PAM module, sudo, otpgate-sshd) may supply: the remote
// address, the methods sshd verified and a prior factor. Each of them can
// change a decision or a counter (exempt networks, per-address limits,
// remembered devices, enrollment at login), and a local user could invent
// them: with an address, wrong codes for their own account would count
// against that address for everyone. From anyone else they are ignored, and
// the request is decided as a local one; the audit line says so.
func (s *Server) dropUntrustedContext(req *protocol.Request, peer Peer) {
	if peer.UID == 0 || req.RHost == "" && req.AuthInfo == "" && req.PriorFactor == "" {
		return
	}
	s.audit.Warn("caller context ignored", "op", req.Op, "user", req.User, "peer_uid", peer.UID, "peer_pid", peer.PID,
		"rhost", req.RHost, "detail", "only root may supply a remote address, verified methods or a prior factor")
	req.RHost, req.AuthInfo, req.PriorFactor = "", "", ""
}
