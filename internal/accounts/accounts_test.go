package accounts

import (
	"errors"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The tests read the machine's own databases, whose root entries every
// Debian system has; a user only another NSS source knows is tested in
// the integration suite (TestSSHDLoginNSSOnlyUser).

func TestLookupUserAndUID(t *testing.T) {
	root, err := LookupUser("root")
	if err != nil {
		t.Fatalf("LookupUser(root): %v", err)
	}
	want, err := user.Lookup("root")
	if err != nil {
		t.Fatal(err)
	}
	if root.UID != 0 || root.GID != 0 || root.Home != want.HomeDir || root.Shell == "" {
		t.Errorf("root = %+v; os/user says home %s", root, want.HomeDir)
	}
	byUID, err := LookupUID(0)
	if err != nil || *byUID != *root {
		t.Errorf("LookupUID(0) = %+v, %v; want %+v", byUID, err, root)
	}
}

func TestLookupUnknown(t *testing.T) {
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"user", func() error { _, err := LookupUser("no-such-user-otpgate"); return err }, `accounts: no such user "no-such-user-otpgate"`},
		{"empty name", func() error { _, err := LookupUser(""); return err }, `accounts: no such user ""`},
		{"name with NUL", func() error { _, err := LookupUser("root\x00x"); return err }, `accounts: no such user "root\x00x"`},
		{"uid", func() error { _, err := LookupUID(4_000_000_001); return err }, "accounts: no user with uid 4000000001"},
		{"gid", func() error { _, err := LookupGID(4_000_000_001); return err }, "accounts: no group with gid 4000000001"},
		{"group", func() error { _, err := LookupGroup("no-such-group-otpgate"); return err }, `accounts: no such group "no-such-group-otpgate": accounts: no such entry`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, ErrNotFound) || err.Error() != tt.want {
				t.Errorf("error %v; want %q, wrapping ErrNotFound", err, tt.want)
			}
		})
	}
}

func TestGroups(t *testing.T) {
	g, err := LookupGID(0)
	if err != nil || g.Name != "root" {
		t.Fatalf("LookupGID(0) = %+v, %v", g, err)
	}
	byName, err := LookupGroup("root")
	if err != nil || byName.GID != 0 {
		t.Errorf("LookupGroup(root) = %+v, %v", byName, err)
	}
	// The primary group comes first, once, and the supplementary groups
	// are those os/user (getgrouplist too) reports.
	root, err := LookupUser("root")
	if err != nil {
		t.Fatal(err)
	}
	gids, err := GroupIDs(root)
	if err != nil || len(gids) == 0 || gids[0] != 0 || slices.Contains(gids[1:], 0) {
		t.Fatalf("GroupIDs(root) = %v, %v", gids, err)
	}
	u, _ := user.Lookup("root")
	ids, err := u.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		n, _ := strconv.ParseUint(id, 10, 32)
		if !slices.Contains(gids, uint32(n)) {
			t.Errorf("GroupIDs(root) = %v lacks %s", gids, id)
		}
	}
}

// TestGroupIDsPrimaryFirst: the primary gid comes first and once, even
// one that no group has.
func TestGroupIDsPrimaryFirst(t *testing.T) {
	if got := primaryFirst([]uint32{5, 7, 5, 9}, 5); !slices.Equal(got, []uint32{5, 7, 9}) {
		t.Errorf("primaryFirst = %v", got)
	}
	gids, err := GroupIDs(&User{Name: "root", GID: 4_000_000_002})
	if err != nil || gids[0] != 4_000_000_002 {
		t.Errorf("GroupIDs = %v, %v", gids, err)
	}
}

func TestEachUser(t *testing.T) {
	var names []string
	if err := EachUser(func(u *User) error { names = append(names, u.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	// Every files entry is listed (other sources may add more).
	for _, l := range strings.Split(string(passwd), "\n") {
		if n, _, ok := strings.Cut(l, ":"); ok && !slices.Contains(names, n) {
			t.Errorf("EachUser did not list %s", n)
		}
	}
	// ErrStop ends it early, without an error; any other error is returned.
	n := 0
	if err := EachUser(func(*User) error { n++; return ErrStop }); err != nil || n != 1 {
		t.Errorf("with ErrStop: %d calls, %v", n, err)
	}
	boom := errors.New("boom")
	if err := EachUser(func(*User) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("error %v, want boom", err)
	}
	// A second enumeration starts from the beginning again.
	var again []string
	if err := EachUser(func(u *User) error { again = append(again, u.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, again) {
		t.Errorf("second listing %v, first %v", again, names)
	}
}

func TestEachGroup(t *testing.T) {
	found := false
	err := EachGroup(func(g *Group) error {
		if g.GID == 0 {
			found = g.Name == "root"
			return ErrStop
		}
		return nil
	})
	if err != nil || !found {
		t.Errorf("EachGroup: root found %v, %v", found, err)
	}
}
