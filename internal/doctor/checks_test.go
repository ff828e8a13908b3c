package doctor

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/protocol"
)

// sshdGood is `sshd -T` output (abridged) for docs/pam.md's settings.
const sshdGood = `port 22
usepam yes
kbdinteractiveauthentication yes
passwordauthentication no
permitrootlogin prohibit-password
authenticationmethods publickey,keyboard-interactive
`

func sshdWith(repl ...string) SSHDConfig {
	return ParseSSHDT(strings.NewReplacer(repl...).Replace(sshdGood))
}

func TestCheckSSHD(t *testing.T) {
	tests := []struct {
		name string
		c    SSHDConfig
		user string
		ids  []string
	}{
		{"documented", sshdWith(), "", nil},
		{"UsePAM no", sshdWith("usepam yes", "usepam no"), "", []string{"sshd-usepam"}},
		{"kbd-int off", sshdWith("kbdinteractiveauthentication yes", "kbdinteractiveauthentication no"), "", []string{"sshd-kbdinteractive"}},
		{"old sshd prints challengeresponse", sshdWith("kbdinteractiveauthentication", "challengeresponseauthentication"), "", nil},
		{"any", sshdWith("authenticationmethods publickey,keyboard-interactive", "authenticationmethods any"), "", []string{"sshd-authmethods-any"}},
		{"a list without kbd-int", sshdWith("publickey,keyboard-interactive", "publickey,keyboard-interactive:pam publickey"), "", []string{"sshd-authmethods-nocode"}},
		{"password with PAM", sshdWith("passwordauthentication no", "passwordauthentication yes"), "", []string{"sshd-password-pam"}},
		{"root needs kbd-int but prohibit-password", sshdWith(), "root", []string{"sshd-root-blocked"}},
		{"root key only", sshdWith("publickey,keyboard-interactive", "publickey"), "root", []string{"sshd-root-key-only"}},
		{"root yes", sshdWith("prohibit-password", "yes"), "root", nil},
		{"root with password", sshdWith("prohibit-password", "yes", "passwordauthentication no", "passwordauthentication yes"), "",
			[]string{"sshd-password-pam", "sshd-root-password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckSSHD(tt.c, tt.user, "sshd -T")
			if g := ids(got); !slices.Equal(g, tt.ids) {
				t.Errorf("findings %q, want %q", g, tt.ids)
			}
			if tt.name == "root key only" && got[0].Severity != Info {
				t.Errorf("root's key-only rule is %s, want info", got[0].Severity)
			}
		})
	}
}

// debianSSHDT is `sshd -T` (abridged) for Debian 12's stock sshd_config.
const debianSSHDT = `port 22
usepam yes
kbdinteractiveauthentication no
passwordauthentication yes
permitrootlogin prohibit-password
authenticationmethods any
`

// TestFixesAgreeWithSetup: what otpgate setup writes needs no fix, and a
// fix that otpgate setup can make names it before the hand edit.
func TestFixesAgreeWithSetup(t *testing.T) {
	debian := ParseSSHDT(debianSSHDT)
	sshdWant := PAMWant{Service: "sshd", MissingSeverity: Error, Setup: SetupSSHD}
	sudoWant := PAMWant{Service: "sudo", MissingSeverity: Warning, PasswordFirst: true, Setup: SetupSudo}
	pam := func(want PAMWant, stack string) []Finding {
		entries, _, err := LoadService(want.Service, readTestdata(map[string]string{want.Service: stack}))
		if err != nil {
			t.Fatal(err)
		}
		return CheckPAMService(want, entries)
	}
	const setupSSHDPAM = "auth required pam_otpgate.so require_publickey\nauth required pam_permit.so\n@include common-account\n"
	tests := []struct {
		name     string
		findings []Finding
		ids      []string
		// every fix has this piece, and none has lacks
		has, lacks string
	}{
		{name: "setup's global settings", findings: CheckSSHD(sshdWith(), "", "sshd -T")},
		{name: "setup's key-only rule for root", findings: CheckSSHD(sshdWith("publickey,keyboard-interactive", "publickey"), "root", "sshd -T -C user=root"),
			ids: []string{"sshd-root-key-only"}, has: "none needed", lacks: "keyboard-interactive\" in the AuthenticationMethods"},
		{name: "setup's key-only rule for root under PermitRootLogin yes", findings: CheckSSHD(sshdWith("publickey,keyboard-interactive", "publickey", "prohibit-password", "yes"), "root", "sshd -T -C user=root"),
			ids: []string{"sshd-root-key-only"}, has: "none needed"},
		{name: "setup's sshd stack", findings: pam(sshdWant, setupSSHDPAM)},
		{name: "setup's sudo stack", findings: pam(sudoWant, "@include common-auth\nauth       required   pam_otpgate.so\n@include common-account\n")},
		{name: "Debian's sshd_config", findings: CheckSSHD(debian, "", "sshd -T"),
			ids: []string{"sshd-kbdinteractive", "sshd-authmethods-any", "sshd-password-pam"}, has: "run 'otpgate setup sshd' (it shows the change; 'otpgate setup sshd --apply' writes it"},
		{name: "UsePAM no", findings: CheckSSHD(sshdWith("usepam yes", "usepam no"), "", "sshd -T"),
			ids: []string{"sshd-usepam"}, has: "run 'otpgate setup sshd'"},
		{name: "a global list without the code", findings: CheckSSHD(sshdWith("publickey,keyboard-interactive", "publickey"), "", "sshd -T"),
			ids: []string{"sshd-authmethods-nocode"}, has: "run 'otpgate setup sshd'"},
		{name: "root blocked", findings: CheckSSHD(sshdWith(), "root", "sshd -T -C user=root"),
			ids: []string{"sshd-root-blocked"}, has: "run 'otpgate setup sshd'"},
		{name: "root with a password", findings: CheckSSHD(sshdWith("prohibit-password", "yes", "passwordauthentication no", "passwordauthentication yes"), "", "sshd -T"),
			ids: []string{"sshd-password-pam", "sshd-root-password"}, has: "run 'otpgate setup sshd'"},
		{name: "another user's Match block is a hand edit", findings: CheckSSHD(sshdWith("publickey,keyboard-interactive", "publickey"), "alice", "sshd -T -C user=alice"),
			ids: []string{"sshd-authmethods-nocode"}, has: "the 'Match' block for alice", lacks: "otpgate setup"},
		{name: "Debian's sshd stack", findings: pam(PAMWant{Service: "sshd", MissingSeverity: Error, PasswordFirst: true, Setup: SetupSSHD}, "@include debian-sshd\n"),
			ids: []string{"pam-sshd-missing"}, has: "run 'otpgate setup sshd'"},
		{name: "Debian's sudo stack", findings: pam(sudoWant, "@include debian-sudo\n"),
			ids: []string{"pam-sudo-missing"}, has: "run 'otpgate setup sudo'"},
		{name: "sshd stack without require_publickey", findings: pam(sshdWant, strings.Replace(setupSSHDPAM, " require_publickey", "", 1)),
			ids: []string{"pam-no-require-publickey"}, has: "run 'otpgate setup sshd'"},
		{name: "a service setup does not write", findings: pam(PAMWant{Service: "su", MissingSeverity: Warning, PasswordFirst: true}, "@include debian-sudo\n"),
			ids: []string{"pam-su-missing"}, has: "add 'auth required pam_otpgate.so'", lacks: "otpgate setup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if g := ids(tt.findings); !slices.Equal(g, tt.ids) {
				t.Fatalf("findings %q, want %q", g, tt.ids)
			}
			for _, f := range tt.findings {
				if !strings.Contains(f.Fix, tt.has) {
					t.Errorf("%s: the fix does not say %q: %s", f.ID, tt.has, f.Fix)
				}
				if tt.lacks != "" && strings.Contains(f.Fix, tt.lacks) {
					t.Errorf("%s: the fix says %q: %s", f.ID, tt.lacks, f.Fix)
				}
			}
		})
	}
}

func TestSSHDConfig(t *testing.T) {
	c := ParseSSHDT("PamServiceName sshd-rescue\nauthenticationmethods publickey,password publickey,keyboard-interactive:pam\n")
	if got := c.PAMService(); got != "sshd-rescue" {
		t.Errorf("PAMService = %q", got)
	}
	if got := ParseSSHDT(sshdGood).PAMService(); got != "sshd" {
		t.Errorf("default PAMService = %q", got)
	}
	if got := len(c.MethodLists()); got != 2 {
		t.Errorf("MethodLists: %d lists", got)
	}
	for methods, want := range map[string]bool{
		"publickey,keyboard-interactive":                    true,
		"publickey,keyboard-interactive:pam publickey":      true,
		"keyboard-interactive":                              false,
		"keyboard-interactive,publickey":                    false,
		"publickey,password publickey,keyboard-interactive": true,
		"any": false,
	} {
		if got := sshdWith("publickey,keyboard-interactive", methods).KeyBeforeCode(); got != want {
			t.Errorf("KeyBeforeCode(%q) = %t, want %t", methods, got, want)
		}
	}
	if !sshdWith().SameAs(sshdWith("port 22", "port 2222")) || sshdWith().SameAs(sshdWith("usepam yes", "usepam no")) {
		t.Error("SameAs compares the wrong keywords")
	}
}

func TestSudo(t *testing.T) {
	tests := []struct {
		out     string
		minutes float64
		ok      bool
		reaches bool
		ids     []string
	}{
		{"Sudo version 1.9.13p3\nAuthentication timestamp timeout: 15.0 minutes\n", 15, true, true, []string{"sudo-timestamp"}},
		{"Authentication timestamp timeout: 0.0 minutes\n", 0, true, true, nil},
		{"Authentication timestamp timeout: -1.0 minutes\n", -1, true, true, []string{"sudo-timestamp"}},
		{"Authentication timestamp timeout: 15.0 minutes\n", 15, true, false, nil},
		{"Sudo version 1.9.13p3\n", 0, false, true, nil},
	}
	for _, tt := range tests {
		minutes, ok := ParseSudoTimeout(tt.out)
		if minutes != tt.minutes || ok != tt.ok {
			t.Errorf("ParseSudoTimeout(%q) = %v, %t", tt.out, minutes, ok)
		}
		if g := ids(CheckSudoTimeout(minutes, tt.reaches)); ok && !slices.Equal(g, tt.ids) {
			t.Errorf("CheckSudoTimeout(%v, %t) = %q, want %q", minutes, tt.reaches, g, tt.ids)
		}
	}
}

func TestCheckClock(t *testing.T) {
	tests := []struct {
		c    Clock
		want bool
	}{
		{Clock{Status: 0x2001, MaxError: 200 * time.Millisecond}, false},
		{Clock{Status: staUnsync, MaxError: 16 * time.Second}, true},
		{Clock{Status: 0, MaxError: 16 * time.Second}, true},
		{Clock{Status: staUnsync}, true},
	}
	for _, tt := range tests {
		if got := len(CheckClock(tt.c)) > 0; got != tt.want {
			t.Errorf("CheckClock(%+v) finding = %t, want %t", tt.c, got, tt.want)
		}
	}
}

var testAccounts = []Account{
	{Name: "root", UID: 0, GID: 0},
	{Name: "toor", UID: 0, GID: 0},
	{Name: "alice", UID: 1000, GID: 1000},
	{Name: "bob", UID: 1001, GID: 27},
	{Name: "carol", UID: 1002, GID: 1002},
}

var testGroups = []Group{
	{Name: "root", GID: 0},
	{Name: "sudo", GID: 27, Members: []string{"alice"}},
	{Name: "ops", GID: 1100, Members: []string{"carol", "alice"}},
	{Name: "alice", GID: 1000},
}

func TestAccounts(t *testing.T) {
	acc, grp := testAccounts, testGroups
	if got, want := Admins(acc, grp), []string{"alice", "bob", "root", "toor"}; !slices.Equal(got, want) {
		t.Errorf("Admins = %q, want %q", got, want)
	}
	if got, want := GroupMembers([]string{"ops"}, acc, grp), []string{"alice", "carol"}; !slices.Equal(got, want) {
		t.Errorf("GroupMembers(ops) = %q, want %q", got, want)
	}
	active := protocol.UserStatus{State: protocol.StateActive}
	reqNone := protocol.UserStatus{State: protocol.StateNone, PolicyRequires: true}
	tests := []struct {
		name   string
		status map[string]protocol.UserStatus
		ids    []string
	}{
		{"root enrolled", map[string]protocol.UserStatus{"root": active, "alice": {State: protocol.StateNone}}, nil},
		{"nobody enrolled", map[string]protocol.UserStatus{"root": {State: protocol.StateNone}}, []string{"admin-none-enrolled"}},
		{"required admin not enrolled", map[string]protocol.UserStatus{"root": active, "alice": reqNone}, []string{"admin-required-not-enrolled"}},
		{"required but exempt", map[string]protocol.UserStatus{"root": active, "alice": {PolicyRequires: true, Exempt: true}}, nil},
	}
	for _, tt := range tests {
		if g := ids(CheckAdmins(Admins(acc, grp), tt.status)); !slices.Equal(g, tt.ids) {
			t.Errorf("%s: CheckAdmins = %q, want %q", tt.name, g, tt.ids)
		}
	}
	f := CheckRequired([]string{"alice", "carol", "dave"}, map[string]protocol.UserStatus{"alice": active, "carol": reqNone})
	if len(f) != 1 || !strings.Contains(f[0].Problem, "carol, dave") || !strings.Contains(f[0].Fix, "otpgate admin enroll carol") {
		t.Errorf("CheckRequired = %+v", f)
	}
	if f := CheckRequired([]string{"alice"}, map[string]protocol.UserStatus{"alice": active}); f != nil {
		t.Errorf("CheckRequired all enrolled = %+v", f)
	}
}

func TestCheckTrusted(t *testing.T) {
	lib := PathInfo{Path: "/usr/lib/otpgate/x.so", Mode: 0o644, UID: 0}
	dir := PathInfo{Path: "/usr/lib/otpgate", Mode: fs.ModeDir | 0o755, UID: 0}
	root := PathInfo{Path: "/", Mode: fs.ModeDir | 0o755, UID: 0}
	tests := []struct {
		name  string
		chain []PathInfo
		ids   []string
		where string
	}{
		{"safe", []PathInfo{lib, dir, root}, nil, ""},
		{"missing", []PathInfo{{Path: lib.Path, Error: fs.ErrNotExist}}, []string{"golib-missing"}, lib.Path},
		{"group-writable file", []PathInfo{{Path: lib.Path, Mode: 0o664}, dir, root}, []string{"golib-unsafe"}, lib.Path},
		{"user-owned directory", []PathInfo{lib, {Path: dir.Path, Mode: fs.ModeDir | 0o755, UID: 1000}, root}, []string{"golib-unsafe"}, dir.Path},
		{"not a regular file", []PathInfo{{Path: lib.Path, Mode: fs.ModeDir | 0o755}, root}, []string{"golib-unsafe"}, lib.Path},
	}
	for _, tt := range tests {
		got := CheckTrusted("golib", "the Go library", tt.chain)
		if g := ids(got); !slices.Equal(g, tt.ids) {
			t.Errorf("%s: %q, want %q", tt.name, g, tt.ids)
		}
		if len(got) > 0 && got[0].Where != tt.where {
			t.Errorf("%s: where %q, want %q", tt.name, got[0].Where, tt.where)
		}
	}
}

func TestReport(t *testing.T) {
	var r Report
	r.check("clock")
	r.add(Finding{ID: "n", Severity: Info, Problem: "p", Why: "w", Fix: "f"})
	if !r.OK() {
		t.Error("a note made the report fail")
	}
	r.add(Finding{ID: "w", Severity: Warning, Problem: "p\nsecond line", Why: "w", Fix: "f"},
		Finding{ID: "e", Severity: Error, Where: "x:1", Problem: "p", Why: "w", Fix: "f"})
	r.sort()
	if r.OK() || r.Errors != 1 || r.Warnings != 1 || !slices.Equal(ids(r.Findings), []string{"e", "w", "n"}) {
		t.Errorf("report: %+v", r)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ERROR [e] x:1\n  problem: p\n", "\n           second line\n", "1 errors, 1 warnings, 1 notes (1 checks)."} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || !slices.Equal(ids(back.Findings), ids(r.Findings)) || back.Errors != 1 {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
	var empty Report
	js.Reset()
	if err := empty.WriteJSON(&js); err != nil || !strings.Contains(js.String(), `"findings": []`) {
		t.Errorf("empty report JSON: %v %s", err, js.String())
	}
}
