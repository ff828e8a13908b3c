package importer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"reflect"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/accounts"
)

// fakeUsers is a user database for userDB: lookups by name, counted, and
// an enumeration.
type fakeUsers struct {
	known      map[string]*accounts.User
	enumerated []accounts.User // what the enumeration lists
	enumErr    error
	lookups    []string
	enums      int
}

func (f *fakeUsers) enumerate(_ context.Context, account func(*accounts.User)) error {
	f.enums++
	return enumerateList(f.enumerated, account, f.enumErr)
}

// enumerateList lists users, then returns err.
func enumerateList(users []accounts.User, account func(*accounts.User), err error) error {
	for _, u := range users {
		account(&u)
	}
	return err
}

func (f *fakeUsers) lookup(name string) (*accounts.User, error) {
	f.lookups = append(f.lookups, name)
	if u, ok := f.known[name]; ok {
		return u, nil
	}
	return nil, accounts.UnknownUserError(name)
}

// names returns n user names bu000000….
func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("bu%06d", i)
	}
	return out
}

// passwdEntries are users of the names, uid 100000 on.
func passwdEntries(names []string) []accounts.User {
	out := make([]accounts.User, len(names))
	for i, n := range names {
		out[i] = accounts.User{Name: n, UID: uint32(100000 + i), GID: uint32(100000 + i), Home: "/home/" + n, Shell: "/bin/sh"}
	}
	return out
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
				return &fakeUsers{known: map[string]*accounts.User{"alice": {Name: "alice", UID: 1000}}}
			},
			ask:     []string{"alice", "mallory"},
			lookups: []string{"alice", "mallory"},
			unknown: []string{"mallory"},
		},
		{
			name:  "many names: one enumeration and no lookup",
			users: func() *fakeUsers { return &fakeUsers{enumerated: passwdEntries(many)} },
			ask:   many,
			enums: 1,
		},
		{
			name: "a name the enumeration leaves out is looked up (sssd without enumerate)",
			users: func() *fakeUsers {
				return &fakeUsers{
					enumerated: passwdEntries(many[1:]),
					known:      map[string]*accounts.User{many[0]: {Name: many[0], UID: 5000, Home: "/home/ldap"}},
				}
			},
			ask:     many,
			enums:   1,
			lookups: many[:1],
		},
		{
			name:    "an unknown name is looked up, and refused",
			users:   func() *fakeUsers { return &fakeUsers{enumerated: passwdEntries(many)} },
			ask:     append([]string{"mallory"}, many...),
			enums:   1,
			lookups: []string{"mallory"},
			unknown: []string{"mallory"},
		},
		{
			name: "an unknown number of names, few: one lookup each",
			users: func() *fakeUsers {
				return &fakeUsers{known: map[string]*accounts.User{"alice": {Name: "alice", UID: 1000}}, enumerated: passwdEntries(many)}
			},
			hint:    -1,
			ask:     []string{"alice", "mallory"},
			lookups: []string{"alice", "mallory"},
			unknown: []string{"mallory"},
		},
		{
			name: "an unknown number of names, many: one enumeration from the bulkLookupMin-th on",
			users: func() *fakeUsers {
				f := &fakeUsers{enumerated: passwdEntries(more), known: map[string]*accounts.User{}}
				for _, n := range more {
					f.known[n] = &accounts.User{Name: n}
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
				return &fakeUsers{enumErr: errors.New("exit status 2"), enumerated: passwdEntries(many)}
			},
			ask:     many,
			enums:   1,
			lookups: many,
			unknown: many,
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
				if u.Name != n {
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
	users := []accounts.User{
		{Name: "root", Home: "/root"},
		{Name: "alice", UID: 1000, Home: "/home/alice"},
		{Name: "alice", UID: 2000, Home: "/srv/ldap/alice"}, // a later NSS source: getpwnam answers the first
	}
	got, err := listAccounts(context.Background(), func(_ context.Context, account func(*accounts.User)) error {
		return enumerateList(users, account, nil)
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

// TestNSSPasswd enumerates this machine's user database: root is in
// every one. A cancelled context ends the enumeration with its error.
func TestNSSPasswd(t *testing.T) {
	listed, err := listAccounts(context.Background(), nssPasswd)
	if err != nil {
		t.Fatalf("enumerate the user database: %v", err)
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
		t.Errorf("root's home %q from NSS enumeration, %q from user.Lookup", u.home, want.HomeDir)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := listAccounts(ctx, nssPasswd); !errors.Is(err, context.Canceled) {
		t.Errorf("with a cancelled context: %v", err)
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
			src, err := NewGoogleAuthenticatorSource([]string{"alice"}, false)
			if err != nil {
				t.Fatal(err)
			}
			s := src.(*gaSource)
			acct := Account{Name: "alice", UID: os.Getuid(), Home: home}
			e, list := s.read(acct)
			if e == nil {
				t.Fatalf("read: %v", list)
			}
			s.found = []gaFound{{acct: acct, sum: e.Fingerprint(s.key)}}
			write(tt.now)
			var got []string
			err = s.Load(context.Background(), func(e *Entry) error {
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

// TestNewGoogleAuthenticatorSourceWantsOneSelection: the users to import
// are either named or all of them; both or neither is refused rather than
// read as one or the other.
func TestNewGoogleAuthenticatorSourceWantsOneSelection(t *testing.T) {
	tests := []struct {
		name     string
		users    []string
		allUsers bool
		ok       bool
	}{
		{"named users", []string{"alice"}, false, true},
		{"all users", nil, true, true},
		{"neither", nil, false, false},
		{"both", []string{"alice"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := NewGoogleAuthenticatorSource(tt.users, tt.allUsers)
			if tt.ok != (err == nil) || tt.ok != (src != nil) {
				t.Errorf("NewGoogleAuthenticatorSource(%q, %v): source %v, error %v; want a source %v", tt.users, tt.allUsers, src != nil, err, tt.ok)
			}
		})
	}
}
