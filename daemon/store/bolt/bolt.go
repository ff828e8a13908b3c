// Package bolt is otpgated's embedded store: one bbolt file in the state
// directory, with group commit so that concurrent updates share one
// fsync.
package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/otpgate/otpgate/daemon/store"
)

var usersBucket = []byte("users")

// recordVersion is the first byte of every stored value. Version 2 is
// the byte, a big-endian CRC-32C of the key and the JSON, then the JSON of
// a store.Record. bbolt has no page checksums, and JSON survives many byte
// changes (a counter digit, a field name), so without the CRC such damage
// would load silently.
const recordVersion = 2

// recordHeader is the version byte plus the CRC.
const recordHeader = 1 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func recordCRC(key, js []byte) uint32 {
	return crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, js)
}

// lockTimeout is how long Open waits for another process's lock on the
// file before giving up.
const lockTimeout = time.Second

// maxCheckErrors bounds how many integrity problems Open reports.
const maxCheckErrors = 5

// DB is a store.Store on a bbolt file.
//
// Updates are committed in groups (leader/follower). Update queues its
// request. If no commit is under way, the caller becomes the committer: it
// takes the queue (its own request, plus any that raced in), runs it in
// one bbolt read-write transaction, commits (bbolt writes and fdatasyncs
// the data pages, then the meta page) and replies to each request only
// after the commit returned; so an idle store adds no delay and no
// goroutine hand-off. Requests that arrive during a commit wait; when it
// ends, a background committer takes them all as the next group, so N
// concurrent updates cost a few commits instead of N. There is no
// batching timer.
//
// Each fn runs exactly once. An fn that returns an error (or panics) has
// written nothing, so only its caller is affected and the rest of the
// group commits. If the commit itself fails, every caller in the group
// gets an error wrapping store.ErrReadOnly, and so does every later
// Update: a failed fsync is never retried.
type DB struct {
	db   *bbolt.DB
	path string

	mu      sync.Mutex // guards the fields below
	queue   []*request
	running bool  // a committer goroutine is active
	failed  error // set for good after a failed commit
	closed  bool
	wg      sync.WaitGroup // committer goroutines
}

type request struct {
	user string
	fn   func(*store.Record) (*store.Record, error)
	done chan error // buffered, receives exactly one value
}

// fnPanic carries a panic from an update function back to its caller's
// goroutine, where Update re-raises it.
type fnPanic struct{ value any }

func (p *fnPanic) Error() string { return fmt.Sprintf("store: update function panicked: %v", p.value) }

var _ store.Store = (*DB)(nil)

// Open opens the store in the state directory dir, creating the database
// file if needed. dir must pass store.CheckStateDir (create it with
// store.PrepareStateDir). Open fails if another process holds the store
// (after waiting one second), or if the file fails the integrity check:
// bbolt's page check, then every record must decode.
func Open(dir string) (_ *DB, err error) {
	if err := store.CheckStateDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, store.DBFile)
	if err := createFile(path); err != nil {
		return nil, err
	}
	var db *bbolt.DB
	err = recoverPanic(func() error {
		var err error
		db, err = bbolt.Open(path, 0o600, &bbolt.Options{
			Timeout:  lockTimeout,
			OpenFile: openExisting,
			// NoSync, NoGrowSync and NoFreelistSync stay false: a
			// commit returns only after its pages are on disk.
		})
		return err
	})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("state store %s is in use by another process (is another otpgated running?)", path)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
		errors.Is(err, bolterrors.ErrVersionMismatch), errors.As(err, new(*panicError)):
		return nil, fmt.Errorf("state store %s is corrupt or not an otpgate store: %w (restore it from a backup)", path, err)
	case err != nil:
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	d := &DB{db: db, path: path}
	if err := d.check(); err != nil {
		if cerr := db.Close(); cerr != nil {
			return nil, fmt.Errorf("%w (and closing it failed: %w)", err, cerr)
		}
		return nil, err
	}
	return d, nil
}

// createFile creates the database file (0600, O_EXCL, O_NOFOLLOW) if it
// does not exist, and fsyncs the directory so the new name survives a
// power loss.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600) //nolint:gosec // the path is root's configuration
	if errors.Is(err, os.ErrExist) {
		return nil // Open checks the existing file.
	}
	if err != nil {
		return fmt.Errorf("create state store %s: %w", path, err)
	}
	err = f.Chmod(0o600) // in case the umask cleared owner bits
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create state store %s: %w", path, err)
	}
	if err := store.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("create state store %s: %w", path, err)
	}
	return nil
}

// openExisting is bbolt's OpenFile: it never creates (createFile did),
// never follows a symlink, and refuses a file that is not a regular
// root-owned 0600 file.
func openExisting(path string, flag int, _ os.FileMode) (*os.File, error) {
	flag &^= os.O_CREATE
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("state store %s is a symlink; it must be a regular file owned by root with mode 0600", path)
	}
	if err != nil {
		return nil, err
	}
	if err := store.CheckFile(f, path); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// panicError is a panic inside bbolt (it panics on some corrupt pages)
// turned into an error.
type panicError struct{ value any }

func (p *panicError) Error() string { return fmt.Sprintf("bbolt panicked: %v", p.value) }

func recoverPanic(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{r}
		}
	}()
	return f()
}

// check creates the bucket if needed and verifies the file: bbolt's page
// consistency check, then every record must decode.
func (d *DB) check() error {
	corrupt := func(err error) error {
		return fmt.Errorf("state store %s is corrupt: %w (restore it from a backup)", d.path, err)
	}
	var problems []error
	haveBucket := false
	err := recoverPanic(func() error {
		return d.db.View(func(tx *bbolt.Tx) error {
			// Drain the whole channel: the checker goroutine reads
			// the mmap and must finish before the transaction ends.
			for err := range tx.Check() {
				if len(problems) < maxCheckErrors {
					problems = append(problems, err)
				}
			}
			if len(problems) > 0 {
				return nil
			}
			b := tx.Bucket(usersBucket)
			if b == nil {
				return nil // new file; created below
			}
			haveBucket = true
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					return fmt.Errorf("unexpected nested bucket %q in %q", k, usersBucket)
				}
				_, err := decode(k, v)
				return err
			})
		})
	})
	if len(problems) > 0 {
		return corrupt(errors.Join(problems...))
	}
	if err != nil {
		return corrupt(err)
	}
	if haveBucket {
		return nil // opening an existing store writes nothing
	}
	err = d.db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(usersBucket)
		return err
	})
	if err != nil {
		return fmt.Errorf("state store %s: create bucket %q: %w", d.path, usersBucket, err)
	}
	return nil
}

func decode(k, v []byte) (*store.Record, error) {
	if len(v) < recordHeader || v[0] != recordVersion {
		return nil, fmt.Errorf("record %q has an unknown format (want version byte %d)", k, recordVersion)
	}
	js := v[recordHeader:]
	if got, want := recordCRC(k, js), binary.BigEndian.Uint32(v[1:recordHeader]); got != want {
		return nil, fmt.Errorf("record %q fails its checksum (crc32c %08x, stored %08x)", k, got, want)
	}
	// Strict: a field this version does not know (written by a newer
	// otpgated, say a new lock flag) must not be dropped silently.
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var rec store.Record
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("record %q does not decode: %w", k, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("record %q has data after its JSON", k)
	}
	if rec.User != string(k) {
		return nil, fmt.Errorf("record %q names user %q", k, rec.User)
	}
	return &rec, nil
}

func encode(key []byte, rec *store.Record) ([]byte, error) {
	js, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	v := make([]byte, recordHeader, recordHeader+len(js))
	v[0] = recordVersion
	binary.BigEndian.PutUint32(v[1:], recordCRC(key, js))
	return append(v, js...), nil
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
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("state store %s: get %q: %w", d.path, user, err)
	}
	return rec, err
}

// List calls fn for each record after the user name after, in user name
// order (bytewise). It stops at, and returns, the first error; store.ErrStop
// stops it without error.
func (d *DB) List(after string, fn func(*store.Record) error) error {
	err := d.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(usersBucket).Cursor()
		k, v := c.First()
		if after != "" {
			k, v = c.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			rec, err := decode(k, v)
			if err != nil {
				return fmt.Errorf("state store %s: %w", d.path, err)
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrStop) {
		return nil
	}
	return err
}

// Update applies fn to the user's record in a transaction and returns once
// the result is on disk (see DB for the group commit). fn gets the current
// record, or nil when there is none, and returns the record to store (its
// User is set to user) or nil to delete it. fn runs exactly once; if it
// returns an error nothing is written and Update returns that error; if
// it panics, Update panics with the same value in the caller's goroutine.
// fn runs inside the store's write transaction, possibly on another
// goroutine, so it must not call the store itself.
func (d *DB) Update(user string, fn func(*store.Record) (*store.Record, error)) error {
	if user == "" {
		return errors.New("store: update: empty user name")
	}
	r := &request{user: user, fn: fn, done: make(chan error, 1)}
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return fmt.Errorf("state store %s: %w", d.path, store.ErrClosed)
	case d.failed != nil:
		d.mu.Unlock()
		return d.failed
	}
	d.queue = append(d.queue, r)
	lead := !d.running
	if lead {
		d.running = true
		d.wg.Add(1)
	}
	d.mu.Unlock()
	if lead {
		// The committer was idle: commit this caller's group in its own
		// goroutine, with no hand-off, then pass on to a background
		// committer if more requests arrived meanwhile.
		if d.commitGroup() {
			d.handOff()
		}
	}
	err := <-r.done
	var p *fnPanic
	if errors.As(err, &p) {
		panic(p.value)
	}
	return err
}

// commitLoop commits queued requests, one group per transaction, until
// the queue is empty.
func (d *DB) commitLoop() {
	for d.commitGroup() {
	}
}

// commitGroup is run by the committer (d.running): it commits every queued
// request in one transaction and returns true, or, if the queue is empty
// or the store has failed, answers what is queued, marks the committer
// idle and returns false.
func (d *DB) commitGroup() bool {
	d.mu.Lock()
	group := d.queue
	d.queue = nil
	if d.idleIf(group) {
		return false
	}
	d.mu.Unlock()
	d.commit(group)
	return true
}

// handOff is called by a caller that committed its own group as the
// committer: it goes idle if nothing is queued, and otherwise leaves the
// queue to a background commitLoop so that it can return.
func (d *DB) handOff() {
	d.mu.Lock()
	if d.idleIf(d.queue) {
		return
	}
	d.mu.Unlock()
	go d.commitLoop()
}

// idleIf, with d.mu held, marks the committer idle when queued (the
// requests taken or still in d.queue) is empty or the store has failed;
// each queued request then gets d.failed. It unlocks d.mu and returns true
// if it went idle; otherwise it keeps d.mu locked.
func (d *DB) idleIf(queued []*request) bool {
	if len(queued) > 0 && d.failed == nil {
		return false
	}
	for _, r := range queued {
		r.done <- d.failed
	}
	d.queue = nil
	d.running = false
	d.mu.Unlock()
	d.wg.Done()
	return true
}

// commit runs a group in one transaction. A request whose fn fails has
// written nothing and gets fn's error; the others commit. If the commit
// itself fails (for example fsync returned EIO), every caller in the group
// gets an error wrapping store.ErrReadOnly and the store refuses all later
// writes.
func (d *DB) commit(group []*request) {
	results := make([]error, len(group))
	err := recoverPanic(func() error {
		return d.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(usersBucket)
			// Records are small and mostly rewritten in place: pack pages
			// densely (bbolt's default of 0.5 doubles the file, and the
			// mapped file counts in the daemon's resident memory).
			b.FillPercent = 0.9
			for i, r := range group {
				results[i] = apply(b, r)
			}
			return nil
		})
	})
	if err != nil {
		d.mu.Lock()
		if d.failed == nil {
			d.failed = fmt.Errorf("state store %s: %w (the failed write: %w)", d.path, store.ErrReadOnly, err)
		}
		failed := d.failed
		d.mu.Unlock()
		for _, r := range group {
			r.done <- failed
		}
		return
	}
	for i, r := range group {
		r.done <- results[i]
	}
}

// apply runs one request inside the group's transaction. It writes only
// after fn succeeded, and bbolt's Put and Delete validate before they
// modify, so a failed request leaves the transaction as it found it.
func apply(b *bbolt.Bucket, r *request) error {
	key := []byte(r.user)
	var cur *store.Record
	if v := b.Get(key); v != nil {
		var err error
		if cur, err = decode(key, v); err != nil {
			return err
		}
	}
	next, err := callFn(r.fn, cur)
	if err != nil {
		return err
	}
	if next == nil {
		if cur == nil {
			return nil
		}
		return b.Delete(key)
	}
	next.User = r.user
	v, err := encode(key, next)
	if err != nil {
		return fmt.Errorf("store: encode record %q: %w", r.user, err)
	}
	return b.Put(key, v)
}

func callFn(fn func(*store.Record) (*store.Record, error), cur *store.Record) (next *store.Record, err error) {
	defer func() {
		if r := recover(); r != nil {
			next, err = nil, &fnPanic{r}
		}
	}()
	return fn(cur)
}

// Close waits for queued updates to commit, refuses new ones, and closes
// the file. Get and List fail after Close.
func (d *DB) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("state store %s: %w", d.path, store.ErrClosed)
	}
	d.closed = true
	d.mu.Unlock()
	d.wg.Wait()
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("close state store %s: %w", d.path, err)
	}
	return nil
}
