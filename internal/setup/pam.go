package setup

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/otpgate/otpgate/internal/doctor"
	"github.com/otpgate/otpgate/internal/pamstack"
)

// PAMDir is where the PAM service files are.
const PAMDir = pamstack.Dir

// The lines setup writes (docs/pam.md).
const (
	sshdPAMLines = "# otpgate setup sshd: '@include common-auth' replaced (sshd checked the key;\n" +
		"# PAM asks only for the code; docs/pam.md). pam_permit lets in users who need no code;\n" +
		"# require_publickey refuses any login for which sshd verified no public key.\n" +
		"auth       required     pam_otpgate.so require_publickey\n" +
		"auth       required     pam_permit.so\n"
	sudoPAMLine = "auth       required   pam_otpgate.so\n"
)

// PAMError is a service file setup does not edit, with what it found and
// what to do instead.
type PAMError struct {
	Path    string
	Problem string
	Fix     string
}

func (e *PAMError) Error() string {
	return fmt.Sprintf("%s: %s\nfix: %s", e.Path, e.Problem, e.Fix)
}

// readWith reads PAM service files from read, with service reading as
// data.
func readWith(read pamstack.ReadFunc, service string, data []byte) pamstack.ReadFunc {
	return func(name string) ([]byte, error) {
		if name == service || name == filepath.Join(PAMDir, service) {
			return data, nil
		}
		return read(name)
	}
}

// pamProblems runs doctor's check of the service with data as its file,
// and returns the errors and warnings.
func pamProblems(want doctor.PAMWant, data []byte, read pamstack.ReadFunc) []doctor.Finding {
	entries, _, err := doctor.LoadService(want.Service, readWith(read, want.Service, data))
	if err != nil {
		return []doctor.Finding{{ID: "pam-read", Severity: doctor.Error, Problem: err.Error()}}
	}
	var out []doctor.Finding
	for _, f := range doctor.CheckPAMService(want, entries) {
		if f.Severity != doctor.Info {
			out = append(out, f)
		}
	}
	return out
}

func describe(fs []doctor.Finding) string {
	var s []string
	for _, f := range fs {
		w := ""
		if f.Where != "" {
			w = " (" + f.Where + ")"
		}
		s = append(s, f.Problem+w)
	}
	return strings.Join(s, "; ")
}

// SSHDPAMWant is what doctor expects of the sshd service after setup: the
// key first, so the stack asks for the code only.
func SSHDPAMWant(service string) doctor.PAMWant {
	return doctor.PAMWant{Service: service, MissingSeverity: doctor.Error, Setup: doctor.SetupSSHD}
}

// SudoPAMWant is what doctor expects of sudo and sudo-i: the password,
// then the code.
func SudoPAMWant(service string) doctor.PAMWant {
	return doctor.PAMWant{Service: service, MissingSeverity: doctor.Warning, PasswordFirst: true, Setup: doctor.SetupSudo}
}

// PlanSSHDPAM plans /etc/pam.d/<service> for sshd: its '@include
// common-auth' line is replaced by 'auth required pam_otpgate.so
// require_publickey' and
// 'auth required pam_permit.so'; everything else stays. It returns nil
// when the file already passes doctor's check. read reads the included
// files (common-account, ...).
func PlanSSHDPAM(service string, data []byte, read pamstack.ReadFunc) (*Change, error) {
	want := SSHDPAMWant(service)
	path := filepath.Join(PAMDir, service)
	problems := pamProblems(want, data, read)
	if len(problems) == 0 {
		return nil, nil
	}
	lines := strings.SplitAfter(string(data), "\n")
	var incl, auth, otp []int
	for i, l := range lines {
		f := pamstack.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "@include" && f[1] == "common-auth":
			incl = append(incl, i)
		case len(f) >= 3 && strings.EqualFold(strings.TrimPrefix(f[0], "-"), "auth"):
			auth = append(auth, i)
			if filepath.Base(f[2]) == pamstack.ModuleName {
				otp = append(otp, i)
			}
		case len(f) >= 3 && filepath.Base(f[2]) == pamstack.ModuleName:
			otp = append(otp, i)
		}
	}
	manual := "edit it by hand as docs/pam.md shows: no '@include common-auth', then 'auth required pam_otpgate.so require_publickey' and 'auth required pam_permit.so'; keep the account, session and password lines"
	switch {
	case len(otp) == 1 && onlyFinding(problems, "pam-no-require-publickey"):
		// A stack set up before require_publickey: add it to the line.
		lines[otp[0]] = withArg(lines[otp[0]], "require_publickey")
		out := []byte(strings.Join(lines, ""))
		if p := pamProblems(want, out, read); len(p) > 0 {
			return nil, &PAMError{Path: path, Problem: "after adding require_publickey doctor would still report: " + describe(p), Fix: manual}
		}
		return &Change{Path: path, Old: data, New: out, Mode: 0o644}, nil
	case len(otp) > 0:
		return nil, &PAMError{Path: path,
			Problem: fmt.Sprintf("already uses %s (line %s) but not as setup writes it: %s", pamstack.ModuleName, lineList(otp), describe(problems)),
			Fix:     manual}
	case len(incl) > 1:
		return nil, &PAMError{Path: path,
			Problem: fmt.Sprintf("has '@include common-auth' more than once (lines %s)", lineList(incl)),
			Fix:     manual}
	case len(incl) == 0 && len(auth) > 0:
		return nil, &PAMError{Path: path,
			Problem: fmt.Sprintf("has no '@include common-auth' line to replace, but its own auth lines (line %s)", lineList(auth)),
			Fix:     "decide which of those lines sshd still needs after the public key, and " + manual}
	}
	var b strings.Builder
	if len(incl) == 1 {
		for i, l := range lines {
			if i == incl[0] {
				b.WriteString(sshdPAMLines)
				continue
			}
			b.WriteString(l)
		}
	} else {
		// No auth line at all: the lines go before the first rule.
		at := firstRule(lines)
		for _, l := range lines[:at] {
			b.WriteString(l)
		}
		b.WriteString(sshdPAMLines)
		for _, l := range lines[at:] {
			b.WriteString(l)
		}
	}
	out := []byte(b.String())
	if p := pamProblems(want, out, read); len(p) > 0 {
		return nil, &PAMError{Path: path, Problem: "after the change doctor would still report: " + describe(p), Fix: manual}
	}
	return &Change{Path: path, Old: data, New: out, Mode: 0o644}, nil
}

// PlanSudoPAM plans /etc/pam.d/<service> for sudo or sudo-i: 'auth
// required pam_otpgate.so' right after '@include common-auth'. It
// returns nil when the file already passes doctor's check.
func PlanSudoPAM(service string, data []byte, read pamstack.ReadFunc) (*Change, error) {
	want := SudoPAMWant(service)
	path := filepath.Join(PAMDir, service)
	problems := pamProblems(want, data, read)
	if len(problems) == 0 {
		return nil, nil
	}
	lines := strings.SplitAfter(string(data), "\n")
	var incl, otp []int
	for i, l := range lines {
		f := pamstack.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "@include" && f[1] == "common-auth":
			incl = append(incl, i)
		case len(f) >= 3 && filepath.Base(f[2]) == pamstack.ModuleName:
			otp = append(otp, i)
		}
	}
	manual := "edit it by hand as docs/pam.md shows: 'auth required pam_otpgate.so' right after the password (after '@include common-auth')"
	switch {
	case len(otp) > 0:
		return nil, &PAMError{Path: path,
			Problem: fmt.Sprintf("already uses %s (line %s) but not as setup writes it: %s", pamstack.ModuleName, lineList(otp), describe(problems)),
			Fix:     manual}
	case len(incl) != 1:
		return nil, &PAMError{Path: path,
			Problem: fmt.Sprintf("has %d '@include common-auth' lines, setup needs exactly one to put the code after", len(incl)),
			Fix:     manual}
	}
	var b strings.Builder
	for i, l := range lines {
		b.WriteString(l)
		if i == incl[0] {
			if !strings.HasSuffix(l, "\n") {
				b.WriteString("\n")
			}
			b.WriteString(sudoPAMLine)
		}
	}
	out := []byte(b.String())
	if p := pamProblems(want, out, read); len(p) > 0 {
		return nil, &PAMError{Path: path, Problem: "after the change doctor would still report: " + describe(p), Fix: manual}
	}
	return &Change{Path: path, Old: data, New: out, Mode: 0o644}, nil
}

// firstRule is the index of the first line that is not blank or a
// comment.
func firstRule(lines []string) int {
	for i, l := range lines {
		if len(pamstack.Fields(l)) > 0 {
			return i
		}
	}
	return len(lines)
}

func lineList(idx []int) string {
	var s []string
	for _, i := range idx {
		s = append(s, fmt.Sprint(i+1))
	}
	return strings.Join(s, ", ")
}

// onlyFinding reports whether every finding has the ID id.
func onlyFinding(fs []doctor.Finding, id string) bool {
	for _, f := range fs {
		if f.ID != id {
			return false
		}
	}
	return len(fs) > 0
}

// withArg adds arg to a PAM line right after the pam_otpgate module name.
func withArg(line, arg string) string {
	at := 0
	for _, f := range strings.Fields(line) {
		i := strings.Index(line[at:], f) + at
		at = i + len(f)
		if strings.HasPrefix(f, "#") {
			break
		}
		if filepath.Base(f) == pamstack.ModuleName {
			return line[:at] + " " + arg + line[at:]
		}
	}
	return line
}
