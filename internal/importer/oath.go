package importer

import (
	"encoding/hex"
	"strconv"
	"strings"
)

// ParseOATH parses a pam_oath usersfile (file names it in errors). Each
// non-comment line is
//
//	TYPE USER PIN HEXSECRET [COUNTER [LASTOTP [TIMESTAMP]]]
//
// Only time-based types are imported: HOTP/T30 and HOTP/T60, optionally
// with /6, /7 or /8 digits. Counter-based lines (HOTP, HOTP/E...) are
// refused, and so is any PIN other than "-": otpgate has no static
// password of its own. A user may appear once: otpgate keeps one secret per
// user.
func ParseOATH(file string, data []byte) ([]*Entry, error) {
	e := &errs{file: file}
	if len(data) > MaxFileSize {
		e.add(0, "file is %d bytes, more than the %d this importer reads", len(data), MaxFileSize)
		return nil, e.err()
	}
	var entries []*Entry
	seen := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimRight(line, "\r")
		if bad := firstNonPrintable(line); bad >= 0 {
			e.add(n, "unexpected control or non-ASCII byte at column %d", bad+1)
			continue
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		f := strings.Fields(trimmed)
		if len(f) < 4 || len(f) > 7 {
			e.add(n, "expected TYPE USER PIN HEXSECRET [COUNTER [LASTOTP [TIMESTAMP]]], found %d fields", len(f))
			continue
		}
		typ, user, pin, secret := f[0], f[1], f[2], f[3]
		period, digits, msg := parseOATHType(typ)
		if msg != "" {
			e.add(n, "%s", msg)
			continue
		}
		if !validUser(user) {
			e.add(n, "user name %q is not a valid login name", user)
			continue
		}
		if prev, dup := seen[user]; dup {
			e.add(n, "user %s already has a token on line %d; otpgate keeps one secret per user, so remove one of the lines", user, prev)
			continue
		}
		seen[user] = n
		if pin != "-" {
			e.add(n, "user %s: the PIN field must be \"-\" (no PIN); otpgate has no static password of its own, so remove the PIN and let pam_unix check the password", user)
			continue
		}
		key := parseHexSecret(e, n, user, secret)
		if key == nil {
			continue
		}
		if len(f) > 4 {
			if _, err := strconv.ParseUint(f[4], 10, 64); err != nil {
				e.add(n, "user %s: COUNTER field %q is not a number", user, f[4])
				clear(key)
				continue
			}
		}
		entries = append(entries, &Entry{
			User: user, Source: file + ":" + strconv.Itoa(n), Secret: key,
			Algorithm: "SHA1", Digits: digits, Period: period,
		})
	}
	if err := e.err(); err != nil {
		ClearSecrets(entries)
		return nil, err
	}
	if len(entries) == 0 {
		e.add(0, "no users found (every line is blank or a comment)")
		return nil, e.err()
	}
	return entries, nil
}

// parseOATHType returns the period and digits of a usersfile TYPE, or a
// message saying what is wrong with it.
func parseOATHType(typ string) (period, digits int, msg string) {
	parts := strings.Split(typ, "/")
	if parts[0] != "HOTP" {
		return 0, 0, "unknown token type " + strconv.Quote(typ) + " (expected HOTP/T30 or HOTP/T60, optionally with /6, /7 or /8)"
	}
	digits = 6
	switch {
	case len(parts) == 1 || parts[1] == "E":
		return 0, 0, "token type " + typ + " is counter-based (HOTP); otpgate supports only time-based codes (HOTP/T30, HOTP/T60): this user must enroll again with 'otpgate enroll'"
	case parts[1] == "T30":
		period = 30
	case parts[1] == "T60":
		period = 60
	default:
		return 0, 0, "unknown token type " + strconv.Quote(typ) + " (expected HOTP/T30 or HOTP/T60, optionally with /6, /7 or /8)"
	}
	switch {
	case len(parts) == 2:
	case len(parts) == 3 && (parts[2] == "6" || parts[2] == "7" || parts[2] == "8"):
		digits = int(parts[2][0] - '0')
	default:
		return 0, 0, "unknown token type " + strconv.Quote(typ) + " (the digits after the step must be /6, /7 or /8)"
	}
	return period, digits, ""
}

// parseHexSecret decodes a usersfile secret without echoing it.
func parseHexSecret(e *errs, line int, user, s string) []byte {
	if len(s)%2 != 0 {
		e.add(line, "user %s: the secret has an odd number (%d) of hex digits", user, len(s))
		return nil
	}
	key, err := hex.DecodeString(s)
	if err != nil {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				e.add(line, "user %s: the secret is not hex: character %d is not 0-9 or a-f", user, i+1)
				return nil
			}
		}
		e.add(line, "user %s: the secret is not hex", user)
		return nil
	}
	if len(key) < minSecretBytes {
		e.add(line, "user %s: the secret is %d bits; at least %d are needed", user, 8*len(key), 8*minSecretBytes)
		clear(key)
		return nil
	}
	return key
}
