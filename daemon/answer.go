package daemon

import (
	"strings"
)

// readCode reads an answer to a code prompt as people type it: surrounding
// white space goes, and so do spaces and dashes between the digits of a
// code, as authenticator apps display it ("512 397", "512-397"). Anything
// that is not digits-long digits is left for the recovery-code check when
// it could be one (letters and digits, 6 to 64 of them once spaces and
// dashes are dropped: otpgate's own codes and imported scratch codes). ok
// is false for anything else, which then gets codeFormatText rather than a
// counted failure: it cannot be a guess.
func readCode(answer string, digits int) (code string, ok bool) {
	answer = strings.TrimSpace(answer)
	compact := strings.NewReplacer(" ", "", "-", "", "\t", "").Replace(answer)
	if len(compact) == digits && allDigits(compact) {
		return compact, true
	}
	if _, ok := normalizeRecovery(answer); ok {
		return answer, true
	}
	return "", false
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
