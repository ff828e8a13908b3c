//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/integration/container"
)

// TestArchitectureMapIsTrue keeps docs/ARCHITECTURE.md true: every path it
// names in backquotes exists, and every package of the product (not the
// test and benchmark harness) has a row in its table of owners.
func TestArchitectureMapIsTrue(t *testing.T) {
	root := container.RepoRoot()
	data, err := os.ReadFile(filepath.Join(root, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	named := regexp.MustCompile("`((?:cmd|daemon|internal|pam|sshd|otp|integration|bench)(?:/[A-Za-z0-9_.*-]+)*)`")
	for _, m := range named.FindAllStringSubmatch(doc, -1) {
		p := m[1]
		if strings.Contains(p, "*") {
			continue // a pattern such as cmd/*
		}
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("docs/ARCHITECTURE.md names %s, which does not exist", p)
		}
	}
	list := exec.Command("go", "list", "-f", "{{.ImportPath}}", "./...")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/otpgate/otpgate/"
	for _, pkg := range strings.Fields(string(out)) {
		rel := strings.TrimPrefix(pkg, module)
		switch {
		case strings.HasPrefix(rel, "cmd/"), strings.HasPrefix(rel, "bench"), strings.HasPrefix(rel, "integration"),
			strings.HasSuffix(rel, "test"), rel == "daemon/store/bolt", rel == "daemon/store/postgres":
			continue // covered by the cmd/*, daemon/store and test rows
		}
		if !strings.Contains(doc, "| `"+rel+"`") {
			t.Errorf("package %s has no row in docs/ARCHITECTURE.md's table of owners", rel)
		}
	}
}
