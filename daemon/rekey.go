package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/otpgate/otpgate/daemon/store"
)

// Records are kept under the canonical name of their account (see
// userDB.resolve). Versions before that kept them under the name as typed,
// so a record may still sit under a second name of an account (useradd -o)
// or under a spelling a case-insensitive backend folds. Such a record is
// moved to the account's name: at start for the second names the user
// database lists (adoptListedRecords), and at the first request naming it
// otherwise (resolveUser).

// adoptRecord moves the record kept under from, another name of the
// account whose canonical name is to, to that name, if to has none: the
// secrets are opened with from and sealed again with to (the user name is
// their associated data), the record is written under to, and only then is
// the record under from deleted, if it did not change meanwhile. A crash
// in between leaves both, never neither. If to already has a record, that
// one is the account's: the other is left untouched and unused, and a
// warning names both.
func (s *Server) adoptRecord(from, to string) error {
	old, err := s.getRecord(from)
	if err != nil || old == nil {
		return err
	}
	cur, err := s.getRecord(to)
	if err != nil {
		return err
	}
	if cur != nil {
		s.warnTwoRecords(from, to)
		return nil
	}
	moved, err := s.resealRecord(old, from, to)
	if err != nil {
		return err
	}
	exists := false
	err = s.store.Update(to, func(cur *store.Record) (*store.Record, error) {
		if exists = cur != nil; exists {
			return nil, errNoChange
		}
		return moved, nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return fmt.Errorf("move the record of %s to %s: %w", auditField(from), to, err)
	}
	if exists {
		s.warnTwoRecords(from, to)
		return nil
	}
	changed := false
	err = s.store.Update(from, func(cur *store.Record) (*store.Record, error) {
		changed = cur != nil && !sameRecord(cur, old)
		if cur == nil || changed {
			return nil, errNoChange
		}
		return nil, nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return fmt.Errorf("remove the record of %s after moving it to %s: %w", auditField(from), to, err)
	}
	s.log.Info("record moved to the account's canonical name", "from", auditField(from), "to", to)
	if changed {
		s.warnTwoRecords(from, to)
	}
	return nil
}

// warnTwoRecords says that two names of one account have records.
func (s *Server) warnTwoRecords(from, to string) {
	s.log.Warn("two names of one account have records: the record of the account's canonical name is used, the other is left untouched and never used on this server",
		"account", to, "other_name", auditField(from))
}

// resealRecord returns a copy of rec, kept under from, for the user to:
// every sealed secret in it is opened as from's and sealed as to's.
func (s *Server) resealRecord(rec *store.Record, from, to string) (*store.Record, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	var out store.Record
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	out.User = to
	for _, enr := range []*store.Enrollment{out.Active, out.Pending} {
		if enr == nil {
			continue
		}
		secret, err := s.sealer.Open(from, enr.SealedSecret)
		if err != nil {
			return nil, fmt.Errorf("move the record of %s to %s: %w", auditField(from), to, err)
		}
		enr.SealedSecret, err = s.sealer.Seal(to, secret)
		clear(secret)
		if err != nil {
			return nil, err
		}
	}
	return &out, nil
}

// sameRecord reports whether a and b hold the same state.
func sameRecord(a, b *store.Record) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// adoptListedRecords moves, at start, the records kept under a second
// name of an account that the user database lists (useradd -o): one
// listing, and a store read per such name. A listing failure is only
// logged (the records then move at their first use); a store failure is
// returned.
func (s *Server) adoptListedRecords() error {
	if accounts.list == nil {
		return nil
	}
	l, err := accounts.list(accounts.listMax)
	if err != nil {
		s.log.Warn("cannot list the user database: records under second names of accounts move at their first use instead", "err", err)
		return nil
	}
	for name, uid := range l.uids {
		if l.names[uid] == name {
			continue
		}
		rec, err := s.getRecord(name)
		if err != nil {
			return err
		}
		if rec == nil {
			continue
		}
		// NSS, not the listing, says which account the name is.
		a, err := accounts.get(name, false)
		if err != nil {
			s.log.Warn("cannot resolve a user with a record; it moves at its first use instead", "user", auditField(name), "err", err)
			continue
		}
		if !a.Known || a.Name == name {
			continue
		}
		if err := s.adoptRecord(name, a.Name); err != nil {
			return err
		}
	}
	return nil
}
