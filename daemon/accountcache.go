package daemon

import (
	"slices"
	"sync"
	"syscall"
	"time"

	nss "github.com/otpgate/otpgate/internal/accounts"
)

// Every check and verify names a user, and resolving it through NSS
// (getpwnam_r, which the files backend answers by reading /etc/passwd line
// by line) was most of otpgated's CPU per login with thousands of users
// (docs/BENCHMARKS.md, comparison). accountCache keeps the answers briefly.
const (
	// accountTTL is how long a resolved account (or "no such user") is
	// reused. A change to the files backend is seen at once (see
	// accountDBFiles); the TTL bounds how stale an answer from another
	// backend (LDAP, sssd) can be. sssd itself caches for far longer
	// (entry_cache_timeout, 90 minutes by default).
	accountTTL = 5 * time.Second

	// accountCacheSize bounds the cache, so that requests for a flood of
	// made-up names cannot grow otpgated's memory: when it is full, an
	// arbitrary entry makes room for the new one.
	accountCacheSize = 10_000

	// accountBulkMisses is how many users resolved through NSS within one
	// TTL make the cache list the whole user database once (getpwent),
	// as `otpgate admin import` of thousands of users does: the files
	// backend reads /etc/passwd to the user's line for each getpwnam, so
	// resolving N users one by one reads about N×N/2 lines, and listing
	// them reads N. The list answers, for one TTL, the users it names,
	// and their canonical names: the first name it lists for a uid, which
	// is the one getpwuid returns; "no such user" and groups still come
	// from NSS (a backend may list only part of its users, as sssd does
	// by default).
	accountBulkMisses = 100

	// accountListMax bounds the list (about 50 bytes a user); the users
	// past it are resolved one by one.
	accountListMax = 250_000
)

// accountDBFiles are the files backend's databases. Any change to one of
// them (useradd, usermod -aG, vipw: a new inode, size, mtime or ctime)
// empties the cache before the next lookup.
var accountDBFiles = []string{"/etc/passwd", "/etc/group"}

// accounts resolves users for every Server in the process: the user
// database is process-wide state, as NSS's own caches are.
var accounts = newAccountCache(lookupAccount, systemClock{}, accountDBFiles).withList(listAccounts)

// lookupFunc resolves a user; it has lookupAccount's contract.
type lookupFunc func(name string, withGroups bool) (account, error)

// listFunc lists at most limit users of the user database: listAccounts's
// contract.
type listFunc func(limit int) (userList, error)

// userList is a listing of the user database.
type userList struct {
	uids  map[string]uint32 // each name with the uid of its first entry (getpwnam's)
	names map[uint32]string // each uid with its first name (getpwuid's)
}

// account returns the listed account of name, named canonically, or false
// if the listing does not name it or its uid's first name leads to
// another uid (then NSS is asked, and tells).
func (l *userList) account(name string) (account, bool) {
	uid, ok := l.uids[name]
	if !ok {
		return account{}, false
	}
	canon, ok := l.names[uid]
	if !ok || l.uids[canon] != uid {
		return account{}, false
	}
	return account{Name: canon, UID: uid, Known: true}, true
}

// fileSig identifies a version of a file.
type fileSig struct {
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
}

// accountCache is a bounded, short-lived cache in front of a lookupFunc,
// safe for concurrent use. It caches known and unknown users alike, never
// a lookup error, and starts no goroutine. When many users miss it within
// a TTL it also keeps a list of the whole user database for a TTL (see
// accountBulkMisses).
type accountCache struct {
	lookup     lookupFunc
	list       listFunc // nil: never list
	clock      Clock
	files      []string
	ttl        time.Duration
	max        int
	bulkMisses int
	listMax    int

	mu      sync.Mutex // guards the fields below
	sig     []fileSig  // the files when the entries were looked up
	entries map[string]cachedAccount

	missesFrom time.Time // start of the window misses counts in
	misses     int       // lookups without groups through NSS since missesFrom
	listing    bool      // a call is listing the database
	listedAt   time.Time // when the last listing started (zero: never)
	listed     *userList // nil: none
}

type cachedAccount struct {
	a          account
	withGroups bool // a.Groups was resolved
	expires    time.Time
}

func newAccountCache(lookup lookupFunc, clock Clock, files []string) *accountCache {
	return &accountCache{
		lookup: lookup, clock: clock, files: files, ttl: accountTTL, max: accountCacheSize,
		bulkMisses: accountBulkMisses, listMax: accountListMax,
		entries: map[string]cachedAccount{},
	}
}

// withList makes c list the user database with list when many users miss
// it, and returns c.
func (c *accountCache) withList(list listFunc) *accountCache {
	c.list = list
	return c
}

// get resolves name like lookupAccount, from the cache when it can. The
// account returned is the caller's to modify.
func (c *accountCache) get(name string, withGroups bool) (account, error) {
	sig, ok := c.stat()
	if !ok {
		// Whether the files changed cannot be told: do not cache.
		return c.lookup(name, withGroups)
	}
	now := c.clock.Now()
	c.mu.Lock()
	if !slices.Equal(sig, c.sig) {
		clear(c.entries)
		c.listed = nil
		c.sig = sig
	}
	if e, hit := c.entries[name]; hit && now.Before(e.expires) && (e.withGroups || !withGroups) {
		c.mu.Unlock()
		return e.a.clone(), nil
	}
	list := false
	if !withGroups {
		if c.listed != nil && !now.Before(c.listedAt.Add(c.ttl)) {
			c.listed = nil
		}
		if c.listed != nil {
			if a, ok := c.listed.account(name); ok {
				c.mu.Unlock()
				return a, nil
			}
		}
		list = c.countMiss(now)
	}
	c.mu.Unlock()

	if list {
		if l := c.listAll(sig); l != nil {
			if a, ok := l.account(name); ok {
				return a, nil
			}
		}
	}
	a, err := c.lookup(name, withGroups)
	if err != nil {
		return account{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// The entry is filed under the signature taken before the lookup, so a
	// change of the files during the lookup empties the cache on the next
	// call. If another call saw different files meanwhile, it emptied the
	// cache, and this answer is not kept.
	if !slices.Equal(sig, c.sig) {
		return a, nil
	}
	if _, ok := c.entries[name]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[name] = cachedAccount{a: a.clone(), withGroups: withGroups, expires: now.Add(c.ttl)}
	return a, nil
}

// countMiss counts a lookup without groups that the cache cannot answer,
// and reports whether the caller is to list the user database: when
// bulkMisses such lookups came within a TTL, no other call is listing, and
// the last listing started a TTL ago or more (so at most one listing per
// TTL, whoever sends the requests). c.mu must be held.
func (c *accountCache) countMiss(now time.Time) bool {
	if c.list == nil {
		return false
	}
	if !now.Before(c.missesFrom.Add(c.ttl)) {
		c.missesFrom, c.misses = now, 0
	}
	c.misses++
	if c.misses < c.bulkMisses || c.listing || (!c.listedAt.IsZero() && now.Before(c.listedAt.Add(c.ttl))) {
		return false
	}
	c.listing, c.listedAt = true, now
	return true
}

// listAll lists the user database and keeps the list for a TTL if the
// files are still as sig says; it returns the list, or nil if listing
// failed (the callers then look users up one by one, and the next listing
// waits a TTL).
func (c *accountCache) listAll(sig []fileSig) *userList {
	listed, err := c.list(c.listMax)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listing = false
	if err != nil {
		return nil
	}
	// As for an entry: a change of the files during the listing empties
	// it on the next call.
	if slices.Equal(sig, c.sig) {
		c.listed = &listed
	}
	return &listed
}

// stat returns the signatures of the files, or false if one cannot be
// read.
func (c *accountCache) stat() ([]fileSig, bool) {
	sig := make([]fileSig, len(c.files))
	for i, f := range c.files {
		var st syscall.Stat_t
		if err := syscall.Stat(f, &st); err != nil {
			return nil, false
		}
		sig[i] = fileSig{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
	}
	return sig, true
}

// len returns the number of entries.
func (c *accountCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// listAccounts lists the user database through NSS (nss.EachUser): at
// most limit users, each name once, with the uid of its first entry, which
// is the one getpwnam returns, and each uid with its first name, the one
// getpwuid returns (NSS asks the sources in the order it lists them).
func listAccounts(limit int) (userList, error) {
	out := userList{uids: map[string]uint32{}, names: map[uint32]string{}}
	err := nss.EachUser(func(u *nss.User) error {
		if len(out.uids) >= limit {
			return nss.ErrStop
		}
		if _, dup := out.uids[u.Name]; !dup {
			out.uids[u.Name] = u.UID
		}
		if _, dup := out.names[u.UID]; !dup {
			out.names[u.UID] = u.Name
		}
		return nil
	})
	if err != nil {
		return userList{}, err
	}
	return out, nil
}

// clone returns a with its own copy of the groups.
func (a account) clone() account {
	a.Groups = slices.Clone(a.Groups)
	return a
}
