//go:build integration

package integration

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
)

// sysCall is one system call in an strace -f log: its name, its text
// (arguments, with a resumed call's two halves joined), its result, and
// the log lines where it was entered and where it returned.
type sysCall struct {
	pid        int
	name       string
	args       string
	ret        string
	start, end int
}

// fdTarget is what -yy printed for the call's first argument: a path or
// "UNIX-STREAM:[inode->peer]"; "" when the first argument is not an fd.
func (c *sysCall) fdTarget() string {
	if m := fdArgRE.FindStringSubmatch(c.args); m != nil {
		return m[1]
	}
	return ""
}

// ok reports whether the call succeeded (its result is not -1 or "?").
func (c *sysCall) ok() bool { return !strings.HasPrefix(c.ret, "-1") && !strings.HasPrefix(c.ret, "?") }

var (
	fdArgRE      = regexp.MustCompile(`^\d+<(UNIX-STREAM:\[[^\]]*\]|[^>]*)>`)
	straceDoneRE = regexp.MustCompile(`^(\d+)\s+(\w+)\((.*)\)\s+= (.*)$`)
	straceOpenRE = regexp.MustCompile(`^(\d+)\s+(\w+)\((.*) <unfinished \.\.\.>$`)
	straceBackRE = regexp.MustCompile(`^(\d+)\s+<\.\.\. (\w+) resumed>(.*)\)\s+= (.*)$`)
	lastArgRE    = regexp.MustCompile(`, (\d+)$`)
	requestIDRE  = regexp.MustCompile(`\\"id\\":(\d+)`)
)

// parseStrace parses the output of strace -f -yy into calls, in the order
// in which they returned. Signals, exits and calls still running at the
// end are left out.
func parseStrace(log string) []*sysCall {
	var calls []*sysCall
	open := map[int]*sysCall{}
	for i, line := range strings.Split(log, "\n") {
		if m := straceDoneRE.FindStringSubmatch(line); m != nil {
			pid, _ := strconv.Atoi(m[1])
			calls = append(calls, &sysCall{pid: pid, name: m[2], args: m[3], ret: m[4], start: i, end: i})
		} else if m := straceOpenRE.FindStringSubmatch(line); m != nil {
			pid, _ := strconv.Atoi(m[1])
			open[pid] = &sysCall{pid: pid, name: m[2], args: m[3], start: i}
		} else if m := straceBackRE.FindStringSubmatch(line); m != nil {
			pid, _ := strconv.Atoi(m[1])
			if c := open[pid]; c != nil && c.name == m[2] {
				c.args += m[3]
				c.ret, c.end = m[4], i
				calls = append(calls, c)
				delete(open, pid)
			}
		}
	}
	return calls
}

// durabilityReport is what checkAckAfterSync found.
type durabilityReport struct {
	accepts    int      // accept replies paired with their request
	violations []string // accepts sent without a synced commit in between
	unpaired   []string // accept replies whose request read was not found
	dirSyncs   []string // creates and renames in the state dir not followed by a directory fsync
	created    int      // creates and renames in the state dir seen
}

// checkAckAfterSync pairs every login_answer read from a socket with the
// success reply written to the same socket (by request id), and checks
// that between the two a meta page of the store (bbolt's commit point: a
// pwrite64 at page 0 or 1) was written and then an fdatasync or fsync of
// the store returned. It also checks that every file created or renamed
// into stateDir is followed by an fsync of the directory before the first
// request is read.
func checkAckAfterSync(calls []*sysCall, db, stateDir string, pageSize int) durabilityReport {
	var r durabilityReport
	type read struct {
		fd  string
		end int
	}
	requests := map[string]read{}
	firstRequest := -1
	for _, c := range calls {
		if !c.ok() || !strings.HasPrefix(c.fdTarget(), "UNIX-STREAM:") {
			continue
		}
		m := requestIDRE.FindStringSubmatch(c.args)
		if m == nil {
			continue
		}
		switch {
		case c.name == "read" && strings.Contains(c.args, `\"op\":\"login_answer\"`):
			requests[m[1]] = read{fd: c.fdTarget(), end: c.end}
			if firstRequest < 0 || c.end < firstRequest {
				firstRequest = c.end
			}
		case c.name == "write" && strings.Contains(c.args, `\"verdict\":\"success\"`):
			req, found := requests[m[1]]
			if !found || req.fd != c.fdTarget() {
				r.unpaired = append(r.unpaired, fmt.Sprintf("reply id %s on %s (line %d)", m[1], c.fdTarget(), c.start+1))
				continue
			}
			r.accepts++
			if !syncedBetween(calls, db, pageSize, req.end, c.start) {
				r.violations = append(r.violations, fmt.Sprintf("request id %s read at line %d, accepted at line %d with no meta-page write and store fsync in between", m[1], req.end+1, c.start+1))
			}
		}
	}
	for _, c := range calls {
		if !c.ok() || (firstRequest >= 0 && c.end > firstRequest) {
			continue
		}
		created := (c.name == "openat" && strings.Contains(c.args, "O_CREAT") && strings.Contains(c.args, stateDir+"/")) ||
			((c.name == "rename" || c.name == "renameat2") && strings.Contains(c.args, stateDir+"/"))
		if !created {
			continue
		}
		r.created++
		synced := false
		for _, s := range calls {
			if s.start > c.end && (s.name == "fsync" || s.name == "fdatasync") && s.ok() && s.fdTarget() == stateDir {
				synced = firstRequest < 0 || s.end < firstRequest
				break
			}
		}
		if !synced {
			r.dirSyncs = append(r.dirSyncs, fmt.Sprintf("line %d: %s(%s)", c.start+1, c.name, c.args))
		}
	}
	return r
}

// syncedBetween reports whether, after line from and before line to, a
// meta page of db was written and then db was fsync'd.
func syncedBetween(calls []*sysCall, db string, pageSize, from, to int) bool {
	meta := -1 // end line of the first meta-page write after from
	for _, c := range calls {
		if c.start <= from || c.end >= to || !c.ok() || c.fdTarget() != db {
			continue
		}
		switch c.name {
		case "pwrite64":
			off := lastArgRE.FindStringSubmatch(c.args)
			if off == nil {
				continue
			}
			if n, _ := strconv.Atoi(off[1]); n < 2*pageSize && (meta < 0 || c.end < meta) {
				meta = c.end
			}
		case "fdatasync", "fsync":
			if meta >= 0 && c.start > meta {
				return true
			}
		}
	}
	return false
}

// TestReliabilityAckAfterFsync: otpgated runs under strace from a
// fresh state directory; about a hundred codes are accepted by four
// concurrent clients; the trace must show, for every accept reply, the
// store's commit point (meta page) written and fdatasync'd between reading
// the request and writing the reply, and a directory fsync after every
// file created or renamed in the state directory.
func TestReliabilityAckAfterFsync(t *testing.T) {
	container.Require(t, "strace")
	e := newRelContainer(t, relConfig("info"))
	const trace = "/tmp/otpgated.strace"
	p := e.startWrapped("strace", "-f", "-yy", "-s", "1024", "-o", trace,
		"-e", "trace=read,write,pwrite64,pwritev,fsync,fdatasync,sync_file_range,openat,rename,renameat,renameat2")

	const users = 34 // three accepts each: steps now-1, now and now+1
	var list []*relUser
	for i := range users {
		list = append(list, e.enroll(fmt.Sprintf("rsync%02d", i), 30))
	}
	var mu sync.Mutex
	accepted := 0
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(list); i += 4 {
				u := list[i]
				center := u.step()
				for s := center - 1; s <= center+1; s++ {
					out, _ := e.verify(e.client, u.name, u.code(s))
					mu.Lock()
					if out == string(protocol.OutcomeAccept) {
						accepted++
					} else {
						t.Errorf("%s step %d: %s, want accept", u.name, s, out)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	// SIGTERM to otpgated itself (strace would detach and leave it).
	if err := syscall.Kill(daemonHostPid(t, p), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("strace and otpgated still running 30s after SIGTERM")
	}

	calls := parseStrace(string(e.c.ReadFile(t, trace)))
	r := checkAckAfterSync(calls, relDB, relStateDir, 4096)
	if r.accepts != accepted || accepted < 100 {
		t.Errorf("paired %d accept replies in the trace; the clients got %d accepts (want the same, at least 100)", r.accepts, accepted)
	}
	for _, v := range r.violations {
		t.Error("ack before fsync: " + v)
	}
	for _, u := range r.unpaired {
		t.Error("accept reply without its request in the trace: " + u)
	}
	for _, d := range r.dirSyncs {
		t.Error("no directory fsync after: " + d)
	}
	// A fresh state directory gets the key (temp file, rename) and the
	// store.
	if r.created < 3 {
		t.Errorf("saw %d creates and renames in %s; want at least 3 (key temp file, its rename, the store)", r.created, relStateDir)
	}
	t.Logf("ack after fsync: %d accepts traced (%d calls), %d violations; %d creates/renames in the state dir, %d without a directory fsync", r.accepts, len(calls), len(r.violations), r.created, len(r.dirSyncs))
}

// TestStraceChecker feeds the durability checker hand-written traces: it
// must find the violations the ack-after-fsync check exists to catch.
func TestStraceChecker(t *testing.T) {
	const db = "/var/lib/otpgate/otpgate.db"
	req := `7  read(9<UNIX-STREAM:[10->11]>, "{\"v\":1,\"id\":42,\"op\":\"login_answer\",\"answers\":[\"1\"]}", 60) = 60`
	reply := `7  write(9<UNIX-STREAM:[10->11]>, "\0\0\0\20{\"v\":1,\"id\":42,\"step\":{\"verdict\":\"success\"}}", 50) = 50`
	data := `8  pwrite64(5</var/lib/otpgate/otpgate.db>, "..."..., 4096, 16384) = 4096`
	meta := `8  pwrite64(5</var/lib/otpgate/otpgate.db>, "..."..., 4096, 4096) = 4096`
	sync := `8  fdatasync(5</var/lib/otpgate/otpgate.db>) = 0`
	failedSync := `8  fdatasync(5</var/lib/otpgate/otpgate.db>) = -1 EIO (Input/output error)`
	tests := []struct {
		name       string
		lines      []string
		violations int
		unpaired   int
	}{
		{"data, sync, meta, sync before the reply", []string{req, data, sync, meta, sync, reply}, 0, 0},
		{"sync split across threads", []string{req, data, sync, meta, `8  fdatasync(5</var/lib/otpgate/otpgate.db> <unfinished ...>`, `9  read(3<pipe:[1]>, "", 1) = 0`, `8  <... fdatasync resumed>) = 0`, reply}, 0, 0},
		{"no sync at all", []string{req, data, meta, reply}, 1, 0},
		{"meta written but not synced", []string{req, data, sync, meta, reply}, 1, 0},
		{"failed sync", []string{req, data, sync, meta, failedSync, reply}, 1, 0},
		{"sync still running when the reply is written", []string{req, data, sync, meta, `8  fdatasync(5</var/lib/otpgate/otpgate.db> <unfinished ...>`, reply, `8  <... fdatasync resumed>) = 0`}, 1, 0},
		{"commit before the request was read", []string{data, sync, meta, sync, req, reply}, 1, 0},
		{"reply on another socket", []string{req, data, sync, meta, sync, strings.Replace(reply, "[10->11]", "[12->13]", 1)}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := checkAckAfterSync(parseStrace(strings.Join(tt.lines, "\n")), db, "/var/lib/otpgate", 4096)
			if len(r.violations) != tt.violations || len(r.unpaired) != tt.unpaired {
				t.Errorf("violations %q, unpaired %q; want %d and %d", r.violations, r.unpaired, tt.violations, tt.unpaired)
			}
		})
	}
}
