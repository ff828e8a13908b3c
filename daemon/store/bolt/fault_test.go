//go:build root

package bolt

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/otpgate/otpgate/daemon/store"
)

// faultDirEnv tells the child test process which store to open; the
// parent runs that child under strace with a syscall fault injected.
const faultDirEnv = "OTPGATE_STORE_FAULT_DIR"

// faultErrnoEnv names the injected error (EIO, ENOSPC) for the child, which
// checks that the store's error still carries it.
const faultErrnoEnv = "OTPGATE_STORE_FAULT_ERRNO"

// faultErrnos are the errors the parent injects, by the names strace uses.
var faultErrnos = map[string]syscall.Errno{"EIO": syscall.EIO, "ENOSPC": syscall.ENOSPC}

// TestMain runs the fault child (faultChild) instead of the tests when
// TestFailedCommitMakesTheStoreReadOnly starts this binary with
// faultDirEnv set.
func TestMain(m *testing.M) {
	if dir := os.Getenv(faultDirEnv); dir != "" {
		if err := faultChild(dir, faultErrnos[os.Getenv(faultErrnoEnv)]); err != nil {
			fmt.Fprintln(os.Stderr, "fault child:", err)
			os.Exit(1)
		}
		fmt.Println(faultChildOK)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// faultChildOK is what a fault child prints when all its checks held.
const faultChildOK = "fault child: all checks held"

// TestFailedCommitMakesTheStoreReadOnly runs faultChild under strace
// with every fdatasync (bbolt's commit sync) failing with EIO, and with
// every pwrite64 (bbolt's page writes) failing with ENOSPC. The child
// asserts that the failing Update reports store.ErrReadOnly, that later
// Updates are refused without touching the disk, and that reads go on.
// The parent then reopens the store and checks that only acknowledged
// data is there.
func TestFailedCommitMakesTheStoreReadOnly(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace is required for the fault-injection test (apt-get install strace): %v", err)
	}
	tests := []struct {
		name, syscall, errno string
	}{
		{"fsync failing with EIO", "fdatasync", "EIO"},
		{"page writes failing with ENOSPC", "pwrite64", "ENOSPC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, dir := openTestDB(t)
			if err := d.Update("alice", setFailures(1)); err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(strace, "-f", "-o", "/dev/null",
				"-e", "trace="+tt.syscall, "-e", "inject="+tt.syscall+":error="+tt.errno,
				os.Args[0])
			cmd.Env = append(os.Environ(), faultDirEnv+"="+dir, faultErrnoEnv+"="+tt.errno)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), faultChildOK) {
				t.Fatalf("child under strace failed: %v\n%s", err, out)
			}
			d2, err := Open(dir)
			if err != nil {
				t.Fatalf("reopen after the failed commit: %v", err)
			}
			defer d2.Close()
			if rec := mustGet(t, d2, "alice"); rec.Failures != 1 {
				t.Errorf("after reopen alice has Failures %d, want the acknowledged 1", rec.Failures)
			}
			if _, err := d2.Get("bob"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("bob, whose create was never acknowledged, is present: %v", err)
			}
			if err := d2.Update("alice", setFailures(3)); err != nil {
				t.Errorf("a restarted store cannot write: %v", err)
			}
		})
	}
}

// faultChild is the child half of TestFailedCommitMakesTheStoreReadOnly,
// run under strace with the store's writes or syncs failing with errno:
// the failing Update must report store.ErrReadOnly naming the store and
// wrapping errno, later Updates must be refused without running fn, and
// reads must go on.
func faultChild(dir string, errno syscall.Errno) error {
	if errno == 0 {
		return fmt.Errorf("%s is not one of the injected errors", faultErrnoEnv)
	}
	d, err := Open(dir)
	if err != nil {
		return fmt.Errorf("Open: %w", err)
	}
	defer d.Close()
	err = d.Update("alice", setFailures(2))
	if !errors.Is(err, store.ErrReadOnly) || !strings.Contains(err.Error(), dir) {
		return fmt.Errorf("Update with a failing disk = %v; want ErrReadOnly naming %s", err, dir) //nolint:errorlint // a failure message; err may be nil
	}
	if !errors.Is(err, errno) {
		return fmt.Errorf("Update with a failing disk = %v; want it to wrap the disk's error %v too", err, errno) //nolint:errorlint // a failure message
	}
	ran := false
	err = d.Update("bob", func(*store.Record) (*store.Record, error) { ran = true; return &store.Record{}, nil })
	if !errors.Is(err, store.ErrReadOnly) || ran {
		return fmt.Errorf("later Update = %v (fn ran: %v); want ErrReadOnly without running fn", err, ran) //nolint:errorlint // a failure message; err may be nil
	}
	rec, err := d.Get("alice")
	if err != nil {
		return fmt.Errorf("Get after the failed commit: %w", err)
	}
	if rec.Failures != 1 {
		return fmt.Errorf("Get after the failed commit shows Failures %d, want the committed 1", rec.Failures)
	}
	return nil
}
