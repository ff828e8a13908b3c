package main

import (
	"context"
	"strings"
	"testing"
)

// TestSetupUsage covers what otpgate setup refuses before looking at the
// system; integration/setup_test.go runs it for real in a container.
func TestSetupUsage(t *testing.T) {
	tests := []struct {
		name   string
		uid    int
		args   []string
		want   int
		stderr string
	}{
		{name: "no target", args: []string{"setup"}, want: exitUsage, stderr: "setup needs sshd|sudo"},
		{name: "unknown target", args: []string{"setup", "login"}, want: exitUsage, stderr: `setup configures sshd or sudo, not "login"`},
		{name: "two targets", args: []string{"setup", "sshd", "sudo"}, want: exitUsage, stderr: "too many arguments"},
		{name: "force without apply", args: []string{"setup", "sshd", "--force"}, want: exitUsage, stderr: "--force only makes sense with --apply"},
		{name: "apply needs root", uid: 1000, args: []string{"setup", "sudo", "--apply"}, want: exitPermission, stderr: "need root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _, errb := testApp(t, tt.uid, "")
			if got := a.run(context.Background(), tt.args); got != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", got, tt.want, errb)
			}
			if !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("stderr does not say %q:\n%s", tt.stderr, errb)
			}
		})
	}
	a, out, _ := testApp(t, 1000, "")
	if got := a.run(context.Background(), []string{"help", "setup"}); got != exitOK || !strings.Contains(out.String(), "otpgate setup sshd|sudo") {
		t.Errorf("help setup: exit %d\n%s", got, out)
	}
}
