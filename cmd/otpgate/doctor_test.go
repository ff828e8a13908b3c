package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/internal/doctor"
)

// TestDoctorCommand covers the command line of otpgate doctor; the checks
// themselves are tested in internal/doctor and, against real broken
// configurations, in integration/doctor_test.go.
func TestDoctorCommand(t *testing.T) {
	tests := []struct {
		name   string
		uid    int
		args   []string
		want   int
		stdout string
		stderr string
	}{
		{name: "needs root", uid: 1000, args: []string{"doctor"}, want: exitPermission, stderr: "need root"},
		{name: "no arguments", uid: 0, args: []string{"doctor", "sshd"}, want: exitUsage, stderr: "doctor takes no arguments"},
		{name: "unknown flag", uid: 0, args: []string{"doctor", "--yaml"}, want: exitUsage, stderr: "flag provided but not defined: -yaml"},
		{name: "help", uid: 1000, args: []string{"help", "doctor"}, want: exitOK, stdout: "Usage: otpgate doctor [--json]"},
		{name: "-h", uid: 1000, args: []string{"doctor", "-h"}, want: exitOK, stdout: "Usage: otpgate doctor [--json]"},
		{name: "listed in the usage", uid: 1000, args: []string{"help"}, want: exitOK, stdout: "doctor [--json]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, out, errb := testApp(t, tt.uid, "")
			if got := a.run(context.Background(), tt.args); got != tt.want {
				t.Errorf("exit %d, want %d; stderr %q", got, tt.want, errb.String())
			}
			if !strings.Contains(out.String(), tt.stdout) || !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("stdout %q (want %q), stderr %q (want %q)", out.String(), tt.stdout, errb.String(), tt.stderr)
			}
		})
	}
}

// TestDoctorNoDaemon runs the real checks against this machine with the
// socket pointing where no daemon listens: the JSON report must say so and
// the exit code must be 1, with nothing on stderr.
func TestDoctorNoDaemon(t *testing.T) {
	a, out, errb := testApp(t, 0, "")
	if got := a.run(context.Background(), []string{"doctor", "--json"}); got != exitFailure {
		t.Errorf("exit %d, want %d", got, exitFailure)
	}
	var r doctor.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("not a JSON report: %v\n%s", err, out.String())
	}
	if !r.Has("daemon-down") || r.Errors == 0 {
		t.Errorf("no daemon-down error in %+v", r)
	}
	if errb.Len() != 0 {
		t.Errorf("stderr: %q", errb.String())
	}
}
