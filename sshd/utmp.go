package sshd

/*
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <utmpx.h>
#include <lastlog.h>

// otpgate_pututx writes ut to the utmp file (replacing the entry of the same
// ut_id and line) and appends it to the wtmp file, as login(3) and
// logout(3) do. It returns 0, or -1 if the utmp entry could not be written.
static int otpgate_pututx(const char *utmp, const char *wtmp, struct utmpx *ut) {
	int rc = 0;
	if (utmpxname(utmp) != 0) {
		rc = -1;
	} else {
		setutxent();
		if (pututxline(ut) == NULL) {
			rc = -1;
		}
		endutxent();
	}
	updwtmpx(wtmp, ut);
	return rc;
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"
	"unsafe"
)

// loginFiles are the login record files; tests point them elsewhere.
type loginFiles struct {
	UTMP    string
	WTMP    string
	Lastlog string
}

// defaultLoginFiles are glibc's and shadow's paths on Linux.
var defaultLoginFiles = loginFiles{UTMP: "/var/run/utmp", WTMP: "/var/log/wtmp", Lastlog: "/var/log/lastlog"}

// loginRecord describes one terminal session for utmp, wtmp and lastlog,
// written as OpenSSH does, only for sessions with a terminal: a
// USER_PROCESS entry at the start, a DEAD_PROCESS entry at the end.
type loginRecord struct {
	Files loginFiles
	User  string
	UID   uint32
	// TTY is the terminal's path, /dev/pts/N.
	TTY string
	// Host is the client's address.
	Host string
	// PID is the session's process, filled in by the session helper.
	PID int32
}

// line is the terminal as utmp names it: the path without /dev/.
func (r *loginRecord) line() string { return strings.TrimPrefix(r.TTY, "/dev/") }

// id is the utmp entry's ut_id: the terminal's number for a pseudo
// terminal (as OpenSSH writes it), else the last four bytes of the line.
func (r *loginRecord) id() string {
	l := r.line()
	if n, ok := strings.CutPrefix(l, "pts/"); ok {
		l = n
	}
	if len(l) > 4 {
		l = l[len(l)-4:]
	}
	return l
}

// setField copies s into a fixed C char array of n bytes (truncated, and
// NUL-padded when shorter).
func setField(dst unsafe.Pointer, n int, s string) {
	b := unsafe.Slice((*byte)(dst), n)
	clear(b)
	copy(b, s)
}

func (r *loginRecord) utmpx(typ C.short, now time.Time) C.struct_utmpx {
	var ut C.struct_utmpx
	ut.ut_type = typ
	ut.ut_pid = C.pid_t(r.PID)
	setField(unsafe.Pointer(&ut.ut_line[0]), len(ut.ut_line), r.line())
	setField(unsafe.Pointer(&ut.ut_id[0]), len(ut.ut_id), r.id())
	if typ == C.USER_PROCESS {
		setField(unsafe.Pointer(&ut.ut_user[0]), len(ut.ut_user), r.User)
		setField(unsafe.Pointer(&ut.ut_host[0]), len(ut.ut_host), r.Host)
		if ip := net.ParseIP(r.Host); ip != nil {
			addr := unsafe.Slice((*byte)(unsafe.Pointer(&ut.ut_addr_v6[0])), 16)
			if v4 := ip.To4(); v4 != nil {
				copy(addr, v4)
			} else {
				copy(addr, ip.To16())
			}
		}
	}
	ut.ut_tv.tv_sec = C.int32_t(now.Unix())
	ut.ut_tv.tv_usec = C.int32_t(now.Nanosecond() / 1000)
	return ut
}

func (r *loginRecord) put(typ C.short) error {
	ut := r.utmpx(typ, time.Now())
	cu, cw := C.CString(r.Files.UTMP), C.CString(r.Files.WTMP)
	defer C.free(unsafe.Pointer(cu))
	defer C.free(unsafe.Pointer(cw))
	if C.otpgate_pututx(cu, cw, &ut) != 0 {
		return fmt.Errorf("login records: cannot write %s", r.Files.UTMP)
	}
	return nil
}

// login writes the USER_PROCESS entries and the user's lastlog entry.
func (r *loginRecord) login() error {
	err := r.put(C.USER_PROCESS)
	if lerr := r.lastlog(time.Now()); lerr != nil {
		err = errors.Join(err, lerr)
	}
	return err
}

// logout marks the terminal's utmp entry dead and appends the logout to
// wtmp.
func (r *loginRecord) logout() error { return r.put(C.DEAD_PROCESS) }

// lastlog writes the user's entry of the lastlog file, a table indexed by
// uid, if the system keeps one (the file exists).
func (r *loginRecord) lastlog(now time.Time) error {
	if r.Files.Lastlog == "" {
		return nil
	}
	f, err := os.OpenFile(r.Files.Lastlog, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("login records: %w", err)
	}
	defer f.Close()
	var ll C.struct_lastlog
	size := int64(unsafe.Sizeof(ll))
	buf := make([]byte, size)
	if unsafe.Sizeof(ll.ll_time) == 8 {
		binary.NativeEndian.PutUint64(buf, uint64(now.Unix()))
	} else {
		binary.NativeEndian.PutUint32(buf, uint32(now.Unix()))
	}
	copy(buf[unsafe.Offsetof(ll.ll_line):][:len(ll.ll_line)-1], r.line())
	copy(buf[unsafe.Offsetof(ll.ll_host):][:len(ll.ll_host)-1], r.Host)
	if _, err := f.WriteAt(buf, int64(r.UID)*size); err != nil {
		return fmt.Errorf("login records: %w", err)
	}
	return nil
}
