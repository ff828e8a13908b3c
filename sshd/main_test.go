//go:build root

package sshd

import (
	"os"
	"testing"
)

// TestMain runs the helper modes when the test binary is re-executed as
// one (the server execs /proc/self/exe, which is the test binary here).
func TestMain(m *testing.M) {
	if code, ok := RunHelper(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
