package setup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/otpgate/otpgate/internal/doctor"
	"github.com/otpgate/otpgate/internal/pamstack"
	"github.com/otpgate/otpgate/internal/protocol"
)

// DefaultTimeout bounds each sshd run and each request to otpgated.
const DefaultTimeout = 20 * time.Second

// Session is one `otpgate setup sshd` or `otpgate setup sudo` on the live
// system: [Session.Plan] reads the files and decides the changes,
// [Session.Guards] runs the checks before writing, and [Session.Write]
// writes the changes in a safe order, checks the result and restores
// every file when a check fails.
type Session struct {
	// Target is "sshd" or "sudo".
	Target string
	// Admin is the administrator whose way back in the guards protect:
	// the one running setup.
	Admin string
	// Root is true when setup runs as root: only then are sshd -t and
	// sshd -T run while planning.
	Root bool
	// Client asks otpgated.
	Client *protocol.Client
	// PAMDir is the PAM module directory (the loader's).
	PAMDir string
	// Timeout bounds each sshd run and each request to otpgated; 0 is
	// DefaultTimeout.
	Timeout time.Duration
	// Now is the clock of the backup names; nil is time.Now.
	Now func() time.Time
	// Log receives the lines that say what Write did, as it does it
	// ("wrote FILE (backup: B)", "reloaded sshd (HOW)"); nil discards them.
	Log func(line string)

	// Changes are the files to write, after Plan.
	Changes []*Change
	// Notes are facts worth printing with the plan.
	Notes []string

	sshd     *SSHD
	sshdPlan *SSHDPlan
}

func (s *Session) timeout() time.Duration {
	if s.Timeout <= 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

func (s *Session) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Session) log(format string, args ...any) {
	if s.Log != nil {
		s.Log(fmt.Sprintf(format, args...))
	}
}

// Plan reads the live files and decides the changes (Changes, Notes).
func (s *Session) Plan(ctx context.Context) error {
	if s.Target == "sshd" {
		return s.planSSHD(ctx)
	}
	return s.planSudo()
}

// planSSHD plans sshd_config and sshd's PAM service.
func (s *Session) planSSHD(ctx context.Context) error {
	path := doctor.LookPath("sshd")
	if path == "" {
		return errors.New("sshd is not installed: apt-get install openssh-server, then run otpgate setup sshd again")
	}
	s.sshd = &SSHD{Path: path, Timeout: s.timeout()}
	service, prr := "sshd", ""
	if s.Root {
		if out, err := s.sshd.Test(ctx); err != nil {
			return fmt.Errorf("sshd -t fails before any change: %s\nfix: correct what it names first (a missing /run/sshd: mkdir -p -m 0755 /run/sshd), then run otpgate setup sshd again", out)
		}
		global, err := s.sshd.Effective(ctx, "")
		if err != nil {
			return err
		}
		service = global.PAMService()
		root, err := s.sshd.Effective(ctx, "root")
		if err != nil {
			return err
		}
		prr = root.Get("permitrootlogin")
	} else {
		s.Notes = append(s.Notes, "Not root: sshd -t and sshd -T were not run; PermitRootLogin is read from the files.")
	}
	var users []string
	if s.Admin != "root" {
		users = append(users, s.Admin)
	}
	p, err := PlanSSHD(liveFiles(), SSHDOptions{PermitRootLogin: prr, Users: users})
	if err != nil {
		return err
	}
	s.sshdPlan = p
	if p.Change != nil {
		s.Changes = append(s.Changes, p.Change)
		if p.DropIn {
			s.Notes = append(s.Notes, fmt.Sprintf("%s includes %s first, and sshd uses the first value it reads: the settings go into %s.",
				SSHDConfig, filepath.Dir(SSHDDropIn)+"/*.conf", SSHDDropIn))
		} else {
			s.Notes = append(s.Notes, fmt.Sprintf("%s does not include %s first: the settings go at its top, where they are read first.",
				SSHDConfig, SSHDDropIn))
		}
	}
	s.Notes = append(s.Notes, "root: "+p.Root+".")
	data, err := os.ReadFile(filepath.Join(PAMDir, service))
	if err != nil {
		return fmt.Errorf("read the PAM service of sshd: %w\nfix: restore /etc/pam.d/%s (apt-get install --reinstall openssh-server)", err, service)
	}
	c, err := PlanSSHDPAM(service, data, pamstack.ReadSystem)
	if err != nil {
		return err
	}
	if c != nil {
		s.Changes = append(s.Changes, c)
	}
	return nil
}

// planSudo plans /etc/pam.d/sudo and, when present, sudo-i.
func (s *Session) planSudo() error {
	for _, svc := range []string{"sudo", "sudo-i"} {
		data, err := os.ReadFile(filepath.Join(PAMDir, svc))
		if errors.Is(err, fs.ErrNotExist) && svc == "sudo-i" {
			continue
		}
		if err != nil {
			return fmt.Errorf("read the PAM service of sudo: %w\nfix: install sudo (apt-get install sudo), then run otpgate setup sudo again", err)
		}
		c, err := PlanSudoPAM(svc, data, pamstack.ReadSystem)
		if err != nil {
			return err
		}
		if c != nil {
			s.Changes = append(s.Changes, c)
		}
	}
	s.Notes = append(s.Notes, "sudo asks for the password, then the code; while sudo's timestamp is valid (timestamp_timeout) it asks for neither.")
	return nil
}

// AfterChecks describes the checks Write runs after writing, in a phrase.
func (s *Session) AfterChecks() string {
	var c []string
	if s.Target == "sshd" {
		c = append(c, "sshd -t", "sshd -T (UsePAM, KbdInteractiveAuthentication, PasswordAuthentication, AuthenticationMethods)", "sshd -T -C user=root,host=localhost,addr=127.0.0.1")
		if s.Admin != "root" {
			c = append(c, "sshd -T -C user="+s.Admin+",...")
		}
		c = append(c, "then (before any PAM file) the running sshd reloaded and asked on each address sshd -T names which methods it offers first (neither password nor keyboard-interactive may log in without a key)")
	}
	c = append(c, "that otpgate doctor finds no problem in the PAM services written")
	return strings.Join(c, ", ")
}

// liveFiles reads the live system.
func liveFiles() Files {
	return Files{Read: os.ReadFile, Glob: filepath.Glob}
}
