package daemon

import (
	"slices"
	"sync"
	"syscall"
	"time"
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
)

// accountDBFiles are the files backend's databases. Any change to one of
// them (useradd, usermod -aG, vipw: a new inode, size, mtime or ctime)
// empties the cache before the next lookup.
var accountDBFiles = []string{"/etc/passwd", "/etc/group"}

// accounts resolves users for every Server in the process: the user
// database is process-wide state, as NSS's own caches are.
var accounts = newAccountCache(lookupAccount, systemClock{}, accountDBFiles)

// lookupFunc resolves a user; it has lookupAccount's contract.
type lookupFunc func(name string, withGroups bool) (account, error)

// fileSig identifies a version of a file.
type fileSig struct {
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
}

// accountCache is a bounded, short-lived cache in front of a lookupFunc,
// safe for concurrent use. It caches known and unknown users alike, never
// a lookup error, and starts no goroutine.
type accountCache struct {
	lookup lookupFunc
	clock  Clock
	files  []string
	ttl    time.Duration
	max    int

	mu      sync.Mutex // guards the fields below
	sig     []fileSig  // the files when the entries were looked up
	entries map[string]cachedAccount
}

type cachedAccount struct {
	a          account
	withGroups bool // a.Groups was resolved
	expires    time.Time
}

func newAccountCache(lookup lookupFunc, clock Clock, files []string) *accountCache {
	return &accountCache{
		lookup: lookup, clock: clock, files: files, ttl: accountTTL, max: accountCacheSize,
		entries: map[string]cachedAccount{},
	}
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
		c.sig = sig
	}
	e, hit := c.entries[name]
	c.mu.Unlock()
	if hit && now.Before(e.expires) && (e.withGroups || !withGroups) {
		return e.a.clone(), nil
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

// clone returns a with its own copy of the groups.
func (a account) clone() account {
	a.Groups = slices.Clone(a.Groups)
	return a
}
