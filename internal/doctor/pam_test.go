package doctor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/pamstack"
)

// readTestdata reads PAM files from testdata/pam.d (Debian 12's files, as
// shipped) overlaid with extra, the files a case writes.
func readTestdata(extra map[string]string) pamstack.ReadFunc {
	return func(name string) ([]byte, error) {
		if s, ok := extra[name]; ok {
			return []byte(s), nil
		}
		data, err := os.ReadFile(filepath.Join("testdata", "pam.d", filepath.Base(name)))
		if err != nil {
			return nil, fs.ErrNotExist
		}
		return data, nil
	}
}

func ids(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func TestLoadService(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		wantAuth []string // module base names of the auth lines, in order
		wantIDs  []string
	}{
		{"debian sshd expands common-auth", map[string]string{"sshd": "@include common-auth\n"},
			[]string{"pam_unix.so", "pam_deny.so", "pam_permit.so", "pam_cap.so"}, nil},
		{"include control takes one type", map[string]string{"sshd": "auth include common-auth\naccount include common-auth\n"},
			[]string{"pam_unix.so", "pam_deny.so", "pam_permit.so", "pam_cap.so"}, nil},
		{"substack", map[string]string{"x": "auth substack y\n", "y": "auth required pam_otpgate.so\nsession required pam_limits.so\n"},
			[]string{"pam_otpgate.so"}, nil},
		{"continuation and comments", map[string]string{"x": "auth required \\\n  pam_otpgate.so # trailing\n# auth required pam_deny.so\n"},
			[]string{"pam_otpgate.so"}, nil},
		{"dash type", map[string]string{"x": "-auth required pam_otpgate.so\n"}, []string{"pam_otpgate.so"}, nil},
		{"missing include", map[string]string{"x": "@include nope\nauth required pam_permit.so\n"}, []string{"pam_permit.so"}, []string{"pam-include-missing"}},
		{"include loop", map[string]string{"x": "@include x\n"}, nil, []string{"pam-include-loop"}},
		{"incomplete line", map[string]string{"x": "auth required\n"}, nil, []string{"pam-syntax"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := "sshd"
			if _, ok := tt.files["x"]; ok {
				svc = "x"
			}
			entries, fds, err := LoadService(svc, readTestdata(tt.files))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range pamstack.AuthEntries(entries) {
				got = append(got, e.Base())
			}
			if !slices.Equal(got, tt.wantAuth) {
				t.Errorf("auth modules %q, want %q", got, tt.wantAuth)
			}
			if g := ids(fds); !slices.Equal(g, tt.wantIDs) {
				t.Errorf("findings %q, want %q", g, tt.wantIDs)
			}
		})
	}
	if _, _, err := LoadService("absent", readTestdata(nil)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent service: %v, want fs.ErrNotExist", err)
	}
}

func TestCheckPAMService(t *testing.T) {
	sshd := PAMWant{Service: "sshd", MissingSeverity: Error}
	sudo := PAMWant{Service: "sudo", MissingSeverity: Warning, PasswordFirst: true}
	docSSHD := "auth required pam_otpgate.so require_publickey\nauth required pam_permit.so\n@include common-account\n"
	docSudo := "@include common-auth\nauth required pam_otpgate.so\n@include common-account\n"
	tests := []struct {
		name  string
		want  PAMWant
		stack string
		ids   []string
	}{
		{"documented sshd", sshd, docSSHD, nil},
		{"documented sudo", sudo, docSudo, nil},
		{"debian sshd, no module", sshd, "@include debian-sshd\n", []string{"pam-sshd-missing"}},
		{"debian sudo, no module", sudo, "@include debian-sudo\n", []string{"pam-sudo-missing"}},
		{"module only as session", sshd, "auth required pam_permit.so\nsession required pam_otpgate.so\n", []string{"pam-not-auth"}},
		{"optional", sshd, strings.Replace(docSSHD, "required pam_otpgate", "optional pam_otpgate", 1), []string{"pam-control"}},
		{"sufficient then permit", sshd, strings.Replace(docSSHD, "required pam_otpgate", "sufficient pam_otpgate", 1), []string{"pam-control"}},
		{"sufficient then deny", sshd, "auth sufficient pam_otpgate.so require_publickey\nauth requisite pam_deny.so\nauth required pam_permit.so\n", nil},
		{"bracket die", sshd, "auth [success=ok default=die] pam_otpgate.so require_publickey\nauth required pam_permit.so\n", nil},
		{"bracket auth_err ignore", sshd, "auth [success=ok auth_err=ignore default=bad] pam_otpgate.so require_publickey\nauth required pam_permit.so\n", []string{"pam-control"}},
		{"bracket without default", sshd, "auth [success=ok] pam_otpgate.so require_publickey\nauth required pam_permit.so\n", []string{"pam-control"}},
		{"dash", sshd, "-" + docSSHD, []string{"pam-dash"}},
		{"fail=open", sshd, strings.Replace(docSSHD, "pam_otpgate.so", "pam_otpgate.so fail=open", 1), []string{"pam-fail-open"}},
		{"common-auth kept in sshd", sshd, "@include common-auth\n" + docSSHD, []string{"pam-password-asked"}},
		{"no permit", sshd, "auth required pam_otpgate.so require_publickey\n", []string{"pam-no-permit"}},
		{"sshd without require_publickey", sshd, strings.Replace(docSSHD, " require_publickey", "", 1), []string{"pam-no-require-publickey"}},
		{"sshd with a password module needs no require_publickey", sshd,
			"@include common-auth\nauth required pam_otpgate.so\n", []string{"pam-password-asked"}},
		{"require_publickey in sudo", sudo, strings.Replace(docSudo, "pam_otpgate.so", "pam_otpgate.so require_publickey", 1), []string{"pam-require-publickey-unkeyed"}},
		{"code before password in sudo", sudo, "auth required pam_otpgate.so\n@include common-auth\n", []string{"pam-order"}},
		{"enroll_after_password behind requisite pam_unix", sshd,
			"auth requisite pam_unix.so\nauth required pam_otpgate.so enroll_after_password\nauth required pam_permit.so\n", []string{"pam-password-asked"}},
		{"enroll_after_password behind common-auth (pam_deny ends it)", sudo,
			"@include common-auth\nauth required pam_otpgate.so enroll_after_password\n", nil},
		{"enroll_after_password behind a bracket die", sshd,
			"auth [success=ok default=die] pam_unix.so\nauth required pam_otpgate.so enroll_after_password\nauth required pam_permit.so\n", []string{"pam-password-asked"}},
		{"enroll_after_password behind required pam_unix (the stack goes on)", sshd,
			"auth required pam_unix.so\nauth required pam_otpgate.so enroll_after_password\nauth required pam_permit.so\n", []string{"pam-enroll-after-password", "pam-password-asked"}},
		{"enroll_after_password without a password module", sshd,
			strings.Replace(docSSHD, "pam_otpgate.so", "pam_otpgate.so enroll_after_password", 1), []string{"pam-enroll-after-password"}},
		{"enroll_after_password with the password after the code", sudo,
			"auth required pam_otpgate.so enroll_after_password\n@include common-auth\n", []string{"pam-enroll-after-password", "pam-order"}},
		{"enroll_after_password behind a bracket without pam_deny", sshd,
			"auth [success=1 default=ignore] pam_unix.so\nauth required pam_otpgate.so enroll_after_password\nauth required pam_permit.so\n", []string{"pam-enroll-after-password", "pam-password-asked"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, fds, err := LoadService(tt.want.Service, readTestdata(map[string]string{tt.want.Service: tt.stack}))
			if err != nil || len(fds) > 0 {
				t.Fatalf("load: %v %v", err, fds)
			}
			got := CheckPAMService(tt.want, entries)
			if g := ids(got); !slices.Equal(g, tt.ids) {
				t.Errorf("findings %q, want %q", g, tt.ids)
			}
			for _, f := range got {
				if f.Problem == "" || f.Why == "" || f.Fix == "" {
					t.Errorf("%s lacks problem, why or fix: %+v", f.ID, f)
				}
			}
			wantReach := true
			for _, id := range tt.ids {
				if id == "pam-control" || id == "pam-not-auth" || strings.HasSuffix(id, "-missing") {
					wantReach = false
				}
			}
			if reaches := pamstack.ReachesOtpgate(entries); reaches != wantReach {
				t.Errorf("ReachesOtpgate = %t, want %t", reaches, wantReach)
			}
		})
	}
}

func TestCheckConsole(t *testing.T) {
	tests := []struct {
		name  string
		stack string
		ids   []string
	}{
		{"debian login", "@include debian-login\n", nil},
		{"login requires a code", "@include common-auth\nauth required pam_otpgate.so\n", []string{"console-guarded"}},
		{"login with fail=open", "@include common-auth\nauth required pam_otpgate.so fail=open\n", nil},
		{"login with optional", "@include common-auth\nauth optional pam_otpgate.so\n", nil},
	}
	for _, tt := range tests {
		entries, _, err := LoadService("login", readTestdata(map[string]string{"login": tt.stack}))
		if err != nil {
			t.Fatal(err)
		}
		if g := ids(CheckConsole(entries)); !slices.Equal(g, tt.ids) {
			t.Errorf("%s: findings %q, want %q", tt.name, g, tt.ids)
		}
	}
}
