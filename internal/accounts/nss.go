package accounts

/*
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <shadow.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

// The wrappers keep errno and the result pointer on the C side, where the
// reentrant calls set them.

static int otpgate_getpwnam(const char *name, struct passwd *pw, char *buf, size_t len, int *found) {
	struct passwd *res = NULL;
	int rc = getpwnam_r(name, pw, buf, len, &res);
	*found = res != NULL;
	return rc;
}

static int otpgate_getpwuid(uid_t uid, struct passwd *pw, char *buf, size_t len, int *found) {
	struct passwd *res = NULL;
	int rc = getpwuid_r(uid, pw, buf, len, &res);
	*found = res != NULL;
	return rc;
}

static int otpgate_getgrgid(gid_t gid, struct group *gr, char *buf, size_t len, int *found) {
	struct group *res = NULL;
	int rc = getgrgid_r(gid, gr, buf, len, &res);
	*found = res != NULL;
	return rc;
}

static int otpgate_getgrnam(const char *name, struct group *gr, char *buf, size_t len, int *found) {
	struct group *res = NULL;
	int rc = getgrnam_r(name, gr, buf, len, &res);
	*found = res != NULL;
	return rc;
}

static int otpgate_getspnam(const char *name, struct spwd *sp, char *buf, size_t len, int *found) {
	struct spwd *res = NULL;
	int rc = getspnam_r(name, sp, buf, len, &res);
	*found = res != NULL;
	return rc;
}

// otpgate_getpwent and otpgate_getgrent return 0 with *found = 0 at the
// end of the list (getpwent_r says ENOENT there).
static int otpgate_getpwent(struct passwd *pw, char *buf, size_t len, int *found) {
	struct passwd *res = NULL;
	int rc = getpwent_r(pw, buf, len, &res);
	*found = res != NULL;
	return rc == ENOENT && res == NULL ? 0 : rc;
}

static int otpgate_getgrent(struct group *gr, char *buf, size_t len, int *found) {
	struct group *res = NULL;
	int rc = getgrent_r(gr, buf, len, &res);
	*found = res != NULL;
	return rc == ENOENT && res == NULL ? 0 : rc;
}

static int otpgate_getgrouplist(const char *name, gid_t gid, gid_t *groups, int *n) {
	return getgrouplist(name, gid, groups, n);
}

static char *otpgate_member(char **mem, int i) { return mem[i]; }

static int otpgate_locked(const char *pwd) { return pwd != NULL && (pwd[0] == '!' || pwd[0] == '*'); }
*/
import "C"

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"syscall"
	"unsafe"
)

// ErrStop may be returned by the function EachUser or EachGroup calls, to end
// the enumeration early; EachUser or EachGroup then returns nil.
var ErrStop = errors.New("accounts: stop")

// withBuffer calls f with a C buffer, growing it while f says ERANGE.
func withBuffer(what string, f func(buf *C.char, size C.size_t) C.int) error {
	size := C.size_t(16 << 10)
	for {
		buf := C.malloc(size)
		if buf == nil {
			return fmt.Errorf("accounts: %s: out of memory", what)
		}
		rc := f((*C.char)(buf), size)
		C.free(buf)
		switch {
		case rc == 0:
			return nil
		case rc == C.ERANGE && size < maxBuffer:
			size *= 4
		case rc == C.ERANGE:
			return fmt.Errorf("accounts: %s: the entry is larger than %d bytes", what, maxBuffer)
		default:
			return fmt.Errorf("accounts: %s: %w", what, syscall.Errno(rc))
		}
	}
}

// userOf copies a struct passwd into Go memory.
func userOf(pw *C.struct_passwd) *User {
	return &User{
		Name: C.GoString(pw.pw_name), UID: uint32(pw.pw_uid), GID: uint32(pw.pw_gid),
		Gecos: C.GoString(pw.pw_gecos), Home: C.GoString(pw.pw_dir), Shell: C.GoString(pw.pw_shell),
	}
}

// groupOf copies a struct group into Go memory.
func groupOf(gr *C.struct_group) *Group {
	g := &Group{Name: C.GoString(gr.gr_name), GID: uint32(gr.gr_gid)}
	if gr.gr_mem != nil {
		for i := C.int(0); ; i++ {
			m := C.otpgate_member(gr.gr_mem, i)
			if m == nil {
				break
			}
			g.Members = append(g.Members, C.GoString(m))
		}
	}
	return g
}

// passwdCall is one of the wrappers of a reentrant passwd call: it fills
// pw from buf and sets found, or returns an error number.
type passwdCall func(pw *C.struct_passwd, buf *C.char, size C.size_t, found *C.int) C.int

// groupCall is passwdCall for struct group.
type groupCall func(gr *C.struct_group, buf *C.char, size C.size_t, found *C.int) C.int

// getUser runs call with a buffer large enough for the entry, and returns
// the entry, or nil if there is none.
func getUser(what string, call passwdCall) (*User, error) {
	var u *User
	err := withBuffer(what, func(buf *C.char, size C.size_t) C.int {
		var pw C.struct_passwd
		var found C.int
		rc := call(&pw, buf, size, &found)
		if rc == 0 && found != 0 {
			u = userOf(&pw)
		}
		return rc
	})
	return u, err
}

// getGroup is getUser for groups.
func getGroup(what string, call groupCall) (*Group, error) {
	var g *Group
	err := withBuffer(what, func(buf *C.char, size C.size_t) C.int {
		var gr C.struct_group
		var found C.int
		rc := call(&gr, buf, size, &found)
		if rc == 0 && found != 0 {
			g = groupOf(&gr)
		}
		return rc
	})
	return g, err
}

// LookupUser returns the user named name (getpwnam_r), or an
// UnknownUserError if there is none.
func LookupUser(name string) (*User, error) {
	if !validName(name) {
		return nil, UnknownUserError(name)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	u, err := getUser("look up user "+name, func(pw *C.struct_passwd, buf *C.char, size C.size_t, found *C.int) C.int {
		return C.otpgate_getpwnam(cname, pw, buf, size, found)
	})
	if err == nil && u == nil {
		err = UnknownUserError(name)
	}
	return u, err
}

// LookupUID returns the user with uid (getpwuid_r): the first entry NSS
// has for it, whose name is the account's canonical name. It returns an
// UnknownUIDError if there is none.
func LookupUID(uid uint32) (*User, error) {
	u, err := getUser(fmt.Sprintf("look up uid %d", uid), func(pw *C.struct_passwd, buf *C.char, size C.size_t, found *C.int) C.int {
		return C.otpgate_getpwuid(C.uid_t(uid), pw, buf, size, found)
	})
	if err == nil && u == nil {
		err = UnknownUIDError(uid)
	}
	return u, err
}

// LookupGID returns the group with gid (getgrgid_r), or an UnknownGIDError
// if there is none.
func LookupGID(gid uint32) (*Group, error) {
	g, err := getGroup(fmt.Sprintf("look up gid %d", gid), func(gr *C.struct_group, buf *C.char, size C.size_t, found *C.int) C.int {
		return C.otpgate_getgrgid(C.gid_t(gid), gr, buf, size, found)
	})
	if err == nil && g == nil {
		err = UnknownGIDError(gid)
	}
	return g, err
}

// LookupGroup returns the group named name (getgrnam_r); the error wraps
// ErrNotFound if there is none.
func LookupGroup(name string) (*Group, error) {
	unknown := fmt.Errorf("accounts: no such group %q: %w", name, ErrNotFound)
	if !validName(name) {
		return nil, unknown
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	g, err := getGroup("look up group "+name, func(gr *C.struct_group, buf *C.char, size C.size_t, found *C.int) C.int {
		return C.otpgate_getgrnam(cname, gr, buf, size, found)
	})
	if err == nil && g == nil {
		err = unknown
	}
	return g, err
}

// GroupIDs returns the gids of all of u's groups (getgrouplist): its
// primary group first, then the groups that list it as a member, in every
// NSS source.
func GroupIDs(u *User) ([]uint32, error) {
	if !validName(u.Name) {
		return nil, UnknownUserError(u.Name)
	}
	cname := C.CString(u.Name)
	defer C.free(unsafe.Pointer(cname))
	n := C.int(64)
	for {
		buf := (*C.gid_t)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.gid_t(0)))))
		if buf == nil {
			return nil, fmt.Errorf("accounts: groups of %s: out of memory", u.Name)
		}
		want := n
		rc := C.otpgate_getgrouplist(cname, C.gid_t(u.GID), buf, &want)
		if rc >= 0 {
			gids := make([]uint32, 0, int(want))
			for _, g := range unsafe.Slice(buf, int(want)) {
				gids = append(gids, uint32(g))
			}
			C.free(unsafe.Pointer(buf))
			return primaryFirst(gids, u.GID), nil
		}
		C.free(unsafe.Pointer(buf))
		// getgrouplist says how many it needs in want; some versions
		// only say that n was too few.
		switch {
		case want > n:
			n = want
		case n < 1<<16:
			n *= 4
		default:
			return nil, fmt.Errorf("accounts: groups of %s: more than %d", u.Name, n)
		}
	}
}

// primaryFirst returns gids with gid first and only once.
func primaryFirst(gids []uint32, gid uint32) []uint32 {
	out := []uint32{gid}
	for _, g := range gids {
		if g != gid {
			out = append(out, g)
		}
	}
	return out
}

// shadowFile is the file the files backend of the shadow database reads.
const shadowFile = "/etc/shadow"

// LookupShadow returns the shadow fields of the user named name
// (getspnam_r). The error wraps ErrNotFound if NSS has no shadow entry for
// it (a user whose source keeps none, as LDAP often does). Only root may
// read the files backend's /etc/shadow: for others the error says so, and
// wraps fs.ErrPermission.
func LookupShadow(name string) (*Shadow, error) {
	if !validName(name) {
		return nil, fmt.Errorf("accounts: no shadow entry for %q: %w", name, ErrNotFound)
	}
	if err := shadowReadable(name); err != nil {
		return nil, err
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var s *Shadow
	err := withBuffer("read the shadow entry of "+name, func(buf *C.char, size C.size_t) C.int {
		var sp C.struct_spwd
		var found C.int
		rc := C.otpgate_getspnam(cname, &sp, buf, size, &found)
		if rc == 0 && found != 0 {
			s = &Shadow{
				Name:   C.GoString(sp.sp_namp),
				Locked: C.otpgate_locked(sp.sp_pwdp) != 0,
				// The hash stays in C memory, which is freed below.
				LastChange: int64(sp.sp_lstchg), Min: int64(sp.sp_min), Max: int64(sp.sp_max),
				Warn: int64(sp.sp_warn), Inactive: int64(sp.sp_inact), Expire: int64(sp.sp_expire),
			}
		}
		return rc
	})
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("accounts: no shadow entry for %q: %w", name, ErrNotFound)
	}
	return s, nil
}

// shadowReadable returns an error unless the files backend can read
// /etc/shadow with this process's effective credentials (or there is no
// such file). Otherwise getspnam_r would not fail: the files backend
// does, NSS asks the next source, and its answer stands for the whole
// database (systemd's makes up a locked root). name is for the message.
func shadowReadable(name string) error {
	cpath := C.CString(shadowFile)
	defer C.free(unsafe.Pointer(cpath))
	rc, err := C.euidaccess(cpath, C.R_OK)
	switch {
	case rc == 0 || errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("accounts: reading the shadow entry of %s needs root: %s: %w", name, shadowFile, err)
	default:
		return fmt.Errorf("accounts: read the shadow entry of %s: %s: %w", name, shadowFile, err)
	}
}

// enumMu serialises enumerations: getpwent_r and getgrent_r each walk one
// list per process.
var enumMu sync.Mutex

// each calls fn for every entry next returns until it returns nil, under
// enumMu, between start and end.
func each[T any](start, end func(), next func() (*T, error), fn func(*T) error) error {
	enumMu.Lock()
	defer enumMu.Unlock()
	start()
	defer end()
	for {
		v, err := next()
		if err != nil || v == nil {
			return err
		}
		if err := fn(v); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
}

// EachUser calls fn for every entry of the user database (setpwent,
// getpwent_r, endpwent), in the order NSS lists them, one at a time, so
// that a directory of 100 000 users is never held whole. A name may come
// twice (from two sources); the first is the one LookupUser returns. A
// source may list only part of its users (sssd by default lists none).
// fn may return ErrStop to end early; any other error ends the enumeration
// and is returned. fn must not call EachUser or EachGroup.
func EachUser(fn func(*User) error) error {
	next := func() (*User, error) {
		return getUser("list users", func(pw *C.struct_passwd, buf *C.char, size C.size_t, found *C.int) C.int {
			return C.otpgate_getpwent(pw, buf, size, found)
		})
	}
	return each(func() { C.setpwent() }, func() { C.endpwent() }, next, fn)
}

// EachGroup calls fn for every entry of the group database (setgrent,
// getgrent_r, endgrent), as EachUser does for users.
func EachGroup(fn func(*Group) error) error {
	next := func() (*Group, error) {
		return getGroup("list groups", func(gr *C.struct_group, buf *C.char, size C.size_t, found *C.int) C.int {
			return C.otpgate_getgrent(gr, buf, size, found)
		})
	}
	return each(func() { C.setgrent() }, func() { C.endgrent() }, next, fn)
}
