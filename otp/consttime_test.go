package otp_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The otp package's import, global-state and package-comment rules are
// enforced by golangci-lint (.golangci.yml: depguard, gochecknoglobals,
// gochecknoinits, godoclint), as are the banned early-exit comparison
// functions (forbidigo). What no configured linter can say is "no == on a
// value named like a code or a secret"; this test says it.

// parsePackage parses the non-test Go files of this package.
func parsePackage(t *testing.T) (*token.FileSet, map[string]*ast.File) {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = f
	}
	if len(files) < 3 {
		t.Fatalf("found only %d source files", len(files))
	}
	return fset, files
}

// parseSnippet parses src as the file name, for the checker's own test.
func parseSnippet(t *testing.T, src string) (*token.FileSet, map[string]*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "snippet.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	return fset, map[string]*ast.File{"snippet.go": f}
}

// secretName matches identifiers that hold codes, secrets or MACs (error
// sentinels such as ErrShortSecret are exempt).
var secretName = regexp.MustCompile(`(?i)code|secret|want|got|sum|mac|digest|otp`)

// variableTimeComparisons lists == and != on operands named like codes or
// secrets. len(x) is public and allowed.
func variableTimeComparisons(fset *token.FileSet, files map[string]*ast.File) []string {
	var found []string
	var root func(e ast.Expr) string
	root = func(e ast.Expr) string {
		switch e := e.(type) {
		case *ast.Ident:
			return e.Name
		case *ast.SelectorExpr:
			return e.Sel.Name
		case *ast.IndexExpr:
			return root(e.X)
		case *ast.SliceExpr:
			return root(e.X)
		case *ast.StarExpr:
			return root(e.X)
		case *ast.ParenExpr:
			return root(e.X)
		case *ast.CallExpr: // string(b), []byte(s): conversions of a secret
			if len(e.Args) == 1 {
				if id, ok := e.Fun.(*ast.Ident); ok && id.Name != "len" && id.Name != "cap" {
					return root(e.Args[0])
				}
			}
		}
		return ""
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			b, ok := n.(*ast.BinaryExpr)
			if !ok || (b.Op != token.EQL && b.Op != token.NEQ) {
				return true
			}
			for _, side := range []ast.Expr{b.X, b.Y} {
				if name := root(side); secretName.MatchString(name) && !strings.HasPrefix(name, "Err") {
					found = append(found, fmt.Sprintf("%s: %s on %s", fset.Position(b.Pos()), b.Op, name))
				}
			}
			return true
		})
	}
	slices.Sort(found)
	return found
}

func TestCodesAndSecretsAreComparedInConstantTime(t *testing.T) {
	t.Run("the checker finds == and != on codes and secrets", func(t *testing.T) {
		fset, files := parseSnippet(t, `package otp
func f(code, want string, secret, sum []byte, k Key) bool {
	if len(code) != 6 { return false }
	if string(sum) == "x" { return true }
	if k.Secret[0] != 0 { return true }
	return code == want
}
`)
		got := variableTimeComparisons(fset, files)
		joined := strings.Join(got, "\n")
		for _, want := range []string{"== on code", "== on want", "== on sum", "!= on Secret"} {
			if !strings.Contains(joined, want) {
				t.Errorf("checker missed %q; it found:\n%s", want, joined)
			}
		}
		if strings.Contains(joined, "snippet.go:3:") || len(got) != 4 {
			t.Errorf("checker found %d comparisons, want 4 (len(code) is allowed):\n%s", len(got), joined)
		}
	})
	t.Run("the otp package has no == or != on codes and secrets", func(t *testing.T) {
		if found := variableTimeComparisons(parsePackage(t)); len(found) > 0 {
			t.Errorf("variable-time comparisons:\n%s", strings.Join(found, "\n"))
		}
	})
}
