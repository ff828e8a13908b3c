// Package storetest is a conformance suite for store.Store
// implementations: every backend (bolt, postgres) must pass Run, so the
// daemon can rely on the same semantics whichever one is configured.
package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon/store"
)

// Opener returns a new, empty store for one subtest; the suite closes it.
type Opener func(t *testing.T) store.Store

// Run runs the conformance suite against stores made by open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"get of an unknown user is ErrNotFound", testGetMissing},
		{"update creates, changes and deletes a record", testLifecycle},
		{"an update function's error changes nothing", testFnError},
		{"returning nil for a missing record stores nothing", testNilOnMissing},
		{"list is in name order and resumes after a name", testList},
		{"list stops on ErrStop and returns other errors", testListStop},
		{"64 concurrent updates of one user all count", testConcurrentSameUser},
		{"concurrent updates of different users do not interfere", testConcurrentUsers},
		{"a record round-trips every field", testRoundTrip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
	t.Run("update after close is ErrClosed", func(t *testing.T) {
		s := open(t)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		err := s.Update("alice", func(*store.Record) (*store.Record, error) { return &store.Record{}, nil })
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("Update after Close = %v, want ErrClosed", err)
		}
	})
}

// put stores rec for user, failing the test on error.
func put(t *testing.T, s store.Store, user string, rec *store.Record) {
	t.Helper()
	if err := s.Update(user, func(*store.Record) (*store.Record, error) { return rec, nil }); err != nil {
		t.Fatalf("Update(%q): %v", user, err)
	}
}

// get returns user's record, failing the test on error.
func get(t *testing.T, s store.Store, user string) *store.Record {
	t.Helper()
	rec, err := s.Get(user)
	if err != nil {
		t.Fatalf("Get(%q): %v", user, err)
	}
	return rec
}

func testGetMissing(t *testing.T, s store.Store) {
	if _, err := s.Get("nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(nobody) = %v, want ErrNotFound", err)
	}
}

func testLifecycle(t *testing.T, s store.Store) {
	var seen []*store.Record
	step := func(fn func(*store.Record) *store.Record) {
		t.Helper()
		err := s.Update("alice", func(cur *store.Record) (*store.Record, error) {
			if cur != nil {
				c := *cur // fn may change cur
				seen = append(seen, &c)
			} else {
				seen = append(seen, nil)
			}
			return fn(cur), nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	step(func(*store.Record) *store.Record { return &store.Record{LastStep: 7} })
	if seen[0] != nil {
		t.Errorf("first update saw %+v, want nil", seen[0])
	}
	if rec := get(t, s, "alice"); rec.User != "alice" || rec.LastStep != 7 {
		t.Errorf("after create: %+v, want user alice (set by the store) with LastStep 7", rec)
	}
	step(func(cur *store.Record) *store.Record { cur.LastStep++; return cur })
	if seen[1] == nil || seen[1].LastStep != 7 {
		t.Errorf("second update saw %+v, want LastStep 7", seen[1])
	}
	if rec := get(t, s, "alice"); rec.LastStep != 8 {
		t.Errorf("after change: LastStep %d, want 8", rec.LastStep)
	}
	step(func(*store.Record) *store.Record { return nil })
	if _, err := s.Get("alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete: Get = %v, want ErrNotFound", err)
	}
	step(func(cur *store.Record) *store.Record {
		if cur != nil {
			t.Errorf("update after delete saw %+v, want nil", cur)
		}
		return &store.Record{Failures: 1}
	})
	if rec := get(t, s, "alice"); rec.Failures != 1 || rec.LastStep != 0 {
		t.Errorf("re-created record %+v, want a fresh one with Failures 1", rec)
	}
}

func testFnError(t *testing.T, s store.Store) {
	put(t, s, "bob", &store.Record{Failures: 2})
	boom := errors.New("boom")
	err := s.Update("bob", func(cur *store.Record) (*store.Record, error) {
		cur.Failures = 99
		return cur, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the function's error", err)
	}
	if rec := get(t, s, "bob"); rec.Failures != 2 {
		t.Errorf("Failures = %d after a failed update, want 2", rec.Failures)
	}
	err = s.Update("carol", func(*store.Record) (*store.Record, error) { return &store.Record{}, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the function's error", err)
	}
	if _, err := s.Get("carol"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(carol) = %v after a failed create, want ErrNotFound", err)
	}
}

func testNilOnMissing(t *testing.T, s store.Store) {
	if err := s.Update("dave", func(*store.Record) (*store.Record, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("dave"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(dave) = %v, want ErrNotFound", err)
	}
	n := 0
	if err := s.List("", func(*store.Record) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("List = %v with %d records, want none", err, n)
	}
}

func listNames(t *testing.T, s store.Store, after string) []string {
	t.Helper()
	var names []string
	if err := s.List(after, func(rec *store.Record) error { names = append(names, rec.User); return nil }); err != nil {
		t.Fatalf("List(%q): %v", after, err)
	}
	return names
}

func testList(t *testing.T, s store.Store) {
	// More than one page of the postgres store (100), names whose
	// bytewise order differs from a locale's ("Z" < "a" < "ä").
	var want []string
	for i := range 250 {
		want = append(want, fmt.Sprintf("u%04d", i))
	}
	want = append([]string{"/source/10.0.0.1", "Zed", "a.b", "a_b"}, want...)
	want = append(want, "ärger")
	for _, u := range want {
		put(t, s, u, &store.Record{})
	}
	tests := []struct {
		after string
		want  []string
	}{
		{"", want},
		{"Zed", want[2:]},
		{"Ze", want[1:]},
		{"u0149", want[4+150:]},
		{"u0249", want[len(want)-1:]},
		{"ärger", nil},
		{"zzz", want[len(want)-1:]},
	}
	for _, tt := range tests {
		if got := listNames(t, s, tt.after); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("List(%q): got %d names %.5q..., want %d %.5q...", tt.after, len(got), got, len(tt.want), tt.want)
		}
	}
}

func testListStop(t *testing.T, s store.Store) {
	for _, u := range []string{"a", "b", "c"} {
		put(t, s, u, &store.Record{})
	}
	var seen []string
	err := s.List("", func(rec *store.Record) error {
		seen = append(seen, rec.User)
		if rec.User == "b" {
			return store.ErrStop
		}
		return nil
	})
	if err != nil || !reflect.DeepEqual(seen, []string{"a", "b"}) {
		t.Errorf("List with ErrStop at b: err %v, saw %v; want nil, [a b]", err, seen)
	}
	boom := errors.New("boom")
	if err := s.List("", func(*store.Record) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("List = %v, want the callback's error", err)
	}
}

func testConcurrentSameUser(t *testing.T, s store.Store) {
	const n = 64
	ConcurrentIncrements(t, []store.Store{s}, "eve", n)
	if rec := get(t, s, "eve"); rec.Failures != n {
		t.Errorf("Failures = %d after %d concurrent increments, want %d (a lost update)", rec.Failures, n, n)
	}
}

// ConcurrentIncrements runs n concurrent Updates that each add one to
// user's Failures, spread round-robin over stores (several stores on one
// database are several daemons), and fails the test on any error.
func ConcurrentIncrements(t testing.TB, stores []store.Store, user string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		s := stores[i%len(stores)]
		wg.Go(func() {
			errs <- s.Update(user, func(cur *store.Record) (*store.Record, error) {
				if cur == nil {
					cur = &store.Record{}
				}
				cur.Failures++
				return cur, nil
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func testConcurrentUsers(t *testing.T, s store.Store) {
	const users, rounds = 16, 8
	var wg sync.WaitGroup
	errs := make(chan error, users*rounds)
	for u := range users {
		for range rounds {
			wg.Go(func() {
				errs <- s.Update(fmt.Sprintf("user%02d", u), func(cur *store.Record) (*store.Record, error) {
					if cur == nil {
						cur = &store.Record{}
					}
					cur.LastStep += uint64(u + 1)
					return cur, nil
				})
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for u := range users {
		if rec := get(t, s, fmt.Sprintf("user%02d", u)); rec.LastStep != uint64((u+1)*rounds) {
			t.Errorf("user%02d: LastStep %d, want %d", u, rec.LastStep, (u+1)*rounds)
		}
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.FixedZone("CET", 3600))
	want := &store.Record{
		User: "frank",
		Active: &store.Enrollment{
			SealedSecret: []byte{0, 1, 2, 0xff}, Algorithm: "SHA256", Digits: 8, Period: 60,
			CreatedAt: at, ActivatedAt: at.Add(time.Minute),
			RecoverySalt: []byte("salt"), Recovery: [][]byte{[]byte("h1"), []byte("h2")},
		},
		Pending:     &store.Enrollment{SealedSecret: []byte("p"), Algorithm: "SHA1", Digits: 6, Period: 30, CreatedAt: at},
		LastStep:    1<<63 + 5,
		Failures:    3,
		Lockouts:    2,
		LockedUntil: at.Add(time.Hour),
		AdminLocked: true,
		LastSuccess: at.UTC(),
		Sources:     map[string]*store.SourceState{"192.0.2.1": {Failures: 1, BlockedUntil: at, LastFailure: at}},
		Remembered:  []store.RememberedDevice{{Source: "192.0.2.1", Fingerprint: "SHA256:abc", Since: at, Until: at.Add(time.Hour)}},
	}
	put(t, s, "frank", want)
	got := get(t, s, "frank")
	// JSON is the stored form: equal JSON means every field, each time's
	// instant and zone offset included, came back.
	gj, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	wj, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(gj) != string(wj) {
		t.Errorf("round trip:\n got %s\nwant %s", gj, wj)
	}
	if got.LastStep != want.LastStep || !got.LockedUntil.Equal(want.LockedUntil) {
		t.Errorf("round trip: LastStep %d, LockedUntil %v; want %d, %v", got.LastStep, got.LockedUntil, want.LastStep, want.LockedUntil)
	}
}
