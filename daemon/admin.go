package daemon

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/otpgate/otpgate/daemon/recovery"
	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// minImportSecretBytes is the shortest secret admin import accepts.
// google-authenticator's default is 80 bits, below RFC 4226's 128-bit
// MUST for new secrets; imported ones are kept (so migrating does not force
// everyone to re-enroll) and the import is audited with a warning.
const minImportSecretBytes = 10

// listPageSize users fit in one frame even with 256-byte names.
const listPageSize = 100

func (s *Server) adminList(rc *reqCtx) (*protocol.Response, error) {
	if _, err := s.authorize(rc, false); err != nil {
		return nil, err
	}
	withGroups := needsGroups(&rc.cfg.Policy)
	users := []protocol.UserStatus{}
	next := ""
	err := s.store.List(rc.After, func(rec *store.Record) error {
		if strings.HasPrefix(rec.User, protocol.ReservedUserPrefix) {
			return nil
		}
		if len(users) == listPageSize {
			next = users[len(users)-1].User
			return store.ErrStop
		}
		// A policy by name needs no lookup (listing 100 000 users must
		// not scan /etc/passwd 100 000 times); groups come through the
		// account cache, which lists the database once for a burst.
		a := account{Name: rec.User}
		if withGroups {
			var err error
			if a, err = accounts.get(rec.User, true); err != nil {
				return err
			}
		}
		users = append(users, s.userStatus(rc, rec, a))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rc.After == "" {
		s.auditDecision(rc, "ok", "admin_list")
	}
	return &protocol.Response{Users: users, Next: next}, nil
}

func (s *Server) adminReset(rc *reqCtx) (*protocol.Response, error) {
	if _, err := s.authorize(rc, false); err != nil {
		return nil, err
	}
	err := s.store.Update(rc.User, func(cur *store.Record) (*store.Record, error) {
		if cur == nil {
			return nil, &protocol.Error{Code: protocol.ErrNotFound, Message: rc.User + " has no enrollment or state to reset."}
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	s.auditDecision(rc, "reset", "admin_reset")
	return &protocol.Response{}, nil
}

func (s *Server) adminUnlock(rc *reqCtx) (*protocol.Response, error) {
	if _, err := s.authorize(rc, false); err != nil {
		return nil, err
	}
	err := s.store.Update(rc.User, func(cur *store.Record) (*store.Record, error) {
		if cur == nil {
			return nil, &protocol.Error{Code: protocol.ErrNotFound, Message: rc.User + " has no state to unlock."}
		}
		cur.Failures, cur.FailuresFromBlockedSources, cur.Lockouts, cur.AdminLocked = 0, 0, 0, false
		cur.Sources = nil
		cur.LockedUntil = time.Time{}
		return cur, nil
	})
	if err != nil {
		return nil, err
	}
	s.auditDecision(rc, "unlocked", "admin_unlock")
	return &protocol.Response{}, nil
}

func (s *Server) adminImport(rc *reqCtx) (*protocol.Response, error) {
	a, err := s.authorize(rc, false)
	if err != nil {
		return nil, err
	}
	if !a.Known {
		return nil, &protocol.Error{Code: protocol.ErrNotFound, Message: "no such user: " + rc.User}
	}
	im := rc.Import
	bad := func(format string, args ...any) error {
		return &protocol.Error{Code: protocol.ErrBadRequest, Message: rc.User + ": " + fmt.Sprintf(format, args...)}
	}
	secret, err := otp.DecodeSecret(im.Secret)
	if err != nil {
		return nil, bad("secret: %v", err)
	}
	defer clear(secret)
	if len(secret) < minImportSecretBytes {
		return nil, bad("secret is %d bits; at least %d are required", 8*len(secret), 8*minImportSecretBytes)
	}
	alg, err := otp.ParseAlgorithm(im.Algorithm)
	if err != nil {
		return nil, bad("algorithm: %v", err)
	}
	p := otp.Params{Algorithm: alg, Digits: im.Digits, Period: im.Period}
	if err := p.Validate(); err != nil {
		return nil, bad("%v", err)
	}
	sealed, err := s.sealer.Seal(rc.User, secret)
	if err != nil {
		return nil, err
	}
	enr := &store.Enrollment{SealedSecret: sealed, Algorithm: alg.String(), Digits: p.Digits, Period: p.Period, CreatedAt: rc.now, ActivatedAt: rc.now, Method: store.MethodImport}
	if len(im.RecoveryCodes) > 0 {
		if enr.RecoverySalt, err = recovery.NewSalt(); err != nil {
			return nil, err
		}
		for i, c := range im.RecoveryCodes {
			n, ok := normalizeRecovery(c)
			if !ok {
				return nil, bad("recovery code #%d must be 6 to 64 letters or digits", i+1)
			}
			enr.Recovery = append(enr.Recovery, hashRecoveryCode(enr.RecoverySalt, n))
		}
	}
	same := false
	err = s.store.Update(rc.User, func(cur *store.Record) (*store.Record, error) {
		if cur == nil {
			cur = &store.Record{User: rc.User}
		} else if cur.Active != nil && !im.Replace {
			// A second name of the account (sharing its home, so its
			// google-authenticator file) brings the secret the account
			// already has: nothing to do.
			if same = rc.loginName != rc.User && s.holdsSecret(rc.User, cur.Active, secret, p); same {
				return nil, errNoChange
			}
			return nil, &protocol.Error{Code: protocol.ErrConflict, Message: rc.User + " is already enrolled (use --replace to overwrite)"}
		}
		cur.Active, cur.Pending = enr, nil
		cur.Remembered = nil
		return cur, nil
	})
	if same && errors.Is(err, errNoChange) {
		s.auditDecision(rc, "active", "admin_import_same_account")
		return &protocol.Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	reason := "admin_import"
	if len(secret) < otp.MinSecretBytes {
		reason = "admin_import_short_secret"
	}
	s.auditDecision(rc, "active", reason)
	return &protocol.Response{}, nil
}

// holdsSecret reports whether enr, sealed for user, holds secret with the
// parameters p.
func (s *Server) holdsSecret(user string, enr *store.Enrollment, secret []byte, p otp.Params) bool {
	have, err := s.sealer.Open(user, enr.SealedSecret)
	if err != nil {
		return false
	}
	defer clear(have)
	return enr.Algorithm == p.Algorithm.String() && enr.Digits == p.Digits && enr.Period == p.Period &&
		subtle.ConstantTimeCompare(have, secret) == 1
}
