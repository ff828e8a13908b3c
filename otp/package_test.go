package otp_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

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
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
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

// parseSnippet parses src as the file name, for the checkers' own tests.
func parseSnippet(t *testing.T, src string) (*token.FileSet, map[string]*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "snippet.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	return fset, map[string]*ast.File{"snippet.go": f}
}

func TestPackageDocIsInDocGo(t *testing.T) {
	_, files := parsePackage(t)
	for name, f := range files {
		doc := f.Doc.Text()
		switch {
		case name == "doc.go" && !strings.HasPrefix(doc, "Package otp "):
			t.Errorf("doc.go's package comment is %q, want one starting \"Package otp \"", doc)
		case name != "doc.go" && doc != "":
			t.Errorf("%s has a package comment too; keep it in doc.go only", name)
		}
	}
	if _, ok := files["doc.go"]; !ok {
		t.Error("doc.go is missing")
	}
}

// allowedImports are the standard packages the pure otp package may use:
// hashing, encoding, parsing and crypto/rand for GenerateSecret; no os, io,
// log, net (other than net/url), syscall or unsafe.
var allowedImports = []string{
	"crypto/hmac", "crypto/rand", "crypto/sha1", "crypto/sha256", "crypto/sha512", "crypto/subtle",
	"encoding/base32", "encoding/binary", "errors", "fmt", "hash", "math", "math/bits",
	"net/url", "strconv", "strings", "time", "unicode", "unicode/utf8",
}

// impurities lists imports outside allowedImports, package-level variables
// other than Err sentinels made by errors.New, and init functions.
func impurities(fset *token.FileSet, files map[string]*ast.File) []string {
	var found []string
	for _, f := range files {
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !slices.Contains(allowedImports, path) {
				found = append(found, fmt.Sprintf("%s: import %q", fset.Position(imp.Pos()), path))
			}
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.Name == "init" {
					found = append(found, fmt.Sprintf("%s: func init", fset.Position(d.Pos())))
				}
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, spec := range d.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if !strings.HasPrefix(name.Name, "Err") || i >= len(vs.Values) || !isErrorsNew(vs.Values[i]) {
							found = append(found, fmt.Sprintf("%s: package variable %s", fset.Position(name.Pos()), name.Name))
						}
					}
				}
			}
		}
	}
	slices.Sort(found)
	return found
}

func isErrorsNew(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && pkg.Name == "errors" && sel.Sel.Name == "New"
}

func TestPackageIsPure(t *testing.T) {
	t.Run("the checker finds I/O imports, mutable globals and init", func(t *testing.T) {
		fset, files := parseSnippet(t, `package otp
import ("os"; "errors"; "log")
var ErrX = errors.New("otp: x")
var counter int
var ErrY = fmt.Errorf("otp: y")
func init() {}
`)
		got := strings.Join(impurities(fset, files), "\n")
		for _, want := range []string{`import "os"`, `import "log"`, "package variable counter", "package variable ErrY", "func init"} {
			if !strings.Contains(got, want) {
				t.Errorf("checker missed %q; it found:\n%s", want, got)
			}
		}
		if strings.Contains(got, "ErrX") {
			t.Errorf("checker flagged the errors.New sentinel ErrX:\n%s", got)
		}
	})
	t.Run("the otp package has no I/O, no mutable globals and no init", func(t *testing.T) {
		if found := impurities(parsePackage(t)); len(found) > 0 {
			t.Errorf("impure constructs:\n%s", strings.Join(found, "\n"))
		}
	})
}

// secretName matches identifiers that hold codes, secrets or MACs (error
// sentinels such as ErrShortSecret are exempt).
var secretName = regexp.MustCompile(`(?i)code|secret|want|got|sum|mac|digest|otp`)

// variableTimeComparisons lists == and != on operands named like codes or
// secrets, and calls to comparison functions that stop at the first
// difference. len(x) is public and allowed.
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
	banned := map[string]bool{"bytes.Equal": true, "bytes.Compare": true, "strings.Compare": true, "strings.EqualFold": true, "reflect.DeepEqual": true, "slices.Equal": true}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if n.Op != token.EQL && n.Op != token.NEQ {
					return true
				}
				for _, side := range []ast.Expr{n.X, n.Y} {
					if name := root(side); secretName.MatchString(name) && !strings.HasPrefix(name, "Err") {
						found = append(found, fmt.Sprintf("%s: %s on %s", fset.Position(n.Pos()), n.Op, name))
					}
				}
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
					if pkg, ok := sel.X.(*ast.Ident); ok && banned[pkg.Name+"."+sel.Sel.Name] {
						found = append(found, fmt.Sprintf("%s: %s.%s", fset.Position(n.Pos()), pkg.Name, sel.Sel.Name))
					}
				}
			}
			return true
		})
	}
	slices.Sort(found)
	return found
}

func TestCodesAndSecretsAreComparedInConstantTime(t *testing.T) {
	t.Run("the checker finds == on codes and bytes.Equal", func(t *testing.T) {
		fset, files := parseSnippet(t, `package otp
func f(code, want string, secret, sum []byte, k Key) bool {
	if len(code) != 6 { return false }
	if string(sum) == "x" { return true }
	if k.Secret[0] != 0 { return true }
	return code == want || bytes.Equal(secret, sum)
}
`)
		got := variableTimeComparisons(fset, files)
		joined := strings.Join(got, "\n")
		for _, want := range []string{"== on code", "== on want", "== on sum", "!= on Secret", "bytes.Equal"} {
			if !strings.Contains(joined, want) {
				t.Errorf("checker missed %q; it found:\n%s", want, joined)
			}
		}
		if strings.Contains(joined, "snippet.go:3:") || len(got) != 5 {
			t.Errorf("checker found %d comparisons, want 5 (len(code) is allowed):\n%s", len(got), joined)
		}
	})
	t.Run("the otp package compares codes and secrets only with crypto/subtle", func(t *testing.T) {
		if found := variableTimeComparisons(parsePackage(t)); len(found) > 0 {
			t.Errorf("variable-time comparisons:\n%s", strings.Join(found, "\n"))
		}
	})
}
