//go:build integration

package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/integration/container"
	"github.com/otpgate/otpgate/internal/protocol"
)

// storeFailedLog is what otpgated logs when its store can no longer write.
const storeFailedLog = "the state store can no longer write"

// requireExitedWith waits for p to exit and fails the test unless it
// exited non-zero with every one of wants in its output.
func requireExitedWith(t *testing.T, p *container.Process, wants ...string) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("otpgated still running 30s after its store failed\n%s", p.Output())
	}
	if p.Wait() == nil {
		t.Errorf("otpgated exited with status 0 after its store failed; want non-zero so that its supervisor restarts it")
	}
	for _, w := range wants {
		if !strings.Contains(p.Output(), w) {
			t.Errorf("otpgated's log lacks %q:\n%s", w, p.Output())
		}
	}
}

// TestReliabilityDiskFull: the state directory is a 256 KiB tmpfs,
// filled up. bbolt rewrites records in pages the file already owns, so a
// commit fails only when it needs a new page: a user with 100 recovery
// codes has a record larger than a page, and a commit of it needs fresh
// contiguous pages. Every accept that does come back must be on disk (it
// is refused as a replay after a restart); the first commit that hits
// ENOSPC denies its request, logs the path and the error, and otpgated
// stops; nothing is accepted after that; once space is freed a restarted
// daemon passes its integrity check and accepts the next code.
func TestReliabilityDiskFull(t *testing.T) {
	e := newRelContainer(t, relConfig("info"))
	e.c.Run(t, "mount", "-o", "remount,size=256k", relStateDir)
	e.start()
	var small []*relUser
	for i := range 4 {
		small = append(small, e.enroll(fmt.Sprintf("rfull%d", i), 30))
	}
	var recovery []string
	for i := range 100 {
		recovery = append(recovery, fmt.Sprintf("rc%06d", i))
	}
	big := e.enroll("rfullbig", 30, recovery...)
	out, code, _ := e.c.Exec(context.Background(), "dd", "if=/dev/zero", "of="+relStateDir+"/fill", "bs=4k")
	if code == 0 || !strings.Contains(out, "No space left on device") {
		t.Fatalf("dd did not fill %s (exit %d):\n%s", relStateDir, code, out)
	}

	type sent struct {
		u    *relUser
		step uint64
	}
	var accepted []sent
	denied := 0
	after := 0 // requests sent after the first denial
	try := func(u *relUser, step uint64) {
		out, _ := e.verify(e.client, u.name, u.code(step))
		switch {
		case denied > 0:
			after++
			if out == string(protocol.OutcomeAccept) {
				t.Errorf("%s step %d accepted after the store failed", u.name, step)
			}
		case out == string(protocol.OutcomeAccept):
			accepted = append(accepted, sent{u, step})
			if again, _ := e.verify(e.client, u.name, u.code(step)); again != string(protocol.OutcomeReplay) {
				t.Errorf("%s step %d replayed on a full disk: %s, want replay", u.name, step, again)
			}
		case out == "error:"+string(protocol.ErrInternal) || out == "unavailable":
			denied++
		default:
			t.Errorf("%s step %d on a full disk: %s", u.name, step, out)
		}
	}
	awaitRoomInStep(30, 20*time.Second) // center-1 below must stay inside the window
	center := big.step()
	try(big, center-1)
	for i := 0; denied == 0 && i < 64; i++ {
		// The big record did find room: make the store grow.
		if _, err := e.client.Do(context.Background(), &protocol.Request{Op: protocol.OpAdminImport, User: small[i%len(small)].name,
			Import: &protocol.Import{Secret: big.b32, Algorithm: "SHA1", Digits: 6, Period: 30, RecoveryCodes: recovery, Replace: true}}); err != nil {
			denied++
		}
	}
	for _, u := range small {
		try(u, center)
	}
	try(big, center)
	if denied == 0 || after == 0 {
		t.Fatalf("the full disk never failed a commit (%d accepts)\n%s", len(accepted), e.daemon.Output())
	}
	requireExitedWith(t, e.daemon, storeFailedLog, relDB, "no space left on device")

	e.c.Run(t, "rm", relStateDir+"/fill")
	e.start()
	for _, a := range accepted {
		if out, _ := e.verify(e.client, a.u.name, a.u.code(a.step)); out == string(protocol.OutcomeAccept) {
			t.Errorf("%s step %d, accepted on the full disk, accepted again after the restart", a.u.name, a.step)
		}
	}
	if out, _ := e.verify(e.client, big.name, big.code(center+1)); out != string(protocol.OutcomeAccept) {
		t.Errorf("after freeing space and restarting, the next code of %s: %s, want accept", big.name, out)
	}
	t.Logf("disk full: %d accepts while full (all refused as replays after restart), %d requests denied, %d sent after the failure and none accepted", len(accepted), denied, after)
}

// TestReliabilityInjectedFaults (injected I/O errors, and a file system that turns read-only at runtime):
// otpgated runs under strace injecting an error into every write or sync
// of its store file (EIO and ENOSPC on pwrite64, EIO on fdatasync, and
// EROFS on pwrite64 as when ext4 remounts itself read-only after an
// error). Each time the valid code is denied, otpgated logs the store
// path and the error and exits non-zero, the trace shows no write or sync
// of the store after the failed one (a failed fsync is never retried),
// and a restart without faults passes the integrity check and accepts the
// next code.
func TestReliabilityInjectedFaults(t *testing.T) {
	container.Require(t, "strace")
	tests := []struct {
		name, inject, logText string
	}{
		{"fdatasync EIO", "fdatasync:error=EIO", "input/output error"},
		{"pwrite64 EIO", "pwrite64:error=EIO", "input/output error"},
		{"pwrite64 ENOSPC", "pwrite64:error=ENOSPC", "no space left on device"},
		{"pwrite64 EROFS (file system remounted read-only by the kernel)", "pwrite64:error=EROFS", "read-only file system"},
	}
	e := newRelEnv(t, relConfig("info"))
	users := make([]*relUser, len(tests))
	for i := range tests {
		users[i] = e.enroll(fmt.Sprintf("rfault%d", i), 30)
	}
	e.stop()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := users[i]
			trace := fmt.Sprintf("/tmp/inject%d.strace", i)
			p := e.startWrapped("strace", "-f", "-yy", "-o", trace, "-P", relDB,
				"-e", "trace=pwrite64,pwritev,fdatasync,fsync", "-e", "inject="+tt.inject+":when=1+")
			center := u.step()
			if out, _ := e.verify(e.client, u.name, u.code(center)); out == string(protocol.OutcomeAccept) {
				t.Errorf("valid code accepted although the store write failed (%s)", tt.inject)
			}
			if out, _ := e.verify(e.client, u.name, u.code(center+1)); out == string(protocol.OutcomeAccept) {
				t.Errorf("next code accepted after the store failed (%s)", tt.inject)
			}
			requireExitedWith(t, p, storeFailedLog, relDB, tt.logText)

			calls := parseStrace(string(e.c.ReadFile(t, trace)))
			failed := -1
			for j, c := range calls {
				if failed < 0 && !c.ok() {
					failed = j
				}
			}
			if failed < 0 {
				t.Fatalf("no failed call on %s in the trace:\n%s", relDB, e.c.ReadFile(t, trace))
			}
			for _, c := range calls[failed+1:] {
				t.Errorf("%s(%s) = %s after the failed %s(%s): a failed write is retried", c.name, c.args, c.ret, calls[failed].name, calls[failed].args)
			}

			t.Logf("injected %s: code denied, otpgated stopped; trace: %s(%s) = %s, then %d calls on the store", tt.inject, calls[failed].name, calls[failed].fdTarget(), calls[failed].ret, len(calls)-failed-1)
			e.start()
			if out, _ := e.verify(e.client, u.name, u.code(center+1)); out != string(protocol.OutcomeAccept) {
				t.Errorf("after a restart without faults, the next code: %s, want accept", out)
			}
			e.stop()
		})
	}
}

// TestReliabilityReadOnlyStateDir: a state directory mounted
// read-only before the start makes otpgated refuse to start with an error
// naming the store and the cause; remounting it read-only under a running
// daemon is refused by the kernel while the store is open for writing
// (the daemon then keeps serving with nothing lost), or, if it ever
// succeeds, the next code is denied and the daemon stops.
func TestReliabilityReadOnlyStateDir(t *testing.T) {
	e := newRelEnv(t, relConfig("info"))
	u := e.enroll("rro", 30)
	awaitRoomInStep(30, 20*time.Second) // center-1 below must stay inside the window
	center := u.step()

	t.Run("at runtime", func(t *testing.T) {
		out, code, _ := e.c.Exec(context.Background(), "mount", "-o", "remount,ro", relStateDir)
		if code == 0 {
			if got, _ := e.verify(e.client, u.name, u.code(center-1)); got == string(protocol.OutcomeAccept) {
				t.Errorf("code accepted on a read-only store")
			}
			requireExitedWith(t, e.daemon, storeFailedLog, "read-only file system")
			e.c.Run(t, "mount", "-o", "remount,rw", relStateDir)
			e.start()
			return
		}
		t.Logf("remount,ro under a running otpgated: exit %d: %s", code, strings.TrimSpace(out))
		if !strings.Contains(out, "busy") {
			t.Errorf("remount,ro under a running otpgated failed (exit %d) for another reason than the open store:\n%s", code, out)
		}
		if got, _ := e.verify(e.client, u.name, u.code(center-1)); got != string(protocol.OutcomeAccept) {
			t.Errorf("after the refused remount: %s, want accept", got)
		}
	})

	t.Run("before start", func(t *testing.T) {
		e.stop()
		e.c.Run(t, "mount", "-o", "remount,ro", relStateDir)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, code, _ := e.c.Exec(ctx, e.otpgatedBin, "-config", relConfigPath)
		if code != 1 || !strings.Contains(out, relDB) || !strings.Contains(out, "read-only file system") {
			t.Errorf("otpgated on a read-only state dir: exit %d, output:\n%s\nwant exit 1 and an error naming %s and the read-only file system", code, out, relDB)
		}
		e.c.Run(t, "mount", "-o", "remount,rw", relStateDir)
		e.start()
		if got, _ := e.verify(e.client, u.name, u.code(center)); got != string(protocol.OutcomeAccept) {
			t.Errorf("after remounting read-write: %s, want accept", got)
		}
		if got, _ := e.verify(e.client, u.name, u.code(center-1)); got == string(protocol.OutcomeAccept) {
			t.Errorf("code accepted before the remounts accepted again")
		}
	})
}
