//go:build root

package sshd

import (
	"errors"
	"fmt"
	"testing"

	"github.com/otpgate/otpgate/internal/accounts"
)

// useUsers makes the user database, for the test, hold only users (and no
// shadow entries).
func useUsers(t *testing.T, users ...accounts.User) {
	t.Helper()
	oldUser, oldShadow := lookupUser, lookupShadow
	t.Cleanup(func() { lookupUser, lookupShadow = oldUser, oldShadow })
	lookupUser = func(name string) (*accounts.User, error) {
		for _, u := range users {
			if u.Name == name {
				return &u, nil
			}
		}
		return nil, accounts.UnknownUserError(name)
	}
	lookupShadow = func(name string) (*accounts.Shadow, error) {
		return nil, fmt.Errorf("no shadow entry for %s: %w", name, accounts.ErrNotFound)
	}
}

func TestLookupAccount(t *testing.T) {
	tests := []struct {
		name    string
		user    *accounts.User // what the database answers; nil: no such user
		dbErr   error          // or this error
		want    *account
		wantErr error // nil: want; errNoUser, or any other error
	}{
		{name: "user", user: &accounts.User{Name: "alice", UID: 1000, GID: 100, Home: "/home/alice", Shell: "/bin/bash"},
			want: &account{name: "alice", uid: 1000, gid: 100, home: "/home/alice", shell: "/bin/bash"}},
		{name: "no shell: /bin/sh", user: &accounts.User{Name: "alice", UID: 1000, GID: 100, Home: "/home/alice"},
			want: &account{name: "alice", uid: 1000, gid: 100, home: "/home/alice", shell: "/bin/sh"}},
		{name: "no such user", wantErr: errNoUser},
		{name: "relative home", user: &accounts.User{Name: "alice", UID: 1000, Home: "home/alice"}, wantErr: errors.New("sshd: user alice has no absolute home directory (\"home/alice\")")},
		{name: "database unreachable: an error, not no such user", dbErr: errors.New("accounts: look up user alice: connection refused"),
			wantErr: errors.New("sshd: accounts: look up user alice: connection refused")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := lookupUser
			t.Cleanup(func() { lookupUser = old })
			lookupUser = func(name string) (*accounts.User, error) {
				switch {
				case tt.dbErr != nil:
					return nil, tt.dbErr
				case tt.user == nil:
					return nil, accounts.UnknownUserError(name)
				}
				return tt.user, nil
			}
			got, err := lookupAccount("alice")
			switch {
			case errors.Is(tt.wantErr, errNoUser):
				if !errors.Is(err, errNoUser) {
					t.Errorf("error %v, want errNoUser", err)
				}
			case tt.wantErr != nil:
				if err == nil || errors.Is(err, errNoUser) || err.Error() != tt.wantErr.Error() {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
			case err != nil || *got != *tt.want:
				t.Errorf("lookupAccount = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
