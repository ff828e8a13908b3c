//go:build root

package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	core "github.com/otpgate/otpgate/internal/container"
)

func TestOptions(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "data"), []byte("bound"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := Start(t, WithHostname("ct-custom"), WithBind(src, "/srv/ro", true), WithBind(src, "/srv/rw", false))
	if out := c.Run(t, "hostname"); out != "ct-custom\n" {
		t.Errorf("hostname %q", out)
	}
	if out := c.Run(t, "cat", "/srv/ro/data"); out != "bound" {
		t.Errorf("/srv/ro/data = %q", out)
	}
	if _, code, _ := c.Exec(context.Background(), "touch", "/srv/ro/new"); code == 0 {
		t.Error("read-only bind is writable")
	}
	c.Run(t, "sh", "-c", "echo from-inside > /srv/rw/new")
	if got, err := os.ReadFile(filepath.Join(src, "new")); err != nil || string(got) != "from-inside\n" {
		t.Errorf("write through the read-write bind: %q, %v", got, err)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	Require(t)
	tests := map[string]struct {
		opts []Option
		want string
	}{
		"missing_bind_source": {[]Option{WithBind("/nonexistent/otpgate-ct", "/mnt/x", true)}, "open bind source /nonexistent/otpgate-ct"},
		"relative_bind":       {[]Option{WithBind("relative", "/mnt/x", true)}, "paths must be absolute"},
		"hostname_too_long":   {[]Option{WithHostname(strings.Repeat("h", 100))}, "set hostname"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := core.New(tt.opts...)
			if err == nil {
				c.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "container: ") {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestManyContainers starts several containers at once and uses each.
func TestManyContainers(t *testing.T) {
	t.Parallel()
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			c, err := core.New()
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			name := fmt.Sprintf("ctmany%d", i)
			if out, _, err := c.Exec(context.Background(), "useradd", "-m", name); err != nil {
				errs <- fmt.Errorf("%w: %s", err, out)
				return
			}
			out, _, err := c.Exec(context.Background(), "sh", "-c", "ls /home; hostname")
			if err != nil {
				errs <- fmt.Errorf("container %d: %w", i, err)
			} else if out != name+"\n"+c.Hostname()+"\n" {
				errs <- fmt.Errorf("container %d sees %q", i, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// ExampleStart shows a test that runs a daemon inside a container.
func ExampleStart() {
	var t testing.TB // the test's *testing.T
	Require(t, "sshd")
	c := Start(t)
	c.AddUser(t, "alice")
	c.WriteFile(t, "/etc/otpgate/config.toml", []byte("# ...\n"), 0o600)
	daemon := c.Background(t, Bin(t, "otpgated"), "-config", "/etc/otpgate/config.toml")
	c.WaitForSocket(t, "/run/otpgate/otpgated.sock", 10*time.Second)
	out := c.RunAs(t, "alice", Bin(t, "otpgate"), "status")
	_, _ = daemon, out
}
