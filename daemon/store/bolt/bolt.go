// Package bolt is otpgated's embedded store: one bbolt file in the state
// directory, with group commit so that concurrent updates share one
// fsync.
package bolt

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/otpgate/otpgate/daemon/store"
)

var usersBucket = []byte("users")

// recordVersion is the first byte of every stored record.
const recordVersion = 1

// DB is a store.Store on a bbolt file. Updates are queued and committed in
// groups: whoever finds the queue idle becomes the committer and runs every
// queued update in one transaction, so N concurrent updates cost one fsync
// and an idle store adds no delay.
type DB struct {
	db   *bbolt.DB
	path string

	mu      sync.Mutex // guards queue, running, failed
	queue   []*update
	running bool
	failed  error // set for good after a failed commit
}

type update struct {
	user string
	fn   func(*store.Record) (*store.Record, error)
	done chan error
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the store in dir, which the caller has
// checked with store.PrepareStateDir. It fails if another process holds the
// store, or if the file does not pass an integrity check.
func Open(dir string) (*DB, error) {
	path := filepath.Join(dir, store.DBFile)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("state store %s is in use by another process (is another otpgated running?)", path)
		}
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	d := &DB{db: db, path: path}
	if err := d.check(); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

// check creates the bucket if needed and verifies the file: bbolt's page
// consistency check, then every record must decode.
func (d *DB) check() error {
	if err := d.db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(usersBucket)
		return err
	}); err != nil {
		return fmt.Errorf("state store %s: %w", d.path, err)
	}
	return d.db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("state store %s is corrupt: %v (restore it from a backup)", d.path, err)
		}
		return tx.Bucket(usersBucket).ForEach(func(k, v []byte) error {
			if _, err := decode(k, v); err != nil {
				return fmt.Errorf("state store %s is corrupt: %w", d.path, err)
			}
			return nil
		})
	})
}

func decode(k, v []byte) (*store.Record, error) {
	if len(v) == 0 || v[0] != recordVersion {
		return nil, fmt.Errorf("record %q has an unknown format", k)
	}
	var rec store.Record
	if err := json.Unmarshal(v[1:], &rec); err != nil {
		return nil, fmt.Errorf("record %q: %v", k, err)
	}
	if rec.User != string(k) {
		return nil, fmt.Errorf("record %q names user %q", k, rec.User)
	}
	return &rec, nil
}

func encode(rec *store.Record) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return append([]byte{recordVersion}, b...), nil
}

// Get returns the user's record or store.ErrNotFound.
func (d *DB) Get(user string) (*store.Record, error) {
	var rec *store.Record
	err := d.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(usersBucket).Get([]byte(user))
		if v == nil {
			return store.ErrNotFound
		}
		var err error
		rec, err = decode([]byte(user), v)
		return err
	})
	return rec, err
}

// List calls fn for each record in user name order.
func (d *DB) List(fn func(*store.Record) error) error {
	return d.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(usersBucket).ForEach(func(k, v []byte) error {
			rec, err := decode(k, v)
			if err != nil {
				return err
			}
			return fn(rec)
		})
	})
}

// Update applies fn to the user's record in a transaction and returns once
// the result is on disk. fn runs exactly once.
func (d *DB) Update(user string, fn func(*store.Record) (*store.Record, error)) error {
	u := &update{user: user, fn: fn, done: make(chan error, 1)}
	d.mu.Lock()
	if d.failed != nil {
		d.mu.Unlock()
		return d.failed
	}
	d.queue = append(d.queue, u)
	if !d.running {
		d.running = true
		go d.commitLoop()
	}
	d.mu.Unlock()
	return <-u.done
}

func (d *DB) commitLoop() {
	for {
		d.mu.Lock()
		batch := d.queue
		d.queue = nil
		if len(batch) == 0 {
			d.running = false
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		d.commit(batch)
	}
}

// commit runs a batch in one transaction. An update whose fn fails changes
// nothing and gets fn's error; the others commit. If the commit itself
// fails (e.g. fsync returned EIO), every caller gets the error and the
// store refuses all later writes: a failed fsync is never retried.
func (d *DB) commit(batch []*update) {
	results := make([]error, len(batch))
	err := d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(usersBucket)
		for i, u := range batch {
			results[i] = apply(b, u)
		}
		return nil
	})
	if err != nil {
		d.mu.Lock()
		if d.failed == nil {
			d.failed = fmt.Errorf("state store %s is read-only after a failed write (%v); fix the disk and restart otpgated", d.path, err)
		}
		failed := d.failed
		for _, u := range d.queue {
			u.done <- failed
		}
		d.queue = nil
		d.mu.Unlock()
		for _, u := range batch {
			u.done <- failed
		}
		return
	}
	for i, u := range batch {
		u.done <- results[i]
	}
}

func apply(b *bbolt.Bucket, u *update) error {
	key := []byte(u.user)
	var cur *store.Record
	if v := b.Get(key); v != nil {
		var err error
		if cur, err = decode(key, v); err != nil {
			return err
		}
	}
	next, err := u.fn(cur)
	if err != nil {
		return err
	}
	if next == nil {
		if cur == nil {
			return nil
		}
		return b.Delete(key)
	}
	next.User = u.user
	v, err := encode(next)
	if err != nil {
		return err
	}
	return b.Put(key, v)
}

// Close waits for queued updates and closes the file.
func (d *DB) Close() error {
	for {
		d.mu.Lock()
		idle := !d.running
		d.mu.Unlock()
		if idle {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return d.db.Close()
}
