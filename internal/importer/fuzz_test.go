package importer

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/otp"
)

// addFiles adds every file matching glob as a seed.
func addFiles(f *testing.F, glob string, add func(data []byte)) {
	f.Helper()
	files, err := filepath.Glob(glob)
	if err != nil {
		f.Fatal(err)
	}
	if len(files) == 0 {
		f.Fatalf("no seed files match %s", glob)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		add(data)
	}
}

// checkEntry fails unless e is something otpgated's admin import would
// take: a valid user, a long enough secret and code parameters the otp
// package accepts.
func checkEntry(t *testing.T, e *Entry) {
	t.Helper()
	alg, err := otp.ParseAlgorithm(e.Algorithm)
	if err != nil {
		t.Fatalf("entry for %q: %v", e.User, err)
	}
	if err := (otp.Params{Algorithm: alg, Digits: e.Digits, Period: e.Period}).Validate(); err != nil {
		t.Fatalf("entry for %q: %v", e.User, err)
	}
	if !validUser(e.User) || len(e.Secret) < minSecretBytes {
		t.Fatalf("entry for %q with a %d-byte secret accepted", e.User, len(e.Secret))
	}
}

// base32Line is a line that can only be a google-authenticator secret.
var base32Line = regexp.MustCompile(`^[A-Z2-7]{16,}$`)

// noSecretIn fails if msg contains 8 consecutive characters of secret
// that do not also occur in what the caller named (file or user names
// may legitimately be quoted).
func noSecretIn(t *testing.T, msg, secret string, named ...string) {
	t.Helper()
	for i := 0; i+8 <= len(secret); i++ {
		part := secret[i : i+8]
		quoted := false
		for _, n := range named {
			quoted = quoted || strings.Contains(n, part)
		}
		if !quoted && strings.Contains(msg, part) {
			t.Fatalf("error message contains part of the secret (%q): %s", part, msg)
		}
	}
}

// FuzzParseGoogleAuthenticator: no panic, all or nothing, every accepted
// entry importable, and no part of a base32 secret on line 1 in an error.
func FuzzParseGoogleAuthenticator(f *testing.F) {
	addFiles(f, filepath.Join("testdata", "google_authenticator", "*"), func(data []byte) { f.Add("alice", data) })
	const file = "/home/fuzz/.google_authenticator"
	f.Fuzz(func(t *testing.T, user string, data []byte) {
		e, err := ParseGoogleAuthenticator(file, user, data)
		if err != nil {
			if e != nil {
				t.Fatalf("entry returned with an error: %v", err)
			}
			// Other lines may be quoted (a bad option value), even
			// when they share characters with the secret.
			first, rest, _ := strings.Cut(string(data), "\n")
			if first = strings.TrimSpace(first); base32Line.MatchString(first) {
				noSecretIn(t, err.Error(), first, file, user, rest)
			}
			return
		}
		if e == nil {
			t.Fatal("neither an entry nor an error")
		}
		if e.User != user {
			t.Fatalf("entry for %q, parsed for %q", e.User, user)
		}
		checkEntry(t, e)
	})
}

// FuzzParseOATH: no panic, all or nothing, every entry importable and no
// user twice, and no part of a hex secret field in an error.
func FuzzParseOATH(f *testing.F) {
	addFiles(f, filepath.Join("testdata", "oath", "*"), func(data []byte) { f.Add(data) })
	const file = "/etc/users.oath"
	hexField := regexp.MustCompile(`^[0-9a-fA-F]{20,}$`)
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseOATH(file, data)
		if err != nil {
			if entries != nil {
				t.Fatalf("entries returned with an error: %v", err)
			}
			// The error may quote any other field (a bad counter, say),
			// even one that happens to share digits with a secret.
			var secrets, others []string
			others = append(others, file)
			for _, line := range strings.Split(string(data), "\n") {
				for i, field := range strings.Fields(line) {
					if i == 3 && hexField.MatchString(field) {
						secrets = append(secrets, field)
					} else {
						others = append(others, field)
					}
				}
			}
			for _, secret := range secrets {
				noSecretIn(t, err.Error(), secret, others...)
			}
			return
		}
		seen := map[string]bool{}
		for _, e := range entries {
			checkEntry(t, e)
			if seen[e.User] {
				t.Fatalf("user %q imported twice", e.User)
			}
			seen[e.User] = true
		}
	})
}
