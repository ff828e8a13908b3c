package doctor

import (
	"fmt"
	"io/fs"
)

// PathInfo is what lstat says about one path.
type PathInfo struct {
	Path  string
	Mode  fs.FileMode
	UID   uint32
	Error error // non-nil: the path could not be examined
}

// CheckTrusted checks a file and the directories above it (chain, file
// first) the way the PAM loader does before loading the Go library: each
// must be owned by root and not writable by group or others. id and what
// name the finding.
func CheckTrusted(id, what string, chain []PathInfo) []Finding {
	if len(chain) == 0 {
		return nil
	}
	file := chain[0]
	if file.Error != nil {
		return []Finding{{ID: id + "-missing", Severity: Error, Where: file.Path,
			Problem: fmt.Sprintf("%s %s cannot be examined: %v", what, file.Path, file.Error),
			Why:     "logins through the PAM services that use pam_otpgate.so fail: everyone's when the loader is missing, those of users who need a code when the Go library is.",
			Fix:     "install it: 'sudo make -C pam install BIN=$PWD/bin' from the source tree, or reinstall the otpgate package."}}
	}
	if !file.Mode.IsRegular() {
		return []Finding{{ID: id + "-unsafe", Severity: Error, Where: file.Path,
			Problem: fmt.Sprintf("%s %s is not a regular file (mode %s)", what, file.Path, file.Mode),
			Why:     "the loader refuses it, so logins that need a code fail.",
			Fix:     "reinstall it as a regular file: 'install -o root -g root -m 0644 FILE " + file.Path + "'."}}
	}
	for _, p := range chain {
		if p.Error != nil {
			continue
		}
		if p.UID != 0 || p.Mode.Perm()&0o022 != 0 {
			return []Finding{{ID: id + "-unsafe", Severity: Error, Where: p.Path,
				Problem: fmt.Sprintf("%s is owned by uid %d with mode %04o, on the path of %s %s", p.Path, p.UID, p.Mode.Perm(), what, file.Path),
				Why:     "whoever can write it can replace code that runs as root inside sshd and sudo; the loader refuses it, so logins that need a code fail.",
				Fix:     fmt.Sprintf("chown root:root %s && chmod go-w %s", p.Path, p.Path)}}
		}
	}
	return nil
}
