//go:build root

package container

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestHelperSubmount is not a test by itself: TestSubmountsCarriedIn runs
// the test binary on it in a private mount namespace where a directory is
// bound on /var/cache, as a host with a separate file system there would be.
func TestHelperSubmount(t *testing.T) {
	src := os.Getenv(helperEnv + "_SUBMOUNT")
	if src == "" {
		return // only meaningful in the child process
	}
	c := Start(t)
	if out := c.Run(t, "cat", "/var/cache/marker"); out != "from the submount" {
		t.Fatalf("submount content inside: %q", out)
	}
	c.Run(t, "sh", "-c", "echo changed > /var/cache/marker; echo new > /var/cache/new")
	if out := c.Run(t, "cat", "/var/cache/marker", "/var/cache/new"); out != "changed\nnew\n" {
		t.Fatalf("writes to the submount inside: %q", out)
	}
	if got, err := os.ReadFile(filepath.Join(src, "marker")); err != nil || string(got) != "from the submount" {
		t.Fatalf("the host's submount changed: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(src, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file created inside reached the host's submount: %v", err)
	}
}

// TestSubmountsCarriedIn checks that file systems mounted below the host
// root are seen inside, through their own overlays (the overlay of / alone
// would show empty directories there).
func TestSubmountsCarriedIn(t *testing.T) {
	t.Parallel()
	Require(t, "unshare", "mount")
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "marker"), []byte("from the submount"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" /var/cache && exec "$2" -test.run='^TestHelperSubmount$' -test.count=1 -test.v`,
		"sh", src, os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"_SUBMOUNT="+src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper in a namespace with /var/cache bound: %v\n%s", err, out)
	}
}
