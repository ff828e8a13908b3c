package setup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/otpgate/otpgate/internal/doctor"
)

// SSHDReloadTimeout bounds the wait for a reloaded sshd to answer with the
// new configuration.
const SSHDReloadTimeout = 20 * time.Second

// SSHD runs the sshd binary to test and print its configuration.
type SSHD struct {
	// Path is sshd's path.
	Path string
	// Timeout bounds each run.
	Timeout time.Duration
}

// Test runs sshd -t and returns its output (or the error, when it printed
// nothing).
func (s *SSHD) Test(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.Path, "-t").CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err != nil && msg == "" {
		msg = err.Error()
	}
	return msg, err
}

// Effective runs sshd -T, for user's connection from localhost when user
// is not "".
func (s *SSHD) Effective(ctx context.Context, user string) (doctor.SSHDConfig, error) {
	var args []string
	if user != "" {
		args = []string{"-C", "user=" + user + ",host=localhost,addr=127.0.0.1"}
	}
	c, err := doctor.SSHDT(ctx, s.Timeout, s.Path, args...)
	if err != nil {
		return nil, fmt.Errorf("sshd -T %s: %w", strings.Join(args, " "), err)
	}
	return c, nil
}

// RunningSSHD is the sshd process that listens for connections.
type RunningSSHD struct {
	// PID is its process id.
	PID int
	// Unit is its systemd service, "" when systemd does not run it.
	Unit string
}

// Running returns the running sshd named by the PidFile that sshd -T
// reports, or nil when none runs.
func (s *SSHD) Running(ctx context.Context) (*RunningSSHD, error) {
	eff, err := s.Effective(ctx, "")
	if err != nil {
		return nil, err
	}
	pidfile := eff.Get("pidfile")
	if pidfile == "" || pidfile == "none" {
		return nil, nil
	}
	data, err := os.ReadFile(pidfile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sshd's PidFile: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return nil, fmt.Errorf("sshd's PidFile %s does not hold a process id (%q): remove it if no sshd runs, or restart sshd", pidfile, strings.TrimSpace(string(data)))
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "sshd" {
		return nil, nil // a stale PidFile: no sshd runs under that id
	}
	p := &RunningSSHD{PID: pid}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil {
			unit := filepath.Base(strings.TrimSpace(string(cg)))
			if strings.HasSuffix(unit, ".service") {
				p.Unit = unit
			}
		}
	}
	return p, nil
}

// Reload makes the running sshd read its configuration again: systemctl
// reload where systemd runs it, else SIGHUP. It returns how, as a
// command.
func (p *RunningSSHD) Reload(ctx context.Context) (string, error) {
	if p.Unit != "" {
		if out, err := exec.CommandContext(ctx, "systemctl", "reload", p.Unit).CombinedOutput(); err != nil {
			return "", fmt.Errorf("systemctl reload %s: %w: %s", p.Unit, err, strings.TrimSpace(string(out)))
		}
		return "systemctl reload " + p.Unit, nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGHUP); err != nil {
		return "", fmt.Errorf("reload sshd: kill -HUP %d: %w", p.PID, err)
	}
	return fmt.Sprintf("kill -HUP %d", p.PID), nil
}

// Confirm asks sshd on each address it listens on (sshd -T) which
// methods it offers first to each of users, until none offers password
// or keyboard-interactive on its own and, when an sshd runs, one
// answered; it gives up after SSHDReloadTimeout. It returns what it
// found, in a sentence.
func (s *SSHD) Confirm(ctx context.Context, running bool, users []string) (string, error) {
	eff, err := s.Effective(ctx, "")
	if err != nil {
		return "", err
	}
	var addrs []string
	for _, l := range eff["listenaddress"] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		a, err := ProbeAddr(f[0])
		if err != nil {
			return "", err
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return "", errors.New("sshd -T names no listenaddress to check")
	}
	deadline := time.Now().Add(SSHDReloadTimeout)
	for {
		var bad, good, unanswered []string
		for _, addr := range addrs {
			for _, u := range users {
				ctx1, cancel := context.WithTimeout(ctx, 5*time.Second)
				offered, err := OfferedMethods(ctx1, addr, u, 5*time.Second)
				cancel()
				switch {
				case err != nil:
					unanswered = append(unanswered, fmt.Sprintf("%s (%v)", addr, err))
				case len(FirstFactorAlone(offered)) > 0:
					bad = append(bad, fmt.Sprintf("on %s sshd offers %s to %s", addr, strings.Join(offered, ","), u))
				default:
					good = append(good, fmt.Sprintf("%s offers %s to %s", addr, strings.Join(offered, ","), u))
				}
			}
		}
		switch {
		case len(bad) == 0 && len(good) > 0:
			return "checked from outside: " + strings.Join(good, "; ") + " (no password, no keyboard-interactive without a key)", nil
		case len(bad) == 0 && !running:
			return "no sshd is running (nothing answers on " + strings.Join(addrs, ", ") + "): it reads both files when it starts", nil
		case len(bad) > 0 && !running:
			return "", fmt.Errorf("%s, but no sshd runs under the PidFile that sshd -T names, so setup cannot reload it: reload that sshd (systemctl reload ssh), then run otpgate setup sshd again", strings.Join(bad, "; "))
		case time.Now().After(deadline):
			if len(bad) > 0 {
				return "", fmt.Errorf("after the reload, %s: it still lets a password or keyboard-interactive log in without a key, and the new PAM stack must not be written under it", strings.Join(bad, "; "))
			}
			return "", fmt.Errorf("sshd does not answer after the reload: %s", strings.Join(unanswered, "; "))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
