package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoStore keeps the stores (bbolt, pgx) and test code out of the
// CLI every user runs: it reaches state only through otpgated, and copying
// the stores is otpgated -migrate-store.
func TestLinksNoStore(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"go.etcd.io/bbolt",
		"github.com/jackc/pgx",
		"github.com/otpgate/otpgate/daemon/store/bolt",
		"github.com/otpgate/otpgate/daemon/store/postgres",
		"github.com/otpgate/otpgate/internal/storemigrate",
		"testing",
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if pkg == f || strings.HasPrefix(pkg, f+"/") {
				t.Errorf("cmd/otpgate links %s", pkg)
			}
		}
	}
}
