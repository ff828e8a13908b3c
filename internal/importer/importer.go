// Package importer reads the TOTP secrets of the systems otpgate replaces,
// google-authenticator-libpam (~/.google_authenticator) and pam_oath (the
// usersfile, typically /etc/users.oath), so that an administrator can move
// their users to otpgated without re-enrolling them. A Source is what
// otpgate admin import reads: a usersfile (NewOATHSource) or the files in
// the users' homes (NewGoogleAuthenticatorSource), checked as a whole and
// then read again, entry by entry, as checked.
//
// Parsing is all or nothing: every problem is reported as FILE:LINE: what
// is wrong, and a caller imports nothing while any problem remains. Error
// messages never contain a secret, a scratch code or part of one.
package importer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// minSecretBytes is the shortest secret accepted, as by otpgated's admin
// import: google-authenticator's old default of 80 bits. Secrets below
// recommendedSecretBytes are imported with a note.
const (
	minSecretBytes         = 10
	recommendedSecretBytes = 16
)

// Entry is one user's secret, ready to be sent to otpgated.
type Entry struct {
	// User is the login name.
	User string
	// Source names where the entry came from ("FILE" or "FILE:LINE").
	Source string
	// Secret is the raw shared secret. Callers clear it after use.
	Secret []byte
	// Algorithm, Digits and Period are the code parameters.
	Algorithm string
	Digits    int
	Period    int
	// RecoveryCodes are one-time codes to keep (google-authenticator
	// scratch codes).
	RecoveryCodes []string
	// Settings the old system applied to this user that otpgate handles
	// server-wide or differently; see Differences.
	WindowSize    int    // google-authenticator WINDOW_SIZE (codes), 0 if absent
	RateLimit     [2]int // google-authenticator RATE_LIMIT n m, zero if absent
	DisallowReuse bool   // google-authenticator DISALLOW_REUSE present
	TimeSkew      int    // google-authenticator learned TIME_SKEW (steps), 0 if absent
	// FileMode is the permission bits of the file the entry was read
	// from, when known; group or other bits mean the secret may have been
	// copied.
	FileMode uint32
}

// Server is the part of otpgated's configuration that Differences compares
// an entry against.
type Server struct {
	// Skew is totp.skew: steps accepted before and after the current one.
	Skew int
	// MaxFailures and Lockout are rate_limit.max_failures and
	// rate_limit.lockout.
	MaxFailures int
	Lockout     time.Duration
}

// Differences lists, in plain words, what otpgate will do differently for
// this user than the system the entry came from.
func (e *Entry) Differences(s Server) []string {
	var out []string
	if len(e.Secret) < recommendedSecretBytes {
		out = append(out, fmt.Sprintf("the secret is %d bits, below the 128 bits RFC 4226 requires for new secrets: ask the user to re-enroll with 'otpgate enroll' when convenient", 8*len(e.Secret)))
	}
	if e.WindowSize > 0 {
		// google-authenticator's WINDOW_SIZE n accepts n codes centred on
		// the current one: (n-1)/2 steps either side.
		if side := (e.WindowSize - 1) / 2; side != s.Skew {
			out = append(out, fmt.Sprintf("WINDOW_SIZE %d (±%d steps) is not honoured: otpgated accepts ±%d steps for everyone (totp.skew)", e.WindowSize, side, s.Skew))
		}
	}
	if e.RateLimit != [2]int{} {
		out = append(out, fmt.Sprintf("RATE_LIMIT %d logins per %d s is replaced by otpgated's limit: a lockout after %d consecutive failures (rate_limit.max_failures), first for %s", e.RateLimit[0], e.RateLimit[1], s.MaxFailures, s.Lockout))
	}
	if e.TimeSkew != 0 {
		out = append(out, fmt.Sprintf("google-authenticator had learned that this user's device clock is %d steps off (TIME_SKEW); otpgated does not learn skew: if codes are refused, the user is told the clock is off and should fix it", e.TimeSkew))
	}
	if e.FileMode&0o077 != 0 {
		out = append(out, fmt.Sprintf("%s had mode %04o, readable by other users: the secret may have been copied, so re-enroll this user", e.Source, e.FileMode&0o7777))
	}
	return out
}

// LineError is one problem at one line of an input file. Line 0 means the
// file as a whole.
type LineError struct {
	File string
	Line int
	Msg  string
}

func (e *LineError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Errors is every problem found in one or more files, in order.
type Errors []*LineError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// errs accumulates LineErrors for one file.
type errs struct {
	file string
	list Errors
}

func (e *errs) add(line int, format string, args ...any) {
	e.list = append(e.list, &LineError{File: e.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (e *errs) err() error {
	if len(e.list) == 0 {
		return nil
	}
	return e.list
}

// Fingerprint returns an HMAC-SHA256, under key, of what importing e sends
// to otpgated: user, secret, code parameters and recovery codes. Comparing
// the fingerprints of two reads of a file tells whether they would import
// the same thing, without keeping the secret in between.
func (e *Entry) Fingerprint(key []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, key)
	field := func(b []byte) {
		m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b)))) //nolint:gosec // fields come from lines of at most MaxLineLength bytes
		m.Write(b)
	}
	field([]byte(e.User))
	field(e.Secret)
	field([]byte(fmt.Sprintf("%s/%d/%d", e.Algorithm, e.Digits, e.Period)))
	for _, c := range e.RecoveryCodes {
		field([]byte(c))
	}
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	return sum
}

// ClearSecrets overwrites the secrets of entries.
func ClearSecrets(entries []*Entry) {
	for _, e := range entries {
		clear(e.Secret)
	}
}

// validUser reports whether name can be a login name: 1 to 256 printable
// ASCII characters other than space and ':' (the passwd separator).
func validUser(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == ':' || c == '/' {
			return false
		}
	}
	return true
}
