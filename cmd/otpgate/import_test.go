package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"reflect"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/importer"
)

// fakeUsers is a user database for userDB: lookups by name, counted, and
// an enumeration.
type fakeUsers struct {
	known      map[string]*user.User
	enumerated string // getent passwd's output
	enumErr    error
	lookups    []string
	enums      int
}

func (f *fakeUsers) enumerate(_ context.Context, account func(importer.Account)) error {
	f.enums++
	return enumerateText(f.enumerated, account, f.enumErr)
}

// enumerateText lists the accounts of passwd-format text, then returns err.
func enumerateText(text string, account func(importer.Account), err error) error {
	importer.ScanPasswd("getent passwd", strings.NewReader(text), func(a importer.Account) error {
		account(a)
		return nil
	}, func(*importer.LineError) {})
	return err
}

func (f *fakeUsers) lookup(name string) (*user.User, error) {
	f.lookups = append(f.lookups, name)
	if u, ok := f.known[name]; ok {
		return u, nil
	}
	return nil, user.UnknownUserError(name)
}

// names returns n user names bu000000….
func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("bu%06d", i)
	}
	return out
}

// passwdLines is getent passwd's output for the names, uid 100000 on.
func passwdLines(names []string) string {
	var b strings.Builder
	for i, n := range names {
		fmt.Fprintf(&b, "%s:x:%d:%d::/home/%s:/bin/sh\n", n, 100000+i, 100000+i, n)
	}
	return b.String()
}

func TestUserDB(t *testing.T) {
	many := names(bulkLookupMin)
	more := names(3 * bulkLookupMin)
	tests := []struct {
		name  string
		users func() *fakeUsers
		// hint is the number of names told to newUserDB; len(ask) if 0,
		// -1 for none (names read from a file a line at a time).
		hint int
		ask  []string
		// enums and lookups are the calls the database should answer.
		enums   int
		lookups []string
		// unknown are the names that must resolve to an error.
		unknown []string
	}{
		{
			name: "few names: one lookup each, no enumeration",
			users: func() *fakeUsers {
				return &fakeUsers{known: map[string]*user.User{"alice": {Username: "alice", Uid: "1000"}}}
			},
			ask:     []string{"alice", "mallory"},
			lookups: []string{"alice", "mallory"},
			unknown: []string{"mallory"},
		},
		{
			name:  "many names: one enumeration and no lookup",
			users: func() *fakeUsers { return &fakeUsers{enumerated: passwdLines(many)} },
			ask:   many,
			enums: 1,
		},
		{
			name: "a name the enumeration leaves out is looked up (sssd without enumerate)",
			users: func() *fakeUsers {
				return &fakeUsers{
					enumerated: passwdLines(many[1:]),
					known:      map[string]*user.User{many[0]: {Username: many[0], Uid: "5000", HomeDir: "/home/ldap"}},
				}
			},
			ask:     many,
			enums:   1,
			lookups: many[:1],
		},
		{
			name:    "an unknown name is looked up, and refused",
			users:   func() *fakeUsers { return &fakeUsers{enumerated: passwdLines(many)} },
			ask:     append([]string{"mallory"}, many...),
			enums:   1,
			lookups: []string{"mallory"},
			unknown: []string{"mallory"},
		},
		{
			name: "an unknown number of names, few: one lookup each",
			users: func() *fakeUsers {
				return &fakeUsers{known: map[string]*user.User{"alice": {Username: "alice", Uid: "1000"}}, enumerated: passwdLines(many)}
			},
			hint:    -1,
			ask:     []string{"alice", "mallory"},
			lookups: []string{"alice", "mallory"},
			unknown: []string{"mallory"},
		},
		{
			name: "an unknown number of names, many: one enumeration from the bulkLookupMin-th on",
			users: func() *fakeUsers {
				f := &fakeUsers{enumerated: passwdLines(more), known: map[string]*user.User{}}
				for _, n := range more {
					f.known[n] = &user.User{Username: n}
				}
				return f
			},
			hint:    -1,
			ask:     more,
			enums:   1,
			lookups: more[:bulkLookupMin-1],
		},
		{
			name: "a failed enumeration: one lookup each",
			users: func() *fakeUsers {
				return &fakeUsers{enumErr: errors.New("exit status 2"), enumerated: passwdLines(many)}
			},
			ask:     many,
			enums:   1,
			lookups: many,
			unknown: many,
		},
		{
			name: "a line getent lists badly is looked up (the import's own message then)",
			users: func() *fakeUsers {
				return &fakeUsers{
					enumerated: strings.Replace(passwdLines(many), many[3]+":x:100003:", many[3]+":x:abc:", 1),
					known:      map[string]*user.User{many[3]: {Username: many[3], Uid: "abc"}},
				}
			},
			ask:     many,
			enums:   1,
			lookups: many[3:4],
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.users()
			hint := tt.hint
			switch hint {
			case 0:
				hint = len(tt.ask)
			case -1:
				hint = 0
			}
			db := newUserDB(context.Background(), hint, f.enumerate, f.lookup)
			var unknown []string
			for _, n := range tt.ask {
				u, err := db.get(n)
				if err != nil {
					unknown = append(unknown, n)
					continue
				}
				if u.Username != n {
					t.Errorf("get(%q) = %+v", n, u)
				}
			}
			if f.enums != tt.enums {
				t.Errorf("%d enumerations, want %d", f.enums, tt.enums)
			}
			if !reflect.DeepEqual(f.lookups, tt.lookups) {
				t.Errorf("lookups %v, want %v", f.lookups, tt.lookups)
			}
			if !reflect.DeepEqual(unknown, tt.unknown) {
				t.Errorf("unknown %v, want %v", unknown, tt.unknown)
			}
		})
	}
}

func TestListAccounts(t *testing.T) {
	data := "root:x:0:0:root:/root:/bin/bash\n" +
		"alice:x:1000:1000::/home/alice:/bin/sh\n" +
		"alice:x:2000:2000::/srv/ldap/alice:/bin/sh\n" + // a later NSS source: getpwnam answers the first
		"+nis::::::\n" +
		"broken line\n"
	got, err := listAccounts(context.Background(), func(_ context.Context, account func(importer.Account)) error {
		return enumerateText(data, account, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]listedAccount{
		"root":  {uid: 0, home: "/root"},
		"alice": {uid: 1000, home: "/home/alice"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestGetentPasswd enumerates this machine's user database: root is in
// every one.
func TestGetentPasswd(t *testing.T) {
	listed, err := listAccounts(context.Background(), getentPasswd)
	if err != nil {
		t.Fatalf("getent passwd (libc-bin, on every Debian system): %v", err)
	}
	u, ok := listed["root"]
	if !ok || u.uid != 0 {
		t.Errorf("root: %+v, %v", u, ok)
	}
	want, err := user.Lookup("root")
	if err != nil {
		t.Fatal(err)
	}
	if u.home != want.HomeDir {
		t.Errorf("root's home %q from getent, %q from user.Lookup", u.home, want.HomeDir)
	}
}

// TestGASourceLoadRefusesAChangedFile: the import pass re-reads each
// ~/.google_authenticator and goes on only if what it would import is what
// was checked. Login state that google-authenticator rewrites (the
// DISALLOW_REUSE timestamps) may change meanwhile; the secret and the
// scratch codes may not.
func TestGASourceLoadRefusesAChangedFile(t *testing.T) {
	const checked = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n12345678\n87654321\n"
	tests := []struct {
		name, now string
		changed   bool
	}{
		{"unchanged", checked, false},
		{"a login recorded", strings.Replace(checked, "DISALLOW_REUSE", "DISALLOW_REUSE 59000000", 1), false},
		{"a scratch code used", strings.Replace(checked, "87654321\n", "", 1), true},
		{"another secret", strings.Replace(checked, "JBSWY3DP", "GEZDGNBV", 1), true},
		{"gone", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			file := home + "/.google_authenticator"
			write := func(data string) {
				os.Remove(file)
				if data != "" {
					if err := os.WriteFile(file, []byte(data), 0o400); err != nil {
						t.Fatal(err)
					}
				}
			}
			write(checked)
			s, err := newGASource(importOpts{users: []string{"alice"}})
			if err != nil {
				t.Fatal(err)
			}
			acct := importer.Account{Name: "alice", UID: os.Getuid(), Home: home}
			e, list := s.read(acct)
			if e == nil {
				t.Fatalf("read: %v", list)
			}
			s.found = []gaFound{{acct: acct, sum: e.Fingerprint(s.key)}}
			write(tt.now)
			var got []string
			err = s.load(context.Background(), func(e *importer.Entry) error {
				got = append(got, e.User)
				return nil
			})
			if !tt.changed {
				if err != nil || len(got) != 1 {
					t.Fatalf("load: %v, %v", got, err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), file+" changed after it was checked") || len(got) != 0 {
				t.Fatalf("load: %v, %v; want nothing and %q", got, err, file+" changed after it was checked")
			}
		})
	}
}
