//go:build root

package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
	"github.com/otpgate/otpgate/otp"
)

// fakeDB is a user database that counts the lookups it answers.
type fakeDB struct {
	mu      sync.Mutex
	users   map[string]account // known users by canonical name; Groups is what a lookup with groups returns
	aliases map[string]string  // other names of users (useradd -o, or a spelling NSS folds) -> canonical name
	err     error              // returned for every lookup when set
	calls   int
	during  func() // runs inside each lookup when set

	unlisted map[string]bool // known users a listing leaves out (sssd's enumerate = false)
	listErr  error           // returned for every listing when set
	lists    int
}

// list lists the users and their other names, as listAccounts does.
func (db *fakeDB) list(limit int) (userList, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.lists++
	if db.listErr != nil {
		return userList{}, db.listErr
	}
	out := userList{uids: map[string]uint32{}, names: map[uint32]string{}}
	for name, u := range db.users {
		if len(out.uids) < limit && !db.unlisted[name] {
			out.uids[name], out.names[u.UID] = u.UID, name
		}
	}
	for alias, canon := range db.aliases {
		if len(out.uids) < limit && !db.unlisted[alias] {
			out.uids[alias] = db.users[canon].UID
		}
	}
	return out, nil
}

func (db *fakeDB) listCount() int { db.mu.Lock(); defer db.mu.Unlock(); return db.lists }

func (db *fakeDB) lookup(name string, withGroups bool) (account, error) {
	db.mu.Lock()
	db.calls++
	during, err := db.during, db.err
	canon, alias := db.aliases[name]
	if !alias {
		canon = name
	}
	u, ok := db.users[canon]
	db.mu.Unlock()
	if during != nil {
		during()
	}
	if err != nil {
		return account{}, err
	}
	if !ok {
		return account{Name: name}, nil
	}
	if !withGroups {
		u.Groups = nil
	}
	return u.clone(), nil
}

func (db *fakeDB) count() int { db.mu.Lock(); defer db.mu.Unlock(); return db.calls }

// cacheFixture is an accountCache over a fakeDB, a test clock and real
// passwd and group files in a temporary directory.
type cacheFixture struct {
	t             *testing.T
	db            *fakeDB
	clock         *testClock
	passwd, group string
	c             *accountCache
}

func newCacheFixture(t *testing.T) *cacheFixture {
	t.Helper()
	dir := t.TempDir()
	f := &cacheFixture{
		t: t, clock: newTestClock(),
		passwd: filepath.Join(dir, "passwd"), group: filepath.Join(dir, "group"),
		db: &fakeDB{users: map[string]account{
			"erin": {Name: "erin", UID: 1000, Known: true, Groups: []string{"erin", "wheel"}},
		}},
	}
	f.write(f.passwd, "erin:x:1000:1000::/home/erin:/bin/sh\n")
	f.write(f.group, "erin:x:1000:\nwheel:x:10:erin\n")
	f.c = newAccountCache(f.db.lookup, f.clock, []string{f.passwd, f.group})
	return f
}

// write replaces path with data the way useradd does: a new file renamed
// over the old one.
func (f *cacheFixture) write(path, data string) {
	f.t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		f.t.Fatal(err)
	}
}

// get resolves name and fails the test on an error.
func (f *cacheFixture) get(name string, withGroups bool) account {
	f.t.Helper()
	a, err := f.c.get(name, withGroups)
	if err != nil {
		f.t.Fatalf("get(%q, %v): %v", name, withGroups, err)
	}
	return a
}

func TestAccountCache(t *testing.T) {
	tests := []struct {
		name string
		// run resolves users, changes things between lookups, and returns
		// how many lookups the user database should have answered.
		run func(f *cacheFixture) int
	}{
		{"a known user is looked up once within the TTL", func(f *cacheFixture) int {
			for range 3 {
				if a := f.get("erin", false); !a.Known || a.UID != 1000 {
					f.t.Fatalf("got %+v", a)
				}
			}
			return 1
		}},
		{"an unknown user is looked up once within the TTL", func(f *cacheFixture) int {
			for range 3 {
				if a := f.get("mallory", false); a.Known || a.Name != "mallory" {
					f.t.Fatalf("got %+v", a)
				}
			}
			return 1
		}},
		{"a lookup error is not cached", func(f *cacheFixture) int {
			f.db.err = errors.New("nss: ldap server down")
			for range 3 {
				if _, err := f.c.get("erin", false); err == nil {
					f.t.Fatal("no error")
				}
			}
			f.db.err = nil
			if a := f.get("erin", false); !a.Known {
				f.t.Fatalf("after the error: got %+v", a)
			}
			return 4
		}},
		{"an entry is reused until its TTL is over", func(f *cacheFixture) int {
			f.get("erin", false)
			f.clock.Add(accountTTL - time.Nanosecond)
			f.get("erin", false)
			return 1
		}},
		{"an entry is looked up again once its TTL is over", func(f *cacheFixture) int {
			f.get("erin", false)
			f.get("mallory", false)
			f.clock.Add(accountTTL)
			f.get("erin", false)
			f.get("mallory", false)
			return 4
		}},
		{"useradd (passwd replaced) empties the cache", func(f *cacheFixture) int {
			f.get("bob", false)
			f.write(f.passwd, "erin:x:1000:1000::/home/erin:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n")
			f.db.users["bob"] = account{Name: "bob", UID: 1001, Known: true}
			if a := f.get("bob", false); !a.Known || a.UID != 1001 {
				f.t.Fatalf("bob after useradd: %+v", a)
			}
			f.get("bob", false)
			return 2
		}},
		{"usermod -aG (group replaced) empties the cache", func(f *cacheFixture) int {
			f.get("erin", true)
			f.write(f.group, "erin:x:1000:\nwheel:x:10:erin\nsudo:x:27:erin\n")
			f.db.users["erin"] = account{Name: "erin", UID: 1000, Known: true, Groups: []string{"erin", "wheel", "sudo"}}
			if a := f.get("erin", true); len(a.Groups) != 3 {
				f.t.Fatalf("groups after usermod: %v", a.Groups)
			}
			return 2
		}},
		{"an edit in place of the same size (new mtime) empties the cache", func(f *cacheFixture) int {
			f.get("erin", false)
			fh, err := os.OpenFile(f.passwd, os.O_WRONLY, 0)
			if err != nil {
				f.t.Fatal(err)
			}
			if _, err := fh.WriteAt([]byte("b"), 0); err != nil {
				f.t.Fatal(err)
			}
			if err := fh.Close(); err != nil {
				f.t.Fatal(err)
			}
			// The write may fall in the same timestamp tick as the file's
			// creation; set one that cannot.
			old := time.Now().Add(-time.Hour)
			if err := os.Chtimes(f.passwd, old, old); err != nil {
				f.t.Fatal(err)
			}
			f.get("erin", false)
			return 2
		}},
		{"files changed during a lookup: its answer is not reused", func(f *cacheFixture) int {
			f.db.during = func() {
				f.db.during = nil
				f.write(f.passwd, "erin:x:1000:1000::/home/erin:/bin/bash\n")
			}
			f.get("erin", false)
			f.get("erin", false)
			f.get("erin", false)
			return 2
		}},
		{"a missing database file turns caching off", func(f *cacheFixture) int {
			if err := os.Remove(f.group); err != nil {
				f.t.Fatal(err)
			}
			f.get("erin", false)
			f.get("erin", false)
			f.write(f.group, "erin:x:1000:\n")
			f.get("erin", false)
			f.get("erin", false)
			return 3
		}},
		{"groups wanted after a lookup without them: looked up again, then cached", func(f *cacheFixture) int {
			if a := f.get("erin", false); a.Groups != nil {
				f.t.Fatalf("groups without asking: %v", a.Groups)
			}
			if a := f.get("erin", true); len(a.Groups) != 2 {
				f.t.Fatalf("groups: %v", a.Groups)
			}
			f.get("erin", true)
			f.get("erin", false)
			return 2
		}},
		{"a caller changing its account's groups does not change the cache", func(f *cacheFixture) int {
			for range 2 { // the lookup's answer, then the cache's
				a := f.get("erin", true)
				a.Groups[0] = "root"
			}
			if b := f.get("erin", true); b.Groups[0] != "erin" {
				f.t.Fatalf("cached groups changed: %v", b.Groups)
			}
			return 1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCacheFixture(t)
			want := tt.run(f)
			if got := f.db.count(); got != want {
				t.Errorf("user database answered %d lookups, want %d", got, want)
			}
		})
	}
}

func TestAccountCacheIsBounded(t *testing.T) {
	f := newCacheFixture(t)
	f.c.max = 100
	for i := range 1000 {
		f.get(fmt.Sprintf("flood%04d", i), false)
		if n := f.c.len(); n > f.c.max {
			t.Fatalf("after %d names: %d entries, want at most %d", i+1, n, f.c.max)
		}
	}
	if n := f.c.len(); n != f.c.max {
		t.Errorf("%d entries, want %d (a full cache)", n, f.c.max)
	}
	// The newest name is cached, whatever was evicted for it.
	calls := f.db.count()
	f.get("flood0999", false)
	if f.db.count() != calls {
		t.Error("the last name looked up was evicted")
	}
}

// TestAccountCacheConcurrent is for the race detector: lookups of known
// and unknown users from many goroutines, with and without groups, while
// the files change, the clock moves and the cache lists the database.
func TestAccountCacheConcurrent(t *testing.T) {
	f, known := newListFixture(t, 16)
	f.c.max = 8
	f.c.bulkMisses = 10
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				name := fmt.Sprintf("user%d", (g+i)%16) // unknown
				if i%3 == 0 {
					name = known[(g+i)%len(known)]
				}
				a, err := f.c.get(name, i%2 == 0)
				if err != nil {
					t.Error(err)
					return
				}
				if a.Name != name || (i%3 == 0) != a.Known {
					t.Errorf("get(%q): %+v", name, a)
					return
				}
			}
		})
	}
	for i := range 20 {
		f.write(f.passwd, fmt.Sprintf("erin:x:1000:1000::/home/erin:/bin/sh\n# %d\n", i))
		f.clock.Add(time.Second)
	}
	wg.Wait()
	if f.db.listCount() == 0 {
		t.Error("the database was never listed: the test does not exercise listing")
	}
}

// newListFixture is a cacheFixture whose cache lists the database, with n
// more users u0000… (uid 2000 on).
func newListFixture(t *testing.T, n int) (*cacheFixture, []string) {
	f := newCacheFixture(t)
	f.c.withList(f.db.list)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("u%04d", i)
		f.db.users[names[i]] = account{Name: names[i], UID: uint32(2000 + i), Known: true, Groups: []string{names[i]}}
	}
	return f, names
}

func TestAccountCacheBulk(t *testing.T) {
	n := 3 * accountBulkMisses
	tests := []struct {
		name string
		// run resolves users and returns how many lookups and listings the
		// user database should have answered.
		run func(f *cacheFixture, names []string) (lookups, lists int)
	}{
		{"a few misses: no listing", func(f *cacheFixture, names []string) (int, int) {
			for _, name := range names[:accountBulkMisses-1] {
				f.get(name, false)
			}
			return accountBulkMisses - 1, 0
		}},
		{"many misses: one listing answers the rest", func(f *cacheFixture, names []string) (int, int) {
			for i, name := range names {
				if a := f.get(name, false); !a.Known || a.UID != uint32(2000+i) || a.Name != name {
					f.t.Fatalf("get(%q) = %+v", name, a)
				}
			}
			return accountBulkMisses - 1, 1
		}},
		{"after a listing, unknown names are still looked up, and refused", func(f *cacheFixture, names []string) (int, int) {
			for _, name := range names {
				f.get(name, false)
			}
			for _, name := range []string{"mallory", "mallory", "trudy"} {
				if a := f.get(name, false); a.Known {
					f.t.Fatalf("get(%q) = %+v", name, a)
				}
			}
			return accountBulkMisses - 1 + 2, 1
		}},
		{"a second name of a uid (useradd -o) is answered from the listing as its account", func(f *cacheFixture, names []string) (int, int) {
			f.db.aliases = map[string]string{"alias0": names[0]}
			for _, name := range names {
				f.get(name, false)
			}
			if a := f.get("alias0", false); !a.Known || a.UID != 2000 || a.Name != names[0] {
				f.t.Fatalf("get(alias0) = %+v, want the account %s", a, names[0])
			}
			return accountBulkMisses - 1, 1
		}},
		{"a user the listing leaves out is looked up (a partial listing)", func(f *cacheFixture, names []string) (int, int) {
			f.db.unlisted = map[string]bool{names[n-1]: true}
			for _, name := range names {
				if a := f.get(name, false); !a.Known {
					f.t.Fatalf("get(%q) = %+v", name, a)
				}
			}
			return accountBulkMisses - 1 + 1, 1
		}},
		{"groups are never answered from the listing, nor counted", func(f *cacheFixture, names []string) (int, int) {
			for _, name := range names {
				if a := f.get(name, true); len(a.Groups) != 1 {
					f.t.Fatalf("get(%q, groups) = %+v", name, a)
				}
			}
			return n, 0
		}},
		{"a listing is kept one TTL, and the next one needs as many misses again", func(f *cacheFixture, names []string) (int, int) {
			half := names[:n/2]
			for _, name := range half {
				f.get(name, false)
			}
			f.clock.Add(accountTTL)
			for _, name := range half {
				f.get(name, false)
			}
			return 2 * (accountBulkMisses - 1), 2
		}},
		{"useradd (passwd replaced) drops the listing", func(f *cacheFixture, names []string) (int, int) {
			for _, name := range names[:accountBulkMisses] {
				f.get(name, false)
			}
			f.write(f.passwd, "erin:x:1000:1000::/home/erin:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n")
			// Within the TTL of the first listing: looked up one by one.
			for _, name := range names[accountBulkMisses:] {
				f.get(name, false)
			}
			return accountBulkMisses - 1 + n - accountBulkMisses, 1
		}},
		{"a failed listing: looked up one by one, and no other listing within a TTL", func(f *cacheFixture, names []string) (int, int) {
			f.db.listErr = errors.New("nss: enumeration not supported")
			for _, name := range names {
				if a := f.get(name, false); !a.Known {
					f.t.Fatalf("get(%q) = %+v", name, a)
				}
			}
			return n, 1
		}},
		{"files changed during a listing: its answers are not kept", func(f *cacheFixture, names []string) (int, int) {
			for _, name := range names[:accountBulkMisses-1] {
				f.get(name, false)
			}
			// The listing of the next miss sees passwd replaced under it.
			f.write(f.passwd+".next", "erin:x:1000:1000::/home/erin:/bin/bash\n")
			list := f.c.list
			f.c.list = func(limit int) (userList, error) {
				if err := os.Rename(f.passwd+".next", f.passwd); err != nil {
					f.t.Fatal(err)
				}
				return list(limit)
			}
			for _, name := range names[accountBulkMisses-1:] {
				f.get(name, false)
			}
			return accountBulkMisses - 1 + n - accountBulkMisses, 1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, names := newListFixture(t, n)
			lookups, lists := tt.run(f, names)
			if got := f.db.count(); got != lookups {
				t.Errorf("user database answered %d lookups, want %d", got, lookups)
			}
			if got := f.db.listCount(); got != lists {
				t.Errorf("user database was listed %d times, want %d", got, lists)
			}
		})
	}
}

// TestAdminImportMany imports many users through the daemon: the account
// cache lists the database once instead of looking each one up, and an
// unknown user is still refused.
func TestAdminImportMany(t *testing.T) {
	f, names := newListFixture(t, 2*accountBulkMisses)
	saved := accounts
	accounts = f.c
	t.Cleanup(func() { accounts = saved })
	d := startDaemon(t, testConfig(t), nil)
	// The daemon's start lists the database once, for the records of
	// second names of accounts (before it answers a request): a listing
	// the cache does not count.
	d.mustDo(&protocol.Request{Op: protocol.OpPing})
	started := f.db.listCount()
	for _, name := range names {
		d.importUser(name)
	}
	if got, want := f.db.count(), accountBulkMisses-1; got != want {
		t.Errorf("importing %d users looked %d up, want %d", len(names), got, want)
	}
	if got := f.db.listCount() - started; got != 1 {
		t.Errorf("importing %d users listed the database %d times, want 1", len(names), got)
	}
	secret, err := otp.GenerateSecret(20)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.do(&protocol.Request{Op: protocol.OpAdminImport, User: "mallory", Import: &protocol.Import{
		Secret: otp.EncodeSecret(secret), Algorithm: "SHA1", Digits: 6, Period: 30,
	}})
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.ErrNotFound || pe.Message != "no such user: mallory" {
		t.Errorf("importing an unknown user after the listing: %v, want no such user", err)
	}
}

// TestListAccountsSystemDatabase lists the real user database and checks
// it against getpwnam and getpwuid.
func TestListAccountsSystemDatabase(t *testing.T) {
	listed, err := listAccounts(accountListMax)
	if err != nil {
		t.Fatal(err)
	}
	if uid, ok := listed.uids[alice]; !ok || uid != aliceUID {
		t.Errorf("%s: uid %d, listed %v; want uid %d", alice, uid, ok, aliceUID)
	}
	for name, uid := range listed.uids {
		a, err := lookupAccount(name, false)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Known || a.UID != uid || a.Name != listed.names[uid] {
			t.Errorf("%s: listed with uid %d, whose first name is %s; NSS says %+v", name, uid, listed.names[uid], a)
		}
	}
	if one, err := listAccounts(1); err != nil || len(one.uids) != 1 || len(one.names) != 1 {
		t.Errorf("listAccounts(1) = %v, %v; want one user", one, err)
	}
}

// TestAuthorizeUsesAccountCache checks the wiring: a login's check and
// verify resolve the user once, with a group policy or without (the name
// must be resolved to its account either way), and a useradd between them
// is seen; the user's own check resolves it too.
func TestAuthorizeUsesAccountCache(t *testing.T) {
	f := newCacheFixture(t)
	saved := accounts
	accounts = f.c
	t.Cleanup(func() { accounts = saved })

	// login runs root's check and verify for erin and returns how many
	// lookups they made.
	login := func(t *testing.T, groups []string) (*testDaemon, int) {
		cfg := testConfig(t)
		cfg.Policy.RequiredGroups = groups
		d := startDaemon(t, cfg, nil)
		secret := d.importUser("erin")
		f.clock.Add(accountTTL) // import resolved erin: start afresh
		before := f.db.count()
		if res := d.startLogin(protocol.Request{User: "erin", Service: "test"}); !shows(res, protocol.OutcomeCodeRequired) {
			t.Fatalf("check: %+v, want a code to be asked for", res)
		}
		if res := d.verify("erin", d.code(secret, 0)); !shows(res, protocol.OutcomeAccept) {
			t.Fatalf("verify: %+v", res)
		}
		return d, f.db.count() - before
	}

	t.Run("policy by name", func(t *testing.T) {
		d, got := login(t, nil)
		if got != 1 {
			t.Errorf("root's check and verify looked erin up %d times, want 1", got)
		}
		before := f.db.count()
		d.clientAs(aliceUID, &protocol.Request{Op: protocol.OpLoginStart, User: alice, Login: &protocol.LoginStart{}})
		if got := f.db.count() - before; got != 1 {
			t.Errorf("alice's own check looked her up %d times, want 1", got)
		}
	})
	t.Run("admin list by name", func(t *testing.T) {
		d, _ := login(t, nil)
		before := f.db.count()
		users := d.mustDo(&protocol.Request{Op: protocol.OpAdminList}).Users
		if len(users) != 1 || users[0].User != "erin" || users[0].State != protocol.StateActive {
			t.Fatalf("admin list: %+v", users)
		}
		if got := f.db.count() - before; got != 0 {
			t.Errorf("admin list under a policy by name looked users up %d times, want 0", got)
		}
	})
	t.Run("admin list by group", func(t *testing.T) {
		d, _ := login(t, []string{"wheel"})
		f.clock.Add(accountTTL)
		before := f.db.count()
		users := d.mustDo(&protocol.Request{Op: protocol.OpAdminList}).Users
		if len(users) != 1 || !users[0].PolicyRequires {
			t.Fatalf("admin list: %+v, want erin required through wheel", users)
		}
		d.mustDo(&protocol.Request{Op: protocol.OpAdminList})
		if got := f.db.count() - before; got != 1 {
			t.Errorf("two admin lists under a group policy looked erin up %d times, want 1 (cached)", got)
		}
	})
	t.Run("policy by group", func(t *testing.T) {
		d, got := login(t, []string{"wheel"})
		if got != 1 {
			t.Errorf("check and verify looked erin up %d times, want 1", got)
		}
		f.write(f.passwd, "erin:x:1000:1000::/home/erin:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n")
		before := f.db.count()
		d.startLogin(protocol.Request{User: "erin", Service: "test"})
		if got := f.db.count() - before; got != 1 {
			t.Errorf("after passwd changed, check looked erin up %d times, want 1", got)
		}
	})
}

// TestAccountCacheSystemDatabase resolves through the real lookupAccount
// and the real /etc/passwd and /etc/group.
func TestAccountCacheSystemDatabase(t *testing.T) {
	c := newAccountCache(lookupAccount, newTestClock(), accountDBFiles)
	tests := []struct {
		name       string
		user       string
		withGroups bool
		want       account
	}{
		{"a system account", alice, false, account{Name: alice, UID: aliceUID, Known: true}},
		{"a system account again, from the cache", alice, false, account{Name: alice, UID: aliceUID, Known: true}},
		{"an unknown name", "otpgate-no-such-user", false, account{Name: "otpgate-no-such-user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := c.get(tt.user, tt.withGroups)
			if err != nil {
				t.Fatal(err)
			}
			if a.Name != tt.want.Name || a.UID != tt.want.UID || a.Known != tt.want.Known {
				t.Errorf("got %+v, want %+v", a, tt.want)
			}
		})
	}
	if n := c.len(); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
	a, err := c.get(bob, true)
	if err != nil {
		t.Fatal(err)
	}
	want, err := lookupAccount(bob, true)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a) != fmt.Sprint(want) {
		t.Errorf("cached %+v, uncached %+v", a, want)
	}
}
