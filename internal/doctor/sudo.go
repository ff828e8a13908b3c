package doctor

import (
	"fmt"
	"regexp"
	"strconv"
)

var sudoTimeoutRE = regexp.MustCompile(`(?m)^Authentication timestamp timeout: (-?[0-9.]+) minutes`)

// ParseSudoTimeout reads timestamp_timeout (minutes) from the output of
// `sudo -V` run as root, which reflects /etc/sudoers and its Defaults.
func ParseSudoTimeout(out string) (float64, bool) {
	m := sudoTimeoutRE.FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// CheckSudoTimeout notes how long sudo goes without asking again. It is a
// note, not a problem: a grace period is a policy choice.
func CheckSudoTimeout(minutes float64, reaches bool) []Finding {
	if minutes == 0 || !reaches {
		return nil
	}
	what := fmt.Sprintf("for %g minutes", minutes)
	if minutes < 0 {
		what = "ever again in that terminal session (timestamp_timeout is negative)"
	}
	return []Finding{{ID: "sudo-timestamp", Severity: Info, Where: "sudo -V",
		Problem: "after a successful sudo, sudo asks for no password and no code " + what,
		Why:     "while sudo's timestamp is valid it does not call PAM at all, so pam_otpgate is not asked either.",
		Fix:     "to ask every time, add 'Defaults timestamp_timeout=0' to a file in /etc/sudoers.d/ (edit with visudo -f)."}}
}
