package importer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseOATH parses a pam_oath usersfile held in memory (file names it in
// errors): ScanOATH's checks, all or nothing. The caller clears the
// entries' secrets.
func ParseOATH(file string, data []byte) ([]*Entry, error) {
	var entries []*Entry
	e := &errs{file: file}
	_, err := ScanOATH(file, bytes.NewReader(data), func(ent *Entry) error {
		cp := *ent
		cp.Secret = bytes.Clone(ent.Secret)
		entries = append(entries, &cp)
		return nil
	}, func(le *LineError) { e.list = append(e.list, le) })
	if err == nil {
		err = e.err()
	}
	if err != nil {
		ClearSecrets(entries)
		return nil, err
	}
	return entries, nil
}

// ScanOATH reads a pam_oath usersfile from r (file names it in errors),
// a line at a time, in memory that does not grow with the file. Each
// non-comment line is
//
//	TYPE USER PIN HEXSECRET [COUNTER [LASTOTP [TIMESTAMP]]]
//
// Only time-based types are imported: HOTP/T30 and HOTP/T60, optionally
// with /6, /7 or /8 digits. Counter-based lines (HOTP, HOTP/E...) are
// refused, and so is any PIN other than "-": otpgate has no static
// password of its own. A user may appear once: otpgate keeps one secret per
// user. A line may be at most MaxLineLength bytes long.
//
// ScanOATH calls entry for every valid line and problem for every problem,
// in the order of the lines; a file without any user is a problem too. The
// entry's secret is cleared when entry returns. It returns the number of
// valid lines, and stops early only on a read error or an error from entry.
func ScanOATH(file string, r io.Reader, entry func(*Entry) error, problem func(*LineError)) (int, error) {
	return scanOATH(file, r, map[string]int{}, entry, problem)
}

// scanOATH is ScanOATH; seen maps the users of the lines read to their
// line numbers, to refuse a second line for one user; nil skips that check
// (and the memory it takes) when the bytes are known to be those of a
// file checked before.
func scanOATH(file string, r io.Reader, seen map[string]int, entry func(*Entry) error, problem func(*LineError)) (int, error) {
	lr := newLineReader(r)
	defer lr.close()
	var valid, problems int
	add := func(line int, format string, args ...any) {
		problems++
		problem(&LineError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	for {
		line, tooLong, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return valid, fmt.Errorf("read %s: %w", file, err)
		}
		n := lr.line
		if tooLong {
			add(n, "the line is longer than %d bytes: is this a pam_oath usersfile?", MaxLineLength)
			continue
		}
		ent := parseOATHLine(file, n, line, seen, add)
		if ent == nil {
			continue
		}
		valid++
		err = entry(ent)
		clear(ent.Secret)
		if err != nil {
			return valid, err
		}
	}
	if valid == 0 && problems == 0 {
		add(0, "no users found (every line is blank or a comment)")
	}
	return valid, nil
}

// parseOATHLine checks line n of a usersfile and returns its entry, or nil
// for a blank line, a comment or a problem (reported with add). seen maps
// the users of the lines before to their line numbers. The secret field is
// read from line in place: it is never copied into a string.
func parseOATHLine(file string, n int, line []byte, seen map[string]int, add func(int, string, ...any)) *Entry {
	line = bytes.TrimRight(line, "\r")
	if bad := firstNonPrintableBytes(line); bad >= 0 {
		add(n, "unexpected control or non-ASCII byte at column %d", bad+1)
		return nil
	}
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] == '#' {
		return nil
	}
	f := bytes.Fields(trimmed)
	if len(f) < 4 || len(f) > 7 {
		add(n, "expected TYPE USER PIN HEXSECRET [COUNTER [LASTOTP [TIMESTAMP]]], found %d fields", len(f))
		return nil
	}
	typ, user := string(f[0]), string(f[1])
	period, digits, msg := parseOATHType(typ)
	if msg != "" {
		add(n, "%s", msg)
		return nil
	}
	if !validUser(user) {
		add(n, "user name %q is not a valid login name", user)
		return nil
	}
	if seen != nil {
		if prev, dup := seen[user]; dup {
			add(n, "user %s already has a token on line %d; otpgate keeps one secret per user, so remove one of the lines", user, prev)
			return nil
		}
		seen[user] = n
	}
	if string(f[2]) != "-" {
		add(n, "user %s: the PIN field must be \"-\" (no PIN); otpgate has no static password of its own, so remove the PIN and let pam_unix check the password", user)
		return nil
	}
	key := parseHexSecret(add, n, user, f[3])
	if key == nil {
		return nil
	}
	if len(f) > 4 {
		if _, err := strconv.ParseUint(string(f[4]), 10, 64); err != nil {
			add(n, "user %s: COUNTER field %q is not a number", user, f[4])
			clear(key)
			return nil
		}
	}
	return &Entry{
		User: user, Source: file + ":" + strconv.Itoa(n), Secret: key,
		Algorithm: "SHA1", Digits: digits, Period: period,
	}
}

// Usersfile is a pam_oath usersfile of any size, open for an import in two
// passes: Check reads and checks all of it, then Entries reads it again,
// verifying block by block that it is what Check saw. Memory does not
// grow with the file's size, apart from the user names kept to refuse a
// second line for one user (and 32 bytes per 64 KiB).
type Usersfile struct {
	path string
	tp   twoPassFile
}

// OpenUsersfile opens the usersfile path (see OpenAdminFile).
func OpenUsersfile(path string) (*Usersfile, error) {
	f, err := OpenAdminFile(path)
	if err != nil {
		return nil, err
	}
	return &Usersfile{path: path, tp: twoPassFile{f: f}}, nil
}

// Close closes the file.
func (u *Usersfile) Close() error { return u.tp.f.Close() }

// Check reads the whole file with ScanOATH's checks, calling entry and
// problem as ScanOATH does, and returns the number of valid lines. A file
// that changes while it is read is an error matching ErrChanged.
func (u *Usersfile) Check(entry func(*Entry) error, problem func(*LineError)) (int, error) {
	var n int
	err := u.tp.firstPass(func(r io.Reader) error {
		var err error
		n, err = ScanOATH(u.path, r, entry, problem)
		return err
	})
	return n, err
}

// Entries reads the file again after a Check that found no problem and
// calls entry for each user, secret included (cleared when entry
// returns). It fails with an error matching ErrChanged before reading any
// line that differs from what Check read: every entry it passes on was
// checked.
func (u *Usersfile) Entries(entry func(*Entry) error) error {
	return u.tp.secondPass(func(r io.Reader) error {
		// Check saw the same bytes and found no problem: one now is a
		// bug, and stops the import.
		// The block check guarantees those bytes, so no map of users is
		// needed to refuse a second line for one.
		var bad *LineError
		_, err := scanOATH(u.path, r, nil, func(e *Entry) error {
			if bad != nil {
				return bad
			}
			return entry(e)
		}, func(le *LineError) {
			if bad == nil {
				bad = le
			}
		})
		if err == nil && bad != nil {
			err = bad
		}
		return err
	})
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
func parseHexSecret(add func(int, string, ...any), line int, user string, s []byte) []byte {
	if len(s)%2 != 0 {
		add(line, "user %s: the secret has an odd number (%d) of hex digits", user, len(s))
		return nil
	}
	key := make([]byte, len(s)/2)
	if _, err := hex.Decode(key, s); err != nil {
		clear(key)
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				add(line, "user %s: the secret is not hex: character %d is not 0-9 or a-f", user, i+1)
				return nil
			}
		}
		add(line, "user %s: the secret is not hex", user)
		return nil
	}
	if len(key) < minSecretBytes {
		add(line, "user %s: the secret is %d bits; at least %d are needed", user, 8*len(key), 8*minSecretBytes)
		clear(key)
		return nil
	}
	return key
}
