package setup

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// debianPAM reads the Debian 12 stock files in testdata/debian12/pam.d,
// with overrides (name -> content).
func debianPAM(t *testing.T, overrides map[string]string) func(string) ([]byte, error) {
	t.Helper()
	return func(name string) ([]byte, error) {
		name = strings.TrimPrefix(name, PAMDir+"/")
		if s, ok := overrides[name]; ok {
			return []byte(s), nil
		}
		data, err := os.ReadFile(filepath.Join("testdata", "debian12", "pam.d", name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if err != nil {
			t.Fatal(err)
		}
		return data, nil
	}
}

func testdataFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("missing test data: %v", err)
	}
	return string(data)
}

// docsSSHDStack is docs/pam.md's /etc/pam.d/sshd.
const docsSSHDStack = `# auth: the key was checked by sshd; PAM asks only for the code.
auth required pam_otpgate.so require_publickey
auth required pam_permit.so
account required pam_nologin.so
@include common-account
@include common-session
@include common-password
`

// docsSudoStack is docs/pam.md's /etc/pam.d/sudo.
const docsSudoStack = `#%PAM-1.0
session    required   pam_limits.so
@include common-auth
auth       required   pam_otpgate.so
@include common-account
@include common-session-noninteractive
`

func TestPlanSSHDPAM(t *testing.T) {
	read := debianPAM(t, nil)
	stock := testdataFile(t, "debian12/pam.d/sshd")
	tests := []struct {
		name string
		file string
		// want is the expected new file; "" means unchanged.
		want string
		// errHas are pieces of the error; nil means no error.
		errHas []string
	}{
		{name: "Debian 12 stock file: common-auth replaced, the rest kept",
			file: stock,
			want: strings.Replace(stock, "@include common-auth\n", sshdPAMLines, 1)},
		{name: "docs/pam.md's stack is already configured", file: docsSSHDStack},
		{name: "a stack set up before require_publickey gets the argument",
			file: strings.Replace(docsSSHDStack, "pam_otpgate.so require_publickey", "pam_otpgate.so debug # the code", 1),
			want: strings.Replace(docsSSHDStack, "pam_otpgate.so require_publickey", "pam_otpgate.so require_publickey debug # the code", 1)},
		{name: "no common-auth but a password module of its own is refused",
			file:   "auth required pam_unix.so\n@include common-account\n",
			errHas: []string{"/etc/pam.d/sshd", "no '@include common-auth'", "line 1", "fix: "}},
		{name: "no auth line at all: the lines go before the first rule",
			file: "# header\n\n@include common-account\n@include common-session\n",
			want: "# header\n\n" + sshdPAMLines + "@include common-account\n@include common-session\n"},
		{name: "pam_otpgate as optional is refused, not rewritten",
			file:   "@include common-auth\nauth optional pam_otpgate.so\n@include common-account\n",
			errHas: []string{"already uses pam_otpgate.so (line 2)", "optional"}},
		{name: "pam_otpgate without pam_permit is refused",
			file:   "auth required pam_otpgate.so\n@include common-account\n",
			errHas: []string{"already uses pam_otpgate.so", "pam_permit"}},
		{name: "two common-auth includes are refused",
			file:   "@include common-auth\n@include common-auth\n",
			errHas: []string{"more than once (lines 1, 2)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := PlanSSHDPAM("sshd", []byte(tt.file), read)
			checkPlan(t, c, err, tt.want, tt.errHas)
			if c != nil {
				again, err := PlanSSHDPAM("sshd", c.New, read)
				if err != nil || again != nil {
					t.Errorf("second run is not a no-op: %v, %+v", err, again)
				}
			}
		})
	}
}

func TestPlanSudoPAM(t *testing.T) {
	read := debianPAM(t, nil)
	line := sudoPAMLine
	tests := []struct {
		name, service, file, want string
		errHas                    []string
	}{
		{name: "Debian 12 sudo: the module right after common-auth", service: "sudo",
			file: testdataFile(t, "debian12/pam.d/sudo"),
			want: strings.Replace(testdataFile(t, "debian12/pam.d/sudo"), "@include common-auth\n", "@include common-auth\n"+line, 1)},
		{name: "Debian 12 sudo-i likewise", service: "sudo-i",
			file: testdataFile(t, "debian12/pam.d/sudo-i"),
			want: strings.Replace(testdataFile(t, "debian12/pam.d/sudo-i"), "@include common-auth\n", "@include common-auth\n"+line, 1)},
		{name: "docs/pam.md's stack is already configured", service: "sudo", file: docsSudoStack},
		{name: "common-auth as the last line without a newline", service: "sudo",
			file: "session required pam_limits.so\n@include common-auth",
			want: "session required pam_limits.so\n@include common-auth\n" + line},
		{name: "no common-auth is refused", service: "sudo",
			file:   "auth required pam_unix.so\n@include common-account\n",
			errHas: []string{"/etc/pam.d/sudo", "0 '@include common-auth' lines"}},
		{name: "the code before the password is refused", service: "sudo",
			file:   "auth required pam_otpgate.so\n@include common-auth\n@include common-account\n",
			errHas: []string{"already uses pam_otpgate.so (line 1)", "before the password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := PlanSudoPAM(tt.service, []byte(tt.file), read)
			checkPlan(t, c, err, tt.want, tt.errHas)
			if c != nil {
				if c.Path != "/etc/pam.d/"+tt.service {
					t.Errorf("path %s", c.Path)
				}
				again, err := PlanSudoPAM(tt.service, c.New, read)
				if err != nil || again != nil {
					t.Errorf("second run is not a no-op: %v, %+v", err, again)
				}
			}
		})
	}
}

// checkPlan compares a planned change (or error) with the expectation:
// want "" means no change, errHas non-nil means an error containing each
// piece.
func checkPlan(t *testing.T, c *Change, err error, want string, errHas []string) {
	t.Helper()
	if errHas != nil {
		if err == nil {
			t.Fatalf("no error; change:\n%s", diffOf(c))
		}
		for _, h := range errHas {
			if !strings.Contains(err.Error(), h) {
				t.Errorf("error does not say %q:\n%v", h, err)
			}
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if want == "" {
		if c != nil {
			t.Fatalf("changed a configured file:\n%s", c.Diff())
		}
		return
	}
	if c == nil {
		t.Fatal("no change planned")
	}
	if string(c.New) != want {
		t.Errorf("new file:\n%s\nwant:\n%s\ndiff:\n%s", c.New, want, c.Diff())
	}
}

func diffOf(c *Change) string {
	if c == nil {
		return "(none)"
	}
	return c.Diff()
}
