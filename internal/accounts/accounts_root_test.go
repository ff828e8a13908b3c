//go:build root

package accounts

// These tests read root-only files; `make test` runs them as root (-tags root).

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// shadowChildEnv names the user whose shadow entry a child copy of the
// test binary looks up (TestLookupShadowAsAnotherUser).
const shadowChildEnv = "OTPGATE_ACCOUNTS_SHADOW_OF"

// TestMain runs the child half of TestLookupShadowAsAnotherUser instead of
// the tests when shadowChildEnv is set: it prints what LookupShadow
// returned.
func TestMain(m *testing.M) {
	if name := os.Getenv(shadowChildEnv); name != "" {
		s, err := LookupShadow(name)
		fmt.Printf("uid %d: entry %+v, error %v, not found %v\n", os.Geteuid(), s, err, errors.Is(err, ErrNotFound))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLookupShadow reads root's entry (the tests run as root, as `make
// test` does; as another user the files backend refuses, which must be an
// error rather than "no entry").
func TestLookupShadow(t *testing.T) {
	s, err := LookupShadow("root")
	if os.Geteuid() != 0 {
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("as uid %d: %+v, %v; want an error other than no entry", os.Geteuid(), s, err)
		}
		return
	}
	if err != nil || s.Name != "root" {
		t.Fatalf("LookupShadow(root) = %+v, %v", s, err)
	}
	data, err := os.ReadFile("/etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 9 || f[0] != "root" {
			continue
		}
		locked := strings.HasPrefix(f[1], "!") || strings.HasPrefix(f[1], "*")
		expire := int64(-1)
		if f[7] != "" {
			expire, _ = strconv.ParseInt(f[7], 10, 64)
		}
		if s.Locked != locked || s.Expire != expire {
			t.Errorf("root: locked %v expire %d; /etc/shadow says %v %d", s.Locked, s.Expire, locked, expire)
		}
	}
}

// TestLookupShadowAsAnotherUser looks up shadow entries as nobody, who
// cannot read /etc/shadow. NSS then skips the files backend and asks the
// next source (systemd's makes up a locked root and nobody), so whatever
// it answers is not the shadow database: LookupShadow must refuse, saying
// it needs root.
func TestLookupShadowAsAnotherUser(t *testing.T) {
	dir, err := os.MkdirTemp("", "otpgate-accounts-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// go test builds into a 0700 directory: nobody runs a copy.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "accounts.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"root", "nobody"} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(bin, "-test.run=^$")
			cmd.Dir = dir
			cmd.Env = []string{shadowChildEnv + "=" + name}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child as nobody: %v\n%s", err, out)
			}
			want := fmt.Sprintf("uid 65534: entry <nil>, error accounts: reading the shadow entry of %s needs root: /etc/shadow: permission denied, not found false\n", name)
			if string(out) != want {
				t.Errorf("LookupShadow(%q) as nobody:\n%s\nwant\n%s", name, out, want)
			}
		})
	}
}

// TestLookupShadowUnknown: for root, a name without a shadow entry is
// ErrNotFound (as non-root every shadow look-up is refused first, see
// TestLookupShadowAsAnotherUser).
func TestLookupShadowUnknown(t *testing.T) {
	_, err := LookupShadow("no-such-user-otpgate")
	want := `accounts: no shadow entry for "no-such-user-otpgate": accounts: no such entry`
	if !errors.Is(err, ErrNotFound) || err.Error() != want {
		t.Errorf("error %v; want %q, wrapping ErrNotFound", err, want)
	}
}
