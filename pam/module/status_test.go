package main

import (
	"testing"

	"github.com/msteinert/pam/v2"
)

// TestFinalStatus: the codes that end a login are the application's own
// under sudo and sshd (by the program's path, symbolic links resolved),
// PAM's everywhere else.
func TestFinalStatus(t *testing.T) {
	tests := []struct {
		app                  string
		refused, unavailable pam.Error
	}{
		{"/usr/bin/sudo", pam.ErrCredInsufficient, pam.ErrCredInsufficient},
		{"/usr/bin/sudoedit", pam.ErrCredInsufficient, pam.ErrCredInsufficient},
		{"/usr/sbin/sshd", pam.ErrAcctExpired, pam.ErrAcctExpired},
		{"/usr/lib/openssh/sshd-session", pam.ErrAcctExpired, pam.ErrAcctExpired},
		{"/usr/bin/login", pam.ErrMaxtries, pam.ErrAuthinfoUnavail},
		{"/usr/bin/pamtester", pam.ErrMaxtries, pam.ErrAuthinfoUnavail},
		{"/opt/sshd/bin/sshd-wrapper", pam.ErrMaxtries, pam.ErrAuthinfoUnavail},
		{"/usr/local/bin/notsudo", pam.ErrMaxtries, pam.ErrAuthinfoUnavail},
		{"", pam.ErrMaxtries, pam.ErrAuthinfoUnavail},
	}
	for _, tt := range tests {
		if got := refusedStatus(tt.app); got != tt.refused {
			t.Errorf("refused under %q: %v, want %v", tt.app, got, tt.refused)
		}
		if got := unavailableStatus(tt.app); got != tt.unavailable {
			t.Errorf("unavailable under %q: %v, want %v", tt.app, got, tt.unavailable)
		}
	}
}
