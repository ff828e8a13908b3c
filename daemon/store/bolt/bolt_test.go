//go:build root

package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpgate/otpgate/daemon/store"
)

// newStateDir returns a fresh root-owned 0700 directory under base ("" for
// the default temp dir).
func newStateDir(tb testing.TB, base string) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatal("needs root: the store requires root-owned files (make test runs as root)")
	}
	parent, err := os.MkdirTemp(base, "otpgate-store-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(parent) })
	dir := filepath.Join(parent, "state")
	if err := store.PrepareStateDir(dir); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// openTestDB opens a store in a fresh directory and closes it at cleanup.
func openTestDB(tb testing.TB) (*DB, string) {
	tb.Helper()
	dir := newStateDir(tb, "")
	d, err := Open(dir)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			tb.Errorf("Close: %v", err)
		}
	})
	return d, dir
}

func mustGet(t *testing.T, d *DB, user string) *store.Record {
	t.Helper()
	rec, err := d.Get(user)
	if err != nil {
		t.Fatalf("Get(%q): %v", user, err)
	}
	return rec
}

func setFailures(n int) func(*store.Record) (*store.Record, error) {
	return func(cur *store.Record) (*store.Record, error) {
		if cur == nil {
			cur = &store.Record{}
		}
		cur.Failures = n
		return cur, nil
	}
}

func increment(cur *store.Record) (*store.Record, error) {
	if cur == nil {
		cur = &store.Record{}
	}
	cur.Failures++
	return cur, nil
}

func TestUpdateCreatesModifiesAndDeletes(t *testing.T) {
	d, _ := openTestDB(t)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	want := &store.Record{
		User:     "alice",
		LastStep: 58000000,
		Active: &store.Enrollment{
			SealedSecret: []byte{1, 2, 3}, Algorithm: "SHA1", Digits: 6, Period: 30, CreatedAt: created,
			RecoverySalt: []byte("0123456789abcdef"), Recovery: [][]byte{{9, 9}, {8, 8}},
		},
	}
	var sawNil bool
	err := d.Update("alice", func(cur *store.Record) (*store.Record, error) {
		sawNil = cur == nil
		r := *want
		r.User = "" // Update fills it in
		return &r, nil
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if !sawNil {
		t.Errorf("fn got a record for a new user, want nil")
	}
	if got := mustGet(t, d, "alice"); !reflect.DeepEqual(got, want) {
		t.Errorf("after create Get = %+v, want %+v", got, want)
	}

	err = d.Update("alice", func(cur *store.Record) (*store.Record, error) {
		if cur == nil || cur.LastStep != 58000000 {
			return nil, fmt.Errorf("fn got %+v, want the stored record", cur)
		}
		cur.LastStep++
		cur.Pending = &store.Enrollment{Algorithm: "SHA256", Digits: 8, Period: 60, CreatedAt: created}
		return cur, nil
	})
	if err != nil {
		t.Fatalf("modify: %v", err)
	}
	got := mustGet(t, d, "alice")
	if got.LastStep != 58000001 || got.Pending == nil || got.Pending.Digits != 8 || !reflect.DeepEqual(got.Active, want.Active) {
		t.Errorf("after modify Get = %+v", got)
	}

	if err := d.Update("alice", func(*store.Record) (*store.Record, error) { return nil, nil }); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if rec, err := d.Get("alice"); !errors.Is(err, store.ErrNotFound) || rec != nil {
		t.Errorf("after delete Get = %+v, %v; want ErrNotFound", rec, err)
	}
	if err := d.Update("nobody", func(*store.Record) (*store.Record, error) { return nil, nil }); err != nil {
		t.Errorf("deleting a missing record: %v", err)
	}
	if _, err := d.Get("nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(nobody) = %v, want ErrNotFound", err)
	}
}

func TestUpdateFnErrorChangesNothing(t *testing.T) {
	d, _ := openTestDB(t)
	if err := d.Update("alice", setFailures(3)); err != nil {
		t.Fatal(err)
	}
	errBoom := errors.New("boom")
	err := d.Update("alice", func(cur *store.Record) (*store.Record, error) {
		cur.Failures = 99 // mutating the argument must not leak into the store
		cur.AdminLocked = true
		return cur, errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update = %v, want fn's error", err)
	}
	if got := mustGet(t, d, "alice"); got.Failures != 3 || got.AdminLocked {
		t.Errorf("after a failed fn the record is %+v, want Failures 3 and not locked", got)
	}
	err = d.Update("bob", func(*store.Record) (*store.Record, error) {
		return &store.Record{Failures: 1}, errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update(bob) = %v, want fn's error", err)
	}
	if _, err := d.Get("bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a failed fn created bob: Get = %v", err)
	}
}

func TestUpdateRefusesAnEmptyUserName(t *testing.T) {
	d, _ := openTestDB(t)
	ran := false
	err := d.Update("", func(*store.Record) (*store.Record, error) { ran = true; return &store.Record{}, nil })
	if err == nil || ran {
		t.Errorf("Update(\"\") = %v, fn ran %v; want an error before fn runs", err, ran)
	}
}

func TestConcurrentIncrementsOfOneUserAreAtomic(t *testing.T) {
	d, _ := openTestDB(t)
	const n = 64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := d.Update("alice", increment); err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	if got := mustGet(t, d, "alice").Failures; got != n {
		t.Errorf("after %d concurrent increments Failures = %d", n, got)
	}
}

func TestConcurrentUpdatesOfManyUsersAndListOrder(t *testing.T) {
	d, _ := openTestDB(t)
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			user := fmt.Sprintf("user%02d", n-1-i)
			for range 3 {
				if err := d.Update(user, increment); err != nil {
					t.Errorf("Update(%s): %v", user, err)
				}
			}
		})
	}
	wg.Wait()
	var users []string
	err := d.List("", func(rec *store.Record) error {
		users = append(users, rec.User)
		if rec.Failures != 3 {
			t.Errorf("%s: Failures = %d, want 3", rec.User, rec.Failures)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != n || !slices.IsSorted(users) {
		t.Errorf("List gave %d users in order %v; want %d sorted", len(users), users, n)
	}
}

func TestListStopsAtTheFirstError(t *testing.T) {
	d, _ := openTestDB(t)
	for _, u := range []string{"carol", "alice", "bob"} {
		if err := d.Update(u, setFailures(1)); err != nil {
			t.Fatal(err)
		}
	}
	errStop := errors.New("stop")
	var seen []string
	err := d.List("", func(rec *store.Record) error {
		seen = append(seen, rec.User)
		if rec.User == "bob" {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || !slices.Equal(seen, []string{"alice", "bob"}) {
		t.Errorf("List = %v after %v; want errStop after [alice bob]", err, seen)
	}
}

// blockCommitter starts an Update for user "blocker" whose fn waits until
// the returned release is called, and returns once that fn is running:
// from then on every Update queues behind it.
func blockCommitter(t *testing.T, d *DB) (release func() error) {
	t.Helper()
	running, proceed := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		first := true
		done <- d.Update("blocker", func(cur *store.Record) (*store.Record, error) {
			if first {
				first = false
				close(running)
				<-proceed
			}
			return &store.Record{}, nil
		})
	}()
	<-running
	return func() error { close(proceed); return <-done }
}

func (d *DB) queued() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.queue)
}

func waitQueued(t *testing.T, d *DB, n int) {
	t.Helper()
	for d.queued() < n {
		time.Sleep(time.Millisecond)
	}
}

func (d *DB) txID(t testing.TB) int {
	t.Helper()
	tx, err := d.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	return tx.ID()
}

func TestQueuedUpdatesCommitAsOneGroup(t *testing.T) {
	d, _ := openTestDB(t)
	before := d.txID(t)
	release := blockCommitter(t, d)
	const n = 10
	errFail := errors.New("odd users fail")
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = d.Update(fmt.Sprintf("u%d", i), func(cur *store.Record) (*store.Record, error) {
				if i%2 == 1 {
					return &store.Record{Failures: 1}, errFail
				}
				return &store.Record{Failures: i}, nil
			})
		})
	}
	waitQueued(t, d, n)
	if err := release(); err != nil {
		t.Fatalf("blocker: %v", err)
	}
	wg.Wait()
	// One transaction for the blocker, one for the whole queued group.
	if got := d.txID(t) - before; got != 2 {
		t.Errorf("%d updates behind a running commit took %d commits, want 2 (blocker + one group)", n+1, got)
	}
	for i := range n {
		rec, err := d.Get(fmt.Sprintf("u%d", i))
		switch {
		case i%2 == 1 && !errors.Is(errs[i], errFail):
			t.Errorf("u%d: Update = %v, want its own fn's error", i, errs[i])
		case i%2 == 1 && !errors.Is(err, store.ErrNotFound):
			t.Errorf("u%d: a failed fn's record was stored: %+v, %v", i, rec, err)
		case i%2 == 0 && errs[i] != nil:
			t.Errorf("u%d: Update = %v; another caller's error leaked", i, errs[i])
		case i%2 == 0 && (err != nil || rec.Failures != i):
			t.Errorf("u%d: Get = %+v, %v; want Failures %d", i, rec, err, i)
		}
	}
}

func TestUpdateFnPanicReachesItsCallerOnly(t *testing.T) {
	d, _ := openTestDB(t)
	release := blockCommitter(t, d)
	var wg sync.WaitGroup
	var otherErr error
	wg.Go(func() { otherErr = d.Update("bob", setFailures(7)) })
	var recovered any
	wg.Go(func() {
		defer func() { recovered = recover() }()
		_ = d.Update("alice", func(*store.Record) (*store.Record, error) { panic("fn exploded") })
	})
	waitQueued(t, d, 2)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if recovered != "fn exploded" {
		t.Errorf("caller recovered %v, want the fn's panic value", recovered)
	}
	if otherErr != nil {
		t.Errorf("bob's Update in the same group: %v", otherErr)
	}
	if got := mustGet(t, d, "bob"); got.Failures != 7 {
		t.Errorf("bob: Failures %d, want 7", got.Failures)
	}
	if _, err := d.Get("alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice after a panicking fn: %v, want ErrNotFound", err)
	}
	if err := d.Update("alice", setFailures(1)); err != nil {
		t.Errorf("store unusable after a panicking fn: %v", err)
	}
}

func TestDataSurvivesCloseAndReopen(t *testing.T) {
	d, dir := openTestDB(t)
	for i := range 20 {
		if err := d.Update(fmt.Sprintf("user%02d", i), setFailures(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := d.Update("late", setFailures(1)); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Update after Close = %v, want ErrClosed", err)
	}
	d2, err := Open(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer d2.Close()
	n := 0
	err = d2.List("", func(rec *store.Record) error {
		if want := fmt.Sprintf("user%02d", n); rec.User != want || rec.Failures != n {
			t.Errorf("record %d = %s/%d, want %s/%d", n, rec.User, rec.Failures, want, n)
		}
		n++
		return nil
	})
	if err != nil || n != 20 {
		t.Errorf("after reopen List saw %d records, %v; want 20", n, err)
	}
}

func TestCloseWaitsForQueuedUpdates(t *testing.T) {
	d, _ := openTestDB(t)
	release := blockCommitter(t, d)
	done := make(chan error, 1)
	go func() { done <- d.Update("queued", setFailures(5)) }()
	waitQueued(t, d, 1)
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Update queued before Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestSecondOpenFailsWhileTheStoreIsInUse(t *testing.T) {
	d, dir := openTestDB(t)
	_ = d
	d2, err := Open(dir)
	if err == nil {
		d2.Close()
		t.Fatal("a second Open of a store in use succeeded")
	}
	want := fmt.Sprintf("state store %s is in use by another process", filepath.Join(dir, store.DBFile))
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
}

func TestOpenRefusesAnInsecureStateDir(t *testing.T) {
	dir := newStateDir(t, "")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if d, err := Open(dir); err == nil || !strings.Contains(err.Error(), dir) {
		if d != nil {
			d.Close()
		}
		t.Fatalf("Open of a 0755 state dir: %v; want an error naming %s", err, dir)
	}
	if _, err := os.Lstat(filepath.Join(dir, store.DBFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open created the database in a refused directory")
	}
}

func TestOpenCreatesA0600DatabaseFile(t *testing.T) {
	_, dir := openTestDB(t)
	fi, err := os.Lstat(filepath.Join(dir, store.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("database file mode %s, want a regular 0600 root file", fi.Mode())
	}
	if err := store.CheckStateDir(dir); err != nil {
		t.Errorf("the state dir fails its own check after Open: %v", err)
	}
}

// writeMarkedStore writes a store with many users and, last, one record
// holding marker, and returns the database path.
func writeMarkedStore(t *testing.T, marker string) (dir, path string) {
	t.Helper()
	d, dir := openTestDB(t)
	for i := range 100 {
		if err := d.Update(fmt.Sprintf("user%03d", i), setFailures(i)); err != nil {
			t.Fatal(err)
		}
	}
	err := d.Update("user050", func(cur *store.Record) (*store.Record, error) {
		cur.Active = &store.Enrollment{Algorithm: marker}
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, store.DBFile)
}

func TestOpenRefusesACorruptFile(t *testing.T) {
	const marker = "MARKER-7f3a9c"
	tests := []struct {
		name    string
		corrupt func(t *testing.T, b []byte) []byte
	}{
		{"garbage over a record in the middle of the file", func(t *testing.T, b []byte) []byte {
			i := markerOffset(t, b, marker)
			copy(b[i-20:], bytes.Repeat([]byte{0xff}, 40))
			return b
		}},
		{"one digit of a failure counter changed", func(t *testing.T, b []byte) []byte {
			i := markerOffset(t, b, marker)
			j := bytes.Index(b[i:], []byte(`"failures":50`))
			if j < 0 {
				t.Fatal("the marked record has no failures field")
			}
			b[i+j+len(`"failures":`)] = '1' // still valid JSON: 10
			return b
		}},
		{"garbage over the header of a live leaf page", func(t *testing.T, b []byte) []byte {
			page := markerOffset(t, b, marker) / os.Getpagesize() * os.Getpagesize()
			copy(b[page:], bytes.Repeat([]byte{0xa5}, 16))
			return b
		}},
		{"zeros over both meta pages", func(t *testing.T, b []byte) []byte {
			clear(b[:2*os.Getpagesize()])
			return b
		}},
		{"a file cut short", func(t *testing.T, b []byte) []byte { return b[:100] }},
		{"a file that is not a bbolt database", func(t *testing.T, b []byte) []byte {
			return bytes.Repeat([]byte("not a database\n"), 4096)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, path := writeMarkedStore(t, marker)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.corrupt(t, b), 0o600); err != nil {
				t.Fatal(err)
			}
			d, err := Open(dir)
			if err == nil {
				d.Close()
				t.Fatal("Open accepted a corrupt file")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
				t.Errorf("error %q does not name %s and say it is corrupt", err, path)
			}
		})
	}
}

// markerOffset finds the only copy of marker in a database file, so that
// corrupting it hits a live page, not a freed one.
func markerOffset(t *testing.T, b []byte, marker string) int {
	t.Helper()
	if n := bytes.Count(b, []byte(marker)); n != 1 {
		t.Fatalf("marker occurs %d times in the file, want exactly 1", n)
	}
	return bytes.Index(b, []byte(marker))
}

func TestOpenRefusesABadRecord(t *testing.T) {
	good, err := json.Marshal(store.Record{User: "alice", Failures: 2})
	if err != nil {
		t.Fatal(err)
	}
	withCRC := func(key string, js []byte) []byte {
		v := []byte{recordVersion, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(v[1:], recordCRC([]byte(key), js))
		return append(v, js...)
	}
	tests := []struct {
		name  string
		key   string
		value []byte
		want  string
	}{
		{"a version 1 record", "alice", append([]byte{1}, good...), "unknown format"},
		{"an empty value", "alice", []byte{}, "unknown format"},
		{"a record whose checksum does not match", "alice", func() []byte {
			v := withCRC("alice", good)
			v[len(v)-2] ^= 1
			return v
		}(), "fails its checksum"},
		{"a record moved under another key", "bob", withCRC("alice", good), "fails its checksum"},
		{"a record naming another user", "bob", withCRC("bob", good), `names user "alice"`},
		{"a record with a field this version does not know", "alice",
			withCRC("alice", []byte(`{"user":"alice","future_lock":true}`)), "unknown field"},
		{"a record with data after its JSON", "alice", withCRC("alice", append(bytes.Clone(good), "{}"...)), "after its JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, dir := openTestDB(t)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, store.DBFile)
			raw, err := bbolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = raw.Update(func(tx *bbolt.Tx) error {
				return tx.Bucket(usersBucket).Put([]byte(tt.key), tt.value)
			})
			if cerr := raw.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err = Open(dir)
			if err == nil {
				d.Close()
				t.Fatal("Open accepted the record")
			}
			for _, want := range []string{path, "corrupt", fmt.Sprintf("%q", tt.key), tt.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestListResumesAfterAUserAndStopsOnErrStop(t *testing.T) {
	d, _ := openTestDB(t)
	for _, u := range []string{"dave", "carol", "alice", "bob"} {
		if err := d.Update(u, setFailures(1)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		after  string
		stopAt string
		want   []string
	}{
		{"an empty after lists everyone", "", "", []string{"alice", "bob", "carol", "dave"}},
		{"an existing user is skipped itself", "bob", "", []string{"carol", "dave"}},
		{"a name between users resumes at the next one", "bz", "", []string{"carol", "dave"}},
		{"a name after the last user lists nobody", "zed", "", nil},
		{"ErrStop ends the listing without error", "", "bob", []string{"alice", "bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []string
			err := d.List(tt.after, func(rec *store.Record) error {
				seen = append(seen, rec.User)
				if rec.User == tt.stopAt {
					return store.ErrStop
				}
				return nil
			})
			if err != nil || !slices.Equal(seen, tt.want) {
				t.Errorf("List(%q) saw %v, %v; want %v, nil", tt.after, seen, err, tt.want)
			}
		})
	}
}
