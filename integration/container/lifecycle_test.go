//go:build root

package container

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv selects what TestHelperDyingTest does in a child test binary.
const helperEnv = "OTPGATE_CT_HELPER"

// TestHelperDyingTest is not a test by itself: TestNothingLeftWhenTestDies
// runs the test binary on it with helperEnv set. It starts a container with a
// background process, prints their host pids and then dies the way helperEnv
// says.
func TestHelperDyingTest(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return // only meaningful in the child process
	}
	c := Start(t)
	p := c.Background(t, "sleep", "1000")
	if p.HostPid() == 0 {
		t.Fatal("background process not found")
	}
	// Every process in the container's mount namespace, pid 1 first.
	fmt.Println("PIDS", strings.Trim(fmt.Sprint(processesInMountNS(t, c.MountNamespace())), "[]"))
	_ = os.Stdout.Sync() // fmt wrote it unbuffered; a pipe cannot be synced (EINVAL)
	switch mode {
	case "panic-in-test": // t.Cleanup runs
		panic("helper: panic in the test goroutine")
	case "panic-in-goroutine": // the process dies at once, no cleanup
		go func() { panic("helper: panic in another goroutine") }()
		select {}
	case "fatal":
		t.Fatal("helper: failing")
	}
}

// TestNothingLeftWhenTestDies checks that a container and its processes go
// away when the test using it panics, fails, or when the test binary dies
// without running its cleanups.
func TestNothingLeftWhenTestDies(t *testing.T) {
	t.Parallel()
	Require(t)
	for _, mode := range []string{"panic-in-test", "panic-in-goroutine", "fatal"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDyingTest$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"="+mode)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var pids []int
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if list, ok := strings.CutPrefix(sc.Text(), "PIDS "); ok {
					for _, f := range strings.Fields(list) {
						pid, err := strconv.Atoi(f)
						if err != nil {
							t.Fatalf("bad pid list %q", list)
						}
						pids = append(pids, pid)
					}
					break
				}
			}
			_, _ = io.Copy(io.Discard, stdout) // until the helper exits
			err = cmd.Wait()
			if err == nil {
				t.Fatalf("helper test binary succeeded; stderr:\n%s", stderr.String())
			}
			if len(pids) < 3 { // pid 1, nsenter, sleep
				t.Fatalf("helper printed no pids (%v); stderr:\n%s", err, stderr.String())
			}
			waitUntil(t, func() bool {
				for _, pid := range pids {
					if syscall.Kill(pid, 0) != syscall.ESRCH {
						return false
					}
				}
				return true
			})
		})
	}
}

// fatalRecorder is a testing.TB whose Fatal records the message and ends
// the goroutine, so that helpers' failures can be asserted.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper()             {}
func (f *fatalRecorder) Logf(string, ...any) {}
func (f *fatalRecorder) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatalOf runs fn with a fatalRecorder and returns its Fatal message, or ""
// if fn returned normally.
func fatalOf(t *testing.T, fn func(tb testing.TB)) string {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(rec)
	}()
	<-done
	return rec.msg
}

func TestRequire(t *testing.T) {
	t.Parallel()
	if msg := fatalOf(t, func(tb testing.TB) { Require(tb, "sh", "nsenter", "/usr/bin/env") }); msg != "" {
		t.Errorf("Require of present tools failed: %s", msg)
	}
	msg := fatalOf(t, func(tb testing.TB) { Require(tb, "sh", "/nonexistent/sshd", "no-such-tool-ct") })
	for _, want := range []string{
		"/nonexistent/sshd (apt-get install openssh-server)",
		"no-such-tool-ct (apt-get install the package providing it",
		"scripts/install-deps.sh",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Require message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "sh (") {
		t.Errorf("Require reports sh missing: %q", msg)
	}
}

func TestBin(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("OTPGATE_BIN", dir)
	if err := os.WriteFile(filepath.Join(dir, "otpgated"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := Bin(t, "otpgated"); got != filepath.Join(dir, "otpgated") {
		t.Errorf("Bin = %q", got)
	}
	msg := fatalOf(t, func(tb testing.TB) { Bin(tb, "otpgate-sshd") })
	if !strings.Contains(msg, filepath.Join(dir, "otpgate-sshd")) || !strings.Contains(msg, "run `make build`") {
		t.Errorf("Bin of a missing artifact: %q", msg)
	}
	// Bound into containers at the same path, even under the host's /tmp.
	c := Start(t)
	if out := c.Run(t, "cat", filepath.Join(dir, "otpgated")); out != "#!/bin/sh\n" {
		t.Errorf("OTPGATE_BIN inside: %q", out)
	}
	if _, code, _ := c.Exec(t.Context(), "touch", filepath.Join(dir, "new")); code == 0 {
		t.Error("OTPGATE_BIN is writable inside")
	}
	t.Setenv("OTPGATE_BIN", "bin")
	if msg := fatalOf(t, func(tb testing.TB) { Bin(tb, "otpgated") }); !strings.Contains(msg, "must be an absolute path") {
		t.Errorf("Bin with a relative OTPGATE_BIN: %q", msg)
	}
}

// TestRepoVisible checks the repository is inside, live and read-only.
func TestRepoVisible(t *testing.T) {
	t.Parallel()
	repo := RepoRoot()
	if repo == "" {
		t.Fatal("RepoRoot found no otpgate go.mod above the working directory")
	}
	c := Start(t)
	if out := c.Run(t, "head", "-1", filepath.Join(repo, "go.mod")); out != "module github.com/otpgate/otpgate\n" {
		t.Errorf("go.mod inside: %q", out)
	}
	if _, code, _ := c.Exec(t.Context(), "touch", filepath.Join(repo, "otpgate-ct-write-test")); code == 0 {
		t.Error("the repository is writable inside")
	}
	// A file created on the host after Start is seen inside (a bind, not a
	// snapshot of the overlay's lower layer).
	f, err := os.CreateTemp(filepath.Join(repo, "integration", "container"), ".ct-live-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer os.Remove(f.Name())
	time.Sleep(time.Millisecond)
	c.Run(t, "test", "-e", f.Name())
}
