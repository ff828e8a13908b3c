package importer

import (
	"encoding/base32"
	"strconv"
	"strings"
)

// GoogleAuthenticatorFile is the file name google-authenticator-libpam
// reads in each home directory.
const GoogleAuthenticatorFile = ".google_authenticator"

// MaxFileSize bounds a ~/.google_authenticator file, as
// google-authenticator-libpam itself does (it refuses secret files over
// 64 KiB). A usersfile and /etc/passwd are read a line at a time and may be
// of any size.
const MaxFileSize = 64 << 10

var gaBase32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// ParseGoogleAuthenticator parses the ~/.google_authenticator file of user
// (file names it in errors). The format (google-authenticator-libpam's
// FILEFORMAT): the first line is the base32 secret; option lines start with
// `" ` and an upper-case name; 8-digit lines are one-time scratch codes,
// which become recovery codes. Only time-based (TOTP_AUTH) files can be
// imported: HOTP_COUNTER is refused, as is OTP_DISABLED.
func ParseGoogleAuthenticator(file, user string, data []byte) (*Entry, error) {
	e := &errs{file: file}
	if !validUser(user) {
		e.add(0, "invalid user name %q", user)
		return nil, e.err()
	}
	if len(data) > MaxFileSize {
		e.add(0, "file is %d bytes, more than the %d a google-authenticator file can be", len(data), MaxFileSize)
		return nil, e.err()
	}
	if len(data) == 0 {
		e.add(0, "file is empty: expected a base32 secret on line 1")
		return nil, e.err()
	}
	ent := &Entry{User: user, Source: file, Algorithm: "SHA1", Digits: 6, Period: 30}
	lines := strings.Split(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var totp, hotp bool
	seenOpt := map[string]int{}
	seenCode := map[string]int{}
	for i, line := range lines {
		n := i + 1
		line = strings.TrimRight(line, "\r")
		if bad := firstNonPrintable(line); bad >= 0 {
			e.add(n, "unexpected control or non-ASCII byte at column %d", bad+1)
			continue
		}
		if n == 1 {
			ent.Secret = parseGASecret(e, strings.TrimSpace(line))
			continue
		}
		switch {
		case strings.TrimSpace(line) == "":
			// google-authenticator never writes blank lines; they are
			// harmless.
		case strings.HasPrefix(line, `" `):
			fields := strings.Fields(line[2:])
			if len(fields) == 0 {
				e.add(n, `option line has no option name after '" '`)
				continue
			}
			name, args := fields[0], fields[1:]
			if prev, dup := seenOpt[name]; dup && !strings.HasPrefix(name, "LAST") {
				e.add(n, "option %s appears again (first on line %d)", name, prev)
				continue
			}
			seenOpt[name] = n
			switch name {
			case "TOTP_AUTH":
				totp = true
				wantArgs(e, n, name, args, 0, 0)
			case "HOTP_COUNTER":
				hotp = true
				e.add(n, "HOTP_COUNTER: counter-based (HOTP) codes are not supported by otpgate, only time-based (TOTP); %s must enroll again with 'otpgate enroll'", user)
			case "OTP_DISABLED":
				e.add(n, "OTP_DISABLED: two-factor authentication is switched off for %s; leave this user out of the import", user)
			case "WINDOW_SIZE":
				if wantArgs(e, n, name, args, 1, 1) {
					ent.WindowSize = intArg(e, n, name, args[0], 1, 100)
				}
			case "STEP_SIZE":
				if wantArgs(e, n, name, args, 1, 1) {
					ent.Period = intArg(e, n, name, args[0], 1, 60)
				}
			case "RATE_LIMIT":
				// RATE_LIMIT n m, then timestamps of recent logins.
				if wantArgs(e, n, name, args, 2, -1) {
					ent.RateLimit = [2]int{intArg(e, n, name+" count", args[0], 1, 100), intArg(e, n, name+" interval", args[1], 1, 3600)}
					checkInts(e, n, name, args[2:])
				}
			case "DISALLOW_REUSE":
				ent.DisallowReuse = true
				checkInts(e, n, name, args)
			case "TIME_SKEW":
				if wantArgs(e, n, name, args, 1, 1) {
					ent.TimeSkew = intArg(e, n, name, args[0], -100000, 100000)
				}
			case "RESETTING_TIME_SKEW":
				// State of the skew learner; not imported.
			case "LAST0", "LAST1", "LAST2", "LAST3", "LAST4", "LAST5", "LAST6", "LAST7", "LAST8", "LAST9":
				// grace_period state: remote host and time of a login.
			default:
				e.add(n, "unknown option %q (known: TOTP_AUTH, HOTP_COUNTER, WINDOW_SIZE, STEP_SIZE, RATE_LIMIT, DISALLOW_REUSE, TIME_SKEW, RESETTING_TIME_SKEW, LAST0-LAST9, OTP_DISABLED)", name)
			}
		default:
			code := strings.TrimSpace(line)
			if len(code) != 8 || !allDigits(code) {
				e.add(n, "expected an option line starting with '\" ' or an 8-digit scratch code, found %d characters", len(code))
				continue
			}
			if prev, dup := seenCode[code]; dup {
				e.add(n, "scratch code repeats the one on line %d", prev)
				continue
			}
			seenCode[code] = n
			ent.RecoveryCodes = append(ent.RecoveryCodes, code)
		}
	}
	if !totp && !hotp {
		e.add(0, `no " TOTP_AUTH line: the file does not enable time-based codes`)
	}
	if err := e.err(); err != nil {
		clear(ent.Secret)
		return nil, err
	}
	return ent, nil
}

// parseGASecret decodes line 1, reporting problems without echoing it.
func parseGASecret(e *errs, s string) []byte {
	if s == "" {
		e.add(1, "line 1 is empty: expected the base32 secret")
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		e.add(1, "line 1 is an option line: expected the base32 secret first")
		return nil
	}
	clean := strings.ToUpper(strings.TrimRight(s, "="))
	for i := 0; i < len(clean); i++ {
		if c := clean[i]; !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			e.add(1, "the secret is not base32: character %d is not A-Z or 2-7", i+1)
			return nil
		}
	}
	b, err := gaBase32.DecodeString(clean)
	if r := len(clean) % 8; err != nil || r == 1 || r == 3 || r == 6 {
		clear(b)
		e.add(1, "the secret's %d base32 characters are not a whole number of bytes", len(clean))
		return nil
	}
	if len(b) < minSecretBytes {
		e.add(1, "the secret is %d bits; at least %d are needed", 8*len(b), 8*minSecretBytes)
		clear(b)
		return nil
	}
	return b
}

// wantArgs checks that option name has lo to hi arguments (hi -1: no
// limit).
func wantArgs(e *errs, line int, name string, args []string, lo, hi int) bool {
	switch {
	case len(args) < lo:
		e.add(line, "%s needs %d argument(s), found %d", name, lo, len(args))
		return false
	case hi >= 0 && len(args) > hi:
		e.add(line, "%s takes %d argument(s), found %d", name, hi, len(args))
		return false
	}
	return true
}

func intArg(e *errs, line int, name, s string, lo, hi int) int {
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		e.add(line, "%s must be a whole number from %d to %d, not %q", name, lo, hi, s)
		return 0
	}
	return v
}

// checkInts checks state values (timestamps and the like) that are not
// imported but must be well formed.
func checkInts(e *errs, line int, name string, args []string) {
	for i, a := range args {
		if _, err := strconv.ParseInt(a, 10, 64); err != nil {
			e.add(line, "%s value %d is %q, not a number", name, i+1, a)
			return
		}
	}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// firstNonPrintable returns the index of the first byte of s that is not
// printable ASCII or a tab, or -1.
func firstNonPrintable(s string) int {
	return firstNonPrintableBytes([]byte(s))
}

// firstNonPrintableBytes is firstNonPrintable for a byte slice.
func firstNonPrintableBytes(b []byte) int {
	for i, c := range b {
		if !(c == '\t' || c >= ' ' && c < 0x7f) {
			return i
		}
	}
	return -1
}
