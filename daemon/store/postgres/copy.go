package postgres

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/otpgate/otpgate/daemon/store"
)

// ErrNotEmpty is returned by Copy when the destination already holds
// records.
var ErrNotEmpty = errors.New("store: the destination store is not empty")

// Copy copies every record of src into dst (bolt to postgres, or back),
// then reads each one back from dst and compares it with src. dst must be
// empty: Copy never merges or overwrites, so running it twice, or the
// wrong way round, changes nothing. The records are copied as they are:
// secrets stay sealed by the key file, which both sides must share. No
// otpgated may use either store meanwhile (the embedded store's file lock
// enforces that on its side; for PostgreSQL, stop every instance of the
// fleet). It returns the number of records copied.
func Copy(dst, src store.Store) (int, error) {
	empty := true
	err := dst.List("", func(*store.Record) error { empty = false; return store.ErrStop })
	if err != nil {
		return 0, fmt.Errorf("store: copy: read destination: %w", err)
	}
	if !empty {
		return 0, ErrNotEmpty
	}
	var users []string
	err = src.List("", func(rec *store.Record) error {
		err := dst.Update(rec.User, func(cur *store.Record) (*store.Record, error) {
			if cur != nil {
				return nil, fmt.Errorf("store: copy: destination gained a record for %q meanwhile (is an otpgated running?)", rec.User)
			}
			return rec, nil
		})
		if err != nil {
			return fmt.Errorf("store: copy %q: %w", rec.User, err)
		}
		users = append(users, rec.User)
		return nil
	})
	if err != nil {
		return len(users), err
	}
	for _, u := range users {
		if err := sameRecord(dst, src, u); err != nil {
			return len(users), err
		}
	}
	return len(users), nil
}

// sameRecord compares user's record in both stores by their JSON.
func sameRecord(dst, src store.Store, user string) error {
	a, err := src.Get(user)
	if err != nil {
		return fmt.Errorf("store: copy: verify %q: %w", user, err)
	}
	b, err := dst.Get(user)
	if err != nil {
		return fmt.Errorf("store: copy: verify %q: %w", user, err)
	}
	ja, err := json.Marshal(a)
	if err != nil {
		return err
	}
	jb, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if string(ja) != string(jb) {
		return fmt.Errorf("store: copy: %q differs after copying (was an otpgated running?)", user)
	}
	return nil
}
