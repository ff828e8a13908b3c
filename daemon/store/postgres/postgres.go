// Package postgres is otpgated's shared store: the per-user records in a
// PostgreSQL database, so that several otpgated instances (a fleet of
// servers holding the same key file) share enrollments, replay protection,
// failure counters and lockouts.
//
// Update runs the daemon's check-and-change function inside one
// transaction that holds the user's row lock (INSERT ... ON CONFLICT DO
// NOTHING, then SELECT ... FOR UPDATE), so concurrent requests for one
// user on any number of servers are serialized by the database, and
// returns after COMMIT, which with synchronous_commit on (enforced per
// connection) means the change is flushed to the database's WAL. Every
// operation has a deadline (Options.Timeout): an unreachable or stuck
// database makes operations fail, and the daemon denies (fails closed).
//
// The schema is created and migrated by Open from embedded, numbered SQL
// files, recorded in otpgate_schema_version; Open refuses a database whose
// schema is newer than this build knows.
package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/otpgate/otpgate/daemon/store"
)

// DefaultTimeout bounds each operation when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// DefaultMaxConns is the pool size when Options.MaxConns is zero.
const DefaultMaxConns = 8

// listPage is how many records List reads per query.
const listPage = 100

// maxLockRetries bounds how often Update re-creates a row that another
// transaction deleted while this one waited for its lock.
const maxLockRetries = 5

// Options tunes a DB.
type Options struct {
	// Timeout bounds every operation: waiting for a connection, the
	// queries and the commit (default DefaultTimeout). The same bound is
	// set on the server as statement_timeout, lock_timeout and
	// idle_in_transaction_session_timeout (unless the DSN sets them), so
	// a lost client cannot hold a user's row lock for long.
	Timeout time.Duration
	// MaxConns caps the open connections (default DefaultMaxConns).
	MaxConns int
}

// DB is a store.Store on a PostgreSQL database.
type DB struct {
	pool    *pool
	timeout time.Duration
	name    string // "postgres database NAME on HOST", for messages

	mu     sync.RWMutex // guards closed; held (read) by every operation
	closed bool
}

var _ store.Store = (*DB)(nil)

// ErrSchemaTooNew is returned by Open when the database was migrated by a
// newer otpgated.
var ErrSchemaTooNew = errors.New("postgres: database schema is newer than this otpgated supports; upgrade otpgated")

// Open connects to the database of dsn (a libpq connection string or
// URL), checks that the server is durable (fsync on), creates or migrates
// the schema and returns the store. Error messages never contain the DSN's
// password.
func Open(dsn string, opts Options) (*DB, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx redacts the password in its parse errors; say no more.
		return nil, fmt.Errorf("postgres: invalid DSN: %w", err)
	}
	ms := strconv.FormatInt(opts.Timeout.Milliseconds(), 10)
	for k, v := range map[string]string{
		"application_name":                    "otpgated",
		"statement_timeout":                   ms,
		"lock_timeout":                        ms,
		"idle_in_transaction_session_timeout": ms,
	} {
		if _, set := cfg.RuntimeParams[k]; !set {
			cfg.RuntimeParams[k] = v
		}
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > opts.Timeout {
		cfg.ConnectTimeout = opts.Timeout
	}
	d := &DB{
		pool:    newPool(cfg, opts.MaxConns, setupConn),
		timeout: opts.Timeout,
		name:    fmt.Sprintf("postgres database %s on %s", cfg.Database, cfg.Host),
	}
	if err := d.migrate(); err != nil {
		d.pool.close()
		return nil, err
	}
	return d, nil
}

// setupConn runs on each new connection: it refuses a server that does
// not fsync, and turns synchronous_commit back on if the server or role
// turned it off, so that COMMIT returns only once the WAL is flushed.
// Stronger settings (remote_write, remote_apply) are kept.
func setupConn(ctx context.Context, c *pgx.Conn) error {
	var fsync, syncCommit string
	err := c.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &syncCommit)
	if err != nil {
		return fmt.Errorf("read durability settings: %w", err)
	}
	if fsync != "on" {
		return errors.New("the PostgreSQL server runs with fsync=off: a crash could undo accepted codes and lockouts; refusing to use it")
	}
	if syncCommit == "off" {
		if _, err := c.Exec(ctx, "SET synchronous_commit TO on"); err != nil {
			return fmt.Errorf("set synchronous_commit: %w", err)
		}
	}
	return nil
}

// op starts an operation: it fails if the store is closed, and returns a
// context with the operation's deadline and a function that ends both.
func (d *DB) op() (context.Context, func(), error) {
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return nil, nil, fmt.Errorf("%s: %w", d.name, store.ErrClosed)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	return ctx, func() { cancel(); d.mu.RUnlock() }, nil
}

// withConn runs f on a pooled connection. f reports whether the connection
// is still fit for reuse, and whether its failure may be retried. If f
// fails on a connection that sat idle in the pool, retryable, f runs once
// more on a fresh connection, so the first request after a database
// restart does not fail.
func (d *DB) withConn(ctx context.Context, f func(c *pgx.Conn) (healthy, retryable bool, err error)) error {
	for {
		c, reused, err := d.pool.acquire(ctx)
		if err != nil {
			return err
		}
		healthy, retryable := false, false
		func() {
			// Deferred so that a panic in f (an update function's) also
			// releases, and so closes, the connection.
			defer func() { d.pool.release(c, healthy) }()
			healthy, retryable, err = f(c)
		}()
		if err == nil || !reused || !retryable {
			return err
		}
	}
}

// checkName refuses names PostgreSQL's text type cannot hold.
func checkName(user string) error {
	switch {
	case user == "":
		return errors.New("store: empty user name")
	case strings.IndexByte(user, 0) >= 0 || !utf8.ValidString(user):
		return fmt.Errorf("store: user name %q contains a NUL byte or invalid UTF-8", user)
	}
	return nil
}

// decode parses a stored record strictly, like the embedded store: a field
// this version does not know (written by a newer otpgated) is an error, not
// silently dropped.
func decode(name string, js []byte) (*store.Record, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var rec store.Record
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("record %q does not decode: %w", name, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("record %q has data after its JSON", name)
	}
	if rec.User != name {
		return nil, fmt.Errorf("record %q names user %q", name, rec.User)
	}
	return &rec, nil
}

// Get returns the user's record or store.ErrNotFound.
func (d *DB) Get(user string) (*store.Record, error) {
	if err := checkName(user); err != nil {
		return nil, err
	}
	ctx, done, err := d.op()
	if err != nil {
		return nil, err
	}
	defer done()
	var js []byte
	err = d.withConn(ctx, func(c *pgx.Conn) (bool, bool, error) {
		err := c.QueryRow(ctx, "SELECT record FROM otpgate_users WHERE name = $1 AND record IS NOT NULL", user).Scan(&js)
		return err == nil || errors.Is(err, pgx.ErrNoRows), pgconn.SafeToRetry(err), err
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, store.ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("%s: get %q: %w", d.name, user, err)
	}
	rec, err := decode(user, js)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.name, err)
	}
	return rec, nil
}

// List calls fn for each record after the user name after, in bytewise
// user name order. It reads listPage records per query (keyset
// pagination) and calls fn between queries, holding no connection or
// transaction, so a listing is not one snapshot: a record changed
// meanwhile may be seen old or new. It stops at, and returns, the first
// error; store.ErrStop stops it without error.
func (d *DB) List(after string, fn func(*store.Record) error) error {
	for {
		page, err := d.listPage(after)
		if err != nil {
			return err
		}
		for _, rec := range page {
			if err := fn(rec); err != nil {
				if errors.Is(err, store.ErrStop) {
					return nil
				}
				return err
			}
		}
		if len(page) < listPage {
			return nil
		}
		after = page[len(page)-1].User
	}
}

func (d *DB) listPage(after string) ([]*store.Record, error) {
	ctx, done, err := d.op()
	if err != nil {
		return nil, err
	}
	defer done()
	var page []*store.Record
	err = d.withConn(ctx, func(c *pgx.Conn) (bool, bool, error) {
		page = page[:0]
		rows, err := c.Query(ctx, "SELECT name, record FROM otpgate_users WHERE name > $1 AND record IS NOT NULL ORDER BY name LIMIT $2", after, listPage)
		if err != nil {
			return false, pgconn.SafeToRetry(err), err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var js []byte
			if err := rows.Scan(&name, &js); err != nil {
				return false, false, err
			}
			rec, err := decode(name, js)
			if err != nil {
				return false, false, err
			}
			page = append(page, rec)
		}
		return rows.Err() == nil, pgconn.SafeToRetry(rows.Err()), rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list: %w", d.name, err)
	}
	return page, nil
}

// Update runs fn on the user's record inside one transaction that holds
// the row's lock, writes the result and commits. fn gets the current record
// (nil when there is none) and returns the record to store (its User is set
// to user) or nil to delete it; fn runs exactly once, in the caller's
// goroutine. If fn returns an error (or panics) the transaction is rolled
// back and nothing changes. Update returns nil only after COMMIT
// succeeded; any other outcome, including a lost connection during
// COMMIT, is an error, which the daemon treats as a denial.
func (d *DB) Update(user string, fn func(*store.Record) (*store.Record, error)) error {
	if err := checkName(user); err != nil {
		return fmt.Errorf("store: update: %w", err)
	}
	ctx, done, err := d.op()
	if err != nil {
		return err
	}
	defer done()
	var fnErr error
	err = d.withConn(ctx, func(c *pgx.Conn) (bool, bool, error) {
		var err error
		var fnCalled bool
		fnCalled, fnErr, err = d.update(ctx, c, user, fn)
		// Never retried once fn ran: its decision may have been written.
		return err == nil && c.PgConn().TxStatus() == 'I', !fnCalled && pgconn.SafeToRetry(err), err
	})
	if err != nil {
		return fmt.Errorf("%s: update %q: %w", d.name, user, err)
	}
	return fnErr
}

// update is Update's transaction. fnCalled says fn ran; fnErr is fn's own
// error (the transaction was rolled back); err is a database error.
func (d *DB) update(ctx context.Context, c *pgx.Conn, user string, fn func(*store.Record) (*store.Record, error)) (fnCalled bool, fnErr, err error) {
	tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return false, nil, fmt.Errorf("begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback(ctx)
		}
	}()
	// Lock the row, creating it first if needed: a missing row cannot
	// be locked, and two transactions that both saw "no row" could both
	// create the user. The INSERT waits for any other transaction that is
	// creating the same row; SELECT ... FOR UPDATE waits for any that holds
	// it. A row deleted by the transaction we waited for is gone from the
	// SELECT, so the pair is repeated (the INSERT then succeeds).
	var js []byte
	for attempt := 0; ; attempt++ {
		b := &pgx.Batch{}
		b.Queue("INSERT INTO otpgate_users (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", user)
		b.Queue("SELECT record FROM otpgate_users WHERE name = $1 FOR UPDATE", user)
		br := tx.SendBatch(ctx, b)
		_, err := br.Exec()
		if err == nil {
			err = br.QueryRow().Scan(&js)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			break
		}
		if !errors.Is(err, pgx.ErrNoRows) || attempt == maxLockRetries {
			return false, nil, fmt.Errorf("lock row: %w", err)
		}
	}
	var cur *store.Record
	if js != nil {
		if cur, err = decode(user, js); err != nil {
			return false, nil, err
		}
	}
	next, err := fn(cur)
	if err != nil {
		return true, err, tx.Rollback(ctx)
	}
	switch {
	case next == nil && cur == nil:
		// Nothing to store: the rollback drops the row inserted above.
		return true, nil, tx.Rollback(ctx)
	case next == nil:
		_, err = tx.Exec(ctx, "DELETE FROM otpgate_users WHERE name = $1", user)
	default:
		next.User = user
		var v []byte
		if v, err = json.Marshal(next); err != nil {
			return true, nil, fmt.Errorf("encode record: %w", err)
		}
		_, err = tx.Exec(ctx, "UPDATE otpgate_users SET record = $2, updated_at = now() WHERE name = $1", user, v)
	}
	if err != nil {
		return true, nil, fmt.Errorf("write: %w", err)
	}
	committed = true
	if err := tx.Commit(ctx); err != nil {
		return true, nil, fmt.Errorf("commit (the change may or may not have been applied): %w", err)
	}
	return true, nil, nil
}

// Close waits for running operations, refuses new ones and closes the
// connections.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%s: %w", d.name, store.ErrClosed)
	}
	d.closed = true
	d.pool.close()
	return nil
}

// maxDSNFile bounds the DSN file's size.
const maxDSNFile = 4096

// ReadDSNFile reads a connection string from path, which must be a regular
// file owned by root with mode 0600 (it usually holds a password), not a
// symlink. Surrounding white space is removed.
func ReadDSNFile(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return "", fmt.Errorf("store: DSN file %s is a symlink; it must be a regular file owned by root with mode 0600", path)
	}
	if err != nil {
		return "", fmt.Errorf("store: DSN file: %w", err)
	}
	defer f.Close()
	if err := store.CheckFile(f, path); err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxDSNFile+1))
	if err != nil {
		return "", fmt.Errorf("store: read DSN file %s: %w", path, err)
	}
	if len(b) > maxDSNFile {
		return "", fmt.Errorf("store: DSN file %s is larger than %d bytes", path, maxDSNFile)
	}
	dsn := strings.TrimSpace(string(b))
	if dsn == "" {
		return "", fmt.Errorf("store: DSN file %s is empty", path)
	}
	return dsn, nil
}
