package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoTestCode checks that the demo, a shipped binary, links neither
// the testing package nor the repository's test helpers (integration/...,
// internal/testutil), which would happen again if it imported the testing
// side of the containers instead of internal/container.
func TestLinksNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps (the go tool is needed to check the demo's dependencies): %v\n%s", err, out)
	}
	var bad []string
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" || strings.HasPrefix(pkg, "testing/") ||
			strings.HasPrefix(pkg, "github.com/otpgate/otpgate/integration") ||
			strings.HasPrefix(pkg, "github.com/otpgate/otpgate/internal/testutil") {
			bad = append(bad, pkg)
		}
	}
	if len(bad) > 0 {
		t.Errorf("otpgate-demo links test code: %s; import internal/container, not integration/container", strings.Join(bad, ", "))
	}
}
