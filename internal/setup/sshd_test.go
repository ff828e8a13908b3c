package setup

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// memFiles is a Files over a map of absolute paths.
func memFiles(m map[string]string) Files {
	return Files{
		Read: func(p string) ([]byte, error) {
			if s, ok := m[p]; ok {
				return []byte(s), nil
			}
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		},
		Glob: func(pattern string) ([]string, error) {
			var out []string
			for p := range m {
				if ok, err := filepath.Match(pattern, p); err != nil {
					return nil, err
				} else if ok {
					out = append(out, p)
				}
			}
			slices.Sort(out)
			return out, nil
		},
	}
}

func TestPlanSSHD(t *testing.T) {
	stock := testdataFile(t, "debian12/ssh/sshd_config")
	const dropInGlobal = "UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\nAuthenticationMethods publickey,keyboard-interactive\n"
	tests := []struct {
		name  string
		files map[string]string
		opts  SSHDOptions
		// target is the file written ("" for none); has and hasNot are
		// pieces of its new content.
		target      string
		has, hasNot []string
		rootRule    bool
		errHas      []string
	}{
		{name: "Debian 12 stock: a drop-in with the root rule",
			files:  map[string]string{SSHDConfig: stock},
			target: SSHDDropIn, has: []string{dropInGlobal, "Match User root\n\tAuthenticationMethods publickey\n"},
			rootRule: true},
		{name: "PermitRootLogin yes (from sshd -T): no root rule, root uses a code",
			files:  map[string]string{SSHDConfig: stock},
			opts:   SSHDOptions{PermitRootLogin: "yes"},
			target: SSHDDropIn, has: []string{dropInGlobal}, hasNot: []string{"Match"}},
		{name: "PermitRootLogin no in the file: no root rule",
			files:  map[string]string{SSHDConfig: strings.Replace(stock, "#PermitRootLogin prohibit-password", "PermitRootLogin no", 1)},
			target: SSHDDropIn, has: []string{dropInGlobal}, hasNot: []string{"Match"}},
		{name: "without-password (what sshd -T prints) gets the root rule",
			files:  map[string]string{SSHDConfig: stock},
			opts:   SSHDOptions{PermitRootLogin: "without-password"},
			target: SSHDDropIn, has: []string{"Match User root"}, rootRule: true},
		{name: "a later drop-in (cloud-init's) loses to 00-otpgate.conf",
			files: map[string]string{SSHDConfig: stock,
				"/etc/ssh/sshd_config.d/50-cloud-init.conf": "PasswordAuthentication yes\n"},
			target: SSHDDropIn, has: []string{dropInGlobal}, rootRule: true},
		{name: "a drop-in read before ours wins: refused, naming it",
			files: map[string]string{SSHDConfig: stock,
				"/etc/ssh/sshd_config.d/00-aaa.conf": "# local\nPasswordAuthentication yes\n"},
			errHas: []string{"passwordauthentication is \"yes\" for every user", "/etc/ssh/sshd_config.d/00-aaa.conf:2", "00-otpgate.conf"}},
		{name: "a Match block for the admin overrides: refused, naming it",
			files:  map[string]string{SSHDConfig: stock + "Match User alice\n\tAuthenticationMethods publickey\n"},
			opts:   SSHDOptions{Users: []string{"alice"}},
			errHas: []string{"authenticationmethods is \"publickey\" for alice", "/etc/ssh/sshd_config:124", "(in 'Match User alice')"}},
		{name: "a Match block with criteria that cannot be evaluated: refused",
			files:  map[string]string{SSHDConfig: stock + "Match Address 10.0.0.0/8\n\tAuthenticationMethods any\n"},
			errHas: []string{"may also override it", "'Match Address 10.0.0.0/8'"}},
		{name: "already configured by setup: nothing to write",
			files: map[string]string{SSHDConfig: stock,
				SSHDDropIn: string(dropInText(SSHDConfig, "prohibit-password", true))}},
		{name: "already configured by hand in the main file (docs/pam.md)",
			files: map[string]string{SSHDConfig: "UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n" +
				"AuthenticationMethods publickey,keyboard-interactive\nMatch User root\n  AuthenticationMethods publickey\n"}},
		{name: "an older drop-in of ours is rewritten",
			files: map[string]string{SSHDConfig: stock,
				SSHDDropIn: "UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication yes\n"},
			target: SSHDDropIn, has: []string{dropInGlobal}, rootRule: true},
		{name: "no Include: the settings go on top of the main file",
			files: map[string]string{SSHDConfig: "# my config\n\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM yes\n" +
				"Match User backup\n\tForceCommand /usr/local/bin/backup\n"},
			target: SSHDConfig,
			has: []string{"# my config\n\n" + mainBegin, dropInGlobal + "\nPasswordAuthentication yes\n",
				"ForceCommand /usr/local/bin/backup\n\n# root:", "Match User root\n\tAuthenticationMethods publickey\n"},
			rootRule: true},
		{name: "an Include of another directory only: the main file is edited",
			files:  map[string]string{SSHDConfig: "Include /etc/ssh/other.d/*.conf\nUsePAM yes\n"},
			target: SSHDConfig, has: []string{mainBegin}, rootRule: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := memFiles(tt.files)
			p, err := PlanSSHD(files, tt.opts)
			if tt.errHas != nil {
				if err == nil {
					t.Fatalf("no error; change:\n%s", diffOf(p.Change))
				}
				var ce *ConflictError
				if !errors.As(err, &ce) {
					t.Errorf("error is %T, want *ConflictError", err)
				}
				for _, h := range tt.errHas {
					if !strings.Contains(err.Error(), h) {
						t.Errorf("error does not say %q:\n%v", h, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.target == "" {
				if p.Change != nil {
					t.Fatalf("configured files changed:\n%s", p.Change.Diff())
				}
				return
			}
			if p.Change == nil || p.Change.Path != tt.target {
				t.Fatalf("change %+v, want one to %s", p.Change, tt.target)
			}
			if p.RootRule != tt.rootRule {
				t.Errorf("RootRule %v, want %v (%s)", p.RootRule, tt.rootRule, p.Root)
			}
			got := string(p.Change.New)
			for _, h := range tt.has {
				if !strings.Contains(got, h) {
					t.Errorf("new %s lacks %q:\n%s", tt.target, h, got)
				}
			}
			for _, h := range tt.hasNot {
				if strings.Contains(got, h) {
					t.Errorf("new %s has %q:\n%s", tt.target, h, got)
				}
			}
			// Everything of the old file is still there, in order.
			if old := string(p.Change.Old); old != "" && tt.target == SSHDConfig {
				if d := p.Change.Diff(); strings.Contains(d, "\n-") {
					t.Errorf("the main file lost lines:\n%s", d)
				}
			}
			// A second run on the result is a no-op.
			tt.files[tt.target] = got
			again, err := PlanSSHD(memFiles(tt.files), tt.opts)
			if err != nil || again.Change != nil {
				t.Errorf("second run: %v, %+v", err, again)
			}
		})
	}
}

// TestEffectiveMatchesOpenSSH encodes what OpenSSH 9.2's sshd -T printed
// for this layout (checked with the real sshd): a Match block in an
// included file ends with that file, the first matching Match block wins
// over later ones and over the global value, and "Match all" applies to
// sshd -T without -C.
func TestEffectiveMatchesOpenSSH(t *testing.T) {
	files := memFiles(map[string]string{
		"/m": "Include /d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\nAllowTcpForwarding no\n" +
			"Match User root\n\tAuthenticationMethods password\n\tX11Forwarding yes\n",
		"/d/00-otpgate.conf": "UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n" +
			"AuthenticationMethods publickey,keyboard-interactive\n\nMatch User root\n\tAuthenticationMethods publickey\n",
		"/d/50-other.conf": "PasswordAuthentication=yes\nMatch User root\n\tAuthenticationMethods keyboard-interactive\nMatch all\n\tPermitRootLogin yes\n",
	})
	dirs, err := ParseSSHDConfig("/m", files)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ keyword, user, value, where string }{
		{"kbdinteractiveauthentication", "", "yes", "/d/00-otpgate.conf:2"},
		{"passwordauthentication", "alice", "no", "/d/00-otpgate.conf:3"},
		{"allowtcpforwarding", "alice", "no", "/m:4"}, // not swallowed by the drop-ins' Match blocks
		{"authenticationmethods", "alice", "publickey,keyboard-interactive", "/d/00-otpgate.conf:4"},
		{"authenticationmethods", "root", "publickey", "/d/00-otpgate.conf:7"},
		{"x11forwarding", "root", "yes", "/m:7"},
		{"permitrootlogin", "", "yes", "/d/50-other.conf:5"},
	}
	for _, tt := range tests {
		d, ok, _ := Effective(dirs, tt.keyword, tt.user)
		if !ok || d.Value != tt.value || d.Where() != tt.where {
			t.Errorf("%s for %q: %v %+v, want %q at %s", tt.keyword, tt.user, ok, d, tt.value, tt.where)
		}
	}
}

func TestCheckSSHDT(t *testing.T) {
	values := map[string]string{"authenticationmethods": "publickey", "passwordauthentication": "no", "permitrootlogin": "without-password"}
	get := func(k string) string { return values[k] }
	w := Want{Values: map[string][]string{"authenticationmethods": {"publickey,keyboard-interactive"}, "passwordauthentication": {"no"}, "permitrootlogin": {"prohibit-password"}}}
	got := CheckSSHDT(w, get)
	if len(got) != 1 || !strings.Contains(got[0], `authenticationmethods is "publickey", want "publickey,keyboard-interactive"`) {
		t.Errorf("CheckSSHDT: %q", got)
	}
}
