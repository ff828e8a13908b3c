//go:build root

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otpgate/otpgate/daemon/store"
	"github.com/otpgate/otpgate/daemon/store/bolt"
	"github.com/otpgate/otpgate/daemon/store/postgres"
	"github.com/otpgate/otpgate/daemon/store/postgres/pgtest"
	"github.com/otpgate/otpgate/daemon/store/storetest"
)

// server is the PostgreSQL server every test of this package shares; each
// test gets a database of its own.
var server *pgtest.Server

// serverErr is why server could not start; tests fail with it.
var serverErr error

func TestMain(m *testing.M) {
	server, serverErr = pgtest.Start()
	code := m.Run()
	if server != nil {
		server.Remove()
	}
	os.Exit(code)
}

// newDSN returns the DSN of a fresh database.
func newDSN(t testing.TB) string {
	t.Helper()
	if serverErr != nil {
		t.Fatalf("no PostgreSQL server for the test (apt-get install %s): %v", pgtest.Package, serverErr)
	}
	dsn, err := server.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// openDB opens a store on dsn and closes it at the end of the test.
func openDB(t testing.TB, dsn string, opts postgres.Options) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		t.Helper()
		db, err := postgres.Open(newDSN(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// Two stores on one database are two daemons of a fleet: concurrent
// updates through both are serialized by the row lock.
func TestConcurrentUpdatesThroughTwoStores(t *testing.T) {
	dsn := newDSN(t)
	a := openDB(t, dsn, postgres.Options{MaxConns: 4})
	b := openDB(t, dsn, postgres.Options{MaxConns: 4})
	const n = 64
	storetest.ConcurrentIncrements(t, []store.Store{a, b}, "alice", n)
	for name, s := range map[string]*postgres.DB{"a": a, "b": b} {
		rec, err := s.Get("alice")
		if err != nil {
			t.Fatal(err)
		}
		if rec.Failures != n {
			t.Errorf("store %s sees Failures %d, want %d", name, rec.Failures, n)
		}
	}
}

func TestSchemaVersioning(t *testing.T) {
	dsn := newDSN(t)
	// Three instances starting at once migrate once.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() {
			db, err := postgres.Open(dsn, postgres.Options{})
			if err == nil {
				db.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	var versions []int
	if err := query(dsn, "SELECT version FROM otpgate_schema_version ORDER BY version", func(r pgx.Rows) error {
		var v int
		versions = append(versions, v)
		return r.Scan(&versions[len(versions)-1])
	}); err != nil {
		t.Fatal(err)
	}
	if len(versions) != postgres.SchemaVersion() || versions[len(versions)-1] != postgres.SchemaVersion() {
		t.Errorf("schema versions %v, want 1..%d once each", versions, postgres.SchemaVersion())
	}

	// A database migrated by a newer otpgated is refused.
	if err := pgtest.Exec(dsn, "INSERT INTO otpgate_schema_version (version) VALUES ($1)", postgres.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.Open(dsn, postgres.Options{})
	if !errors.Is(err, postgres.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema = %v, want ErrSchemaTooNew", err)
	}
	if want := fmt.Sprintf("schema version %d, this otpgated knows up to %d", postgres.SchemaVersion()+1, postgres.SchemaVersion()); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// query runs sql and calls fn for each row.
func query(dsn, sql string, fn func(pgx.Rows) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, sql)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func TestRefusesBadRecords(t *testing.T) {
	dsn := newDSN(t)
	db := openDB(t, dsn, postgres.Options{})
	tests := []struct {
		name, user, json, want string
	}{
		{"an unknown field (a newer otpgated's)", "u1", `{"user":"u1","new_lock":true}`, `unknown field "new_lock"`},
		{"a record naming another user", "u2", `{"user":"mallory"}`, `names user "mallory"`},
		{"a wrong type", "u3", `{"user":"u3","failures":"many"}`, `does not decode`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := pgtest.Exec(dsn, "INSERT INTO otpgate_users (name, record) VALUES ($1, $2::jsonb)", tt.user, tt.json); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Get(tt.user); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Get = %v, want an error with %q", err, tt.want)
			}
			called := false
			err := db.Update(tt.user, func(cur *store.Record) (*store.Record, error) { called = true; return cur, nil })
			if err == nil || called {
				t.Errorf("Update = %v (fn called: %v), want an error before fn", err, called)
			}
		})
	}
	for _, name := range []string{"", "a\x00b", "\xff"} {
		if err := db.Update(name, func(*store.Record) (*store.Record, error) { return &store.Record{}, nil }); err == nil {
			t.Errorf("Update(%q) = nil, want an error", name)
		}
	}
}

// A row lock held elsewhere (a stuck peer) makes Update fail after the
// timeout instead of hanging a login.
func TestUpdateTimesOutOnAHeldLock(t *testing.T) {
	dsn := newDSN(t)
	db := openDB(t, dsn, postgres.Options{Timeout: 500 * time.Millisecond})
	put := func(s *postgres.DB, n int) error {
		return s.Update("alice", func(*store.Record) (*store.Record, error) { return &store.Record{Failures: n}, nil })
	}
	if err := put(db, 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM otpgate_users WHERE name = 'alice' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = put(db, 2)
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("Update with the row locked elsewhere: %v after %v, want an error within about 500ms", err, time.Since(start))
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := put(db, 3); err != nil {
		t.Fatalf("Update after the lock was released: %v", err)
	}
	if rec, err := db.Get("alice"); err != nil || rec.Failures != 3 {
		t.Errorf("Get = %+v, %v; want Failures 3", rec, err)
	}
}

func TestUpdatePanicRollsBack(t *testing.T) {
	db := openDB(t, newDSN(t), postgres.Options{MaxConns: 1})
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the function's panic", r)
			}
		}()
		_ = db.Update("alice", func(*store.Record) (*store.Record, error) { panic("boom") }) // panics: no result
	}()
	// With one connection, a leaked one would block this until the timeout.
	if _, err := db.Get("alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after a panicking create = %v, want ErrNotFound", err)
	}
}

// The database going away makes every operation fail (the daemon denies)
// within the timeout, and the store works again once it is back, without
// reopening.
func TestDatabaseDownFailsClosedAndRecovers(t *testing.T) {
	// A server of its own: this test stops it.
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatalf("apt-get install %s: %v", pgtest.Package, err)
	}
	defer srv.Remove()
	dsn, err := srv.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, dsn, postgres.Options{Timeout: 2 * time.Second})
	inc := func() error {
		return db.Update("alice", func(cur *store.Record) (*store.Record, error) {
			if cur == nil {
				cur = &store.Record{}
			}
			cur.Failures++
			return cur, nil
		})
	}
	if err := inc(); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			// Several idle connections, all of which die with the server.
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if _, err := db.Get("alice"); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if err := srv.Stop(sig); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := inc(); err == nil {
				t.Error("Update with the database down succeeded")
			}
			if _, err := db.Get("alice"); err == nil {
				t.Error("Get with the database down succeeded")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("failing took %v, want at most the timeouts", d)
			}
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			// The first operations after the restart succeed: dead idle
			// connections are retried or dropped, not handed out.
			if err := inc(); err != nil {
				t.Fatalf("Update after the database came back: %v", err)
			}
			if _, err := db.Get("alice"); err != nil {
				t.Fatalf("Get after the database came back: %v", err)
			}
		})
	}
	t.Run("restarted between two requests", func(t *testing.T) {
		// Idle connections to the old server, and no request while it was
		// down: the first request after the restart must not fail on them.
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := db.Get("alice"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if err := srv.Stop(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		if err := inc(); err != nil {
			t.Fatalf("first Update after a restart: %v", err)
		}
	})
	rec, err := db.Get("alice")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Failures != 4 {
		t.Errorf("Failures = %d, want 4 (one per successful update, none from the failed ones)", rec.Failures)
	}
}

func TestOpenRefusesAnUnreachableOrNonDurableServer(t *testing.T) {
	dsn := newDSN(t)
	if err := pgtest.Exec(dsn, "ALTER ROLE otpgate SET synchronous_commit = off"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := pgtest.Exec(dsn, "ALTER ROLE otpgate RESET synchronous_commit"); err != nil {
			t.Error(err)
		}
	}()
	db := openDB(t, dsn, postgres.Options{})
	// synchronous_commit=off for the role is overridden per connection,
	// so a record is flushed to the WAL when Update returns; the timeouts
	// are set on the server too.
	for name, want := range map[string]string{
		"synchronous_commit":                  "on",
		"statement_timeout":                   "5s",
		"lock_timeout":                        "5s",
		"idle_in_transaction_session_timeout": "5s",
		"application_name":                    "otpgated",
	} {
		if got, err := db.SessionSetting(name); err != nil || got != want {
			t.Errorf("session %s = %q, %v; want %q", name, got, err, want)
		}
	}

	_, err := postgres.Open("host=/nonexistent-otpgate-dir port=5432 user=x password=s3cret-pw dbname=y sslmode=disable", postgres.Options{Timeout: time.Second})
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error reveals the password: %v", err)
	}
	_, err = postgres.Open("postgres://x:s3cret-pw@[bad", postgres.Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("Open of a broken URL = %v, want an error without the password", err)
	}
}

func TestReadDSNFile(t *testing.T) {
	dir := t.TempDir()
	const dsn = "host=db.example port=5432 user=otpgate password=pw dbname=otpgate"
	write := func(name string, mode os.FileMode, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", 0o600, "\n"+dsn+"\n")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	notRoot := write("notroot", 0o600, dsn)
	if err := os.Chown(notRoot, 65534, 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"a root-owned 0600 file", good, ""},
		{"a group-readable file", write("group", 0o640, dsn), "must be exactly 0600"},
		{"a world-readable file", write("world", 0o644, dsn), "must be exactly 0600"},
		{"a file of another owner", notRoot, "owned by root"},
		{"a symlink", link, "symlink"},
		{"an empty file", write("empty", 0o600, " \n"), "empty"},
		{"a directory", dir, "regular file"},
		{"a missing file", filepath.Join(dir, "missing"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := postgres.ReadDSNFile(tt.path)
			switch {
			case tt.wantErr == "" && (err != nil || got != dsn):
				t.Errorf("ReadDSNFile = %q, %v; want %q", got, err, dsn)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("ReadDSNFile = %q, %v; want an error with %q", got, err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "password=pw"):
				t.Errorf("error reveals the DSN: %v", err)
			}
		})
	}
}

// Copy moves every record from the embedded store into PostgreSQL and
// back, unchanged, and refuses a destination that is not empty.
func TestCopyBoltToPostgresAndBack(t *testing.T) {
	openBolt := func() *bolt.DB {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "state")
		if err := store.PrepareStateDir(dir); err != nil {
			t.Fatal(err)
		}
		b, err := bolt.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	src := openBolt()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	const n = 230
	for i := range n {
		u := fmt.Sprintf("user%03d", i)
		err := src.Update(u, func(*store.Record) (*store.Record, error) {
			return &store.Record{
				Active:   &store.Enrollment{SealedSecret: []byte{byte(i), 1, 2}, Algorithm: "SHA1", Digits: 6, Period: 30, CreatedAt: at, ActivatedAt: at},
				LastStep: uint64(1000 + i), Failures: i % 5, LockedUntil: at.Add(time.Duration(i) * time.Second),
			}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	pg := openDB(t, newDSN(t), postgres.Options{})
	if got, err := postgres.Copy(pg, src); err != nil || got != n {
		t.Fatalf("Copy(bolt → postgres) = %d, %v; want %d, nil", got, err, n)
	}
	if _, err := postgres.Copy(pg, src); !errors.Is(err, postgres.ErrNotEmpty) {
		t.Errorf("second Copy into the same database = %v, want ErrNotEmpty", err)
	}
	back := openBolt()
	if got, err := postgres.Copy(back, pg); err != nil || got != n {
		t.Fatalf("Copy(postgres → bolt) = %d, %v; want %d, nil", got, err, n)
	}
	for _, i := range []int{0, 117, n - 1} {
		u := fmt.Sprintf("user%03d", i)
		rec, err := back.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		if rec.LastStep != uint64(1000+i) || rec.Failures != i%5 || rec.Active.SealedSecret[0] != byte(i) ||
			!rec.LockedUntil.Equal(at.Add(time.Duration(i)*time.Second)) {
			t.Errorf("%s after bolt → postgres → bolt: %+v", u, rec)
		}
	}
}
