package otp_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/otp"
)

// The seed corpora of these targets are files under testdata/fuzz/FuzzXxx,
// so a plain "go test" runs every seed; TestFuzzSeedCorporaArePresent fails
// if a target has none (the trap of a seed glob that silently matches
// nothing). Run one target for real with, e.g.:
//
//	go test -run '^$' -fuzz '^FuzzParseURI$' -fuzztime 1m ./otp

// requireOTPError fails unless err carries the package prefix.
func requireOTPError(t *testing.T, err error) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), "otp: ") {
		t.Fatalf("error %q lacks the otp: prefix", err)
	}
}

// FuzzDecodeSecret checks that DecodeSecret never panics and that whatever
// it accepts is the canonical spelling of its result once case, spaces,
// hyphens and padding are ignored.
func FuzzDecodeSecret(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		b, err := otp.DecodeSecret(s)
		if err != nil {
			requireOTPError(t, err)
			if b != nil {
				t.Fatalf("DecodeSecret(%q) returned %x with error %v", s, b, err)
			}
			return
		}
		if len(b) == 0 {
			t.Fatalf("DecodeSecret(%q) returned no bytes and no error", s)
		}
		canonical := strings.Map(func(r rune) rune {
			switch {
			case r == ' ' || r == '-' || r == '=':
				return -1
			case 'a' <= r && r <= 'z':
				return r - 'a' + 'A'
			}
			return r
		}, s)
		if enc := otp.EncodeSecret(b); enc != canonical {
			t.Fatalf("DecodeSecret(%q) = %x, which encodes as %q, not %q", s, b, enc, canonical)
		}
		again, err := otp.DecodeSecret(otp.EncodeSecret(b))
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-decoding %q gave %x, %v; want %x", otp.EncodeSecret(b), again, err, b)
		}
	})
}

// FuzzValidCode compares ValidCode with strconv: a valid code is one that
// strconv.ParseUint accepts in base 10 (which allows no sign, space or
// non-ASCII digit) and has exactly digits characters, digits being 6 to 8.
func FuzzValidCode(f *testing.F) {
	f.Fuzz(func(t *testing.T, code string, digits int) {
		_, err := strconv.ParseUint(code, 10, 64)
		want := digits >= 6 && digits <= 8 && len(code) == digits && err == nil
		if got := otp.ValidCode(code, digits); got != want {
			t.Fatalf("ValidCode(%q, %d) = %v, want %v", code, digits, got, want)
		}
	})
}

// fuzzParams maps fuzzed bytes onto Params, invalid ones included: the
// algorithm is alg mod 4 (0 is invalid) and digits are 5 + digits mod 5
// (5 and 9 are invalid).
func fuzzParams(alg, digits uint8) otp.Params {
	return otp.Params{Algorithm: otp.Algorithm(alg % 4), Digits: 5 + int(digits%5), Period: 30}
}

// FuzzVerify compares Verify with a plain loop over HOTP: same verdict,
// same (earliest) step, never a panic, and the centre step's own code is
// always accepted.
func FuzzVerify(f *testing.F) {
	f.Fuzz(func(t *testing.T, secret []byte, code string, center uint64, before, after, alg, digits uint8) {
		p := fuzzParams(alg, digits)
		step, ok := otp.Verify(secret, code, center, int(before), int(after), p)
		if p.Validate() != nil || !otp.ValidCode(code, p.Digits) {
			if ok || step != 0 {
				t.Fatalf("Verify(%q, %+v) = %d, %v for an invalid code or params", code, p, step, ok)
			}
			return
		}
		lo := center - min(uint64(before), center)
		hi := center + min(uint64(after), math.MaxUint64-center)
		var wantStep uint64
		wantOK := false
		for s := lo; ; s++ {
			if otp.HOTP(secret, s, p.Algorithm, p.Digits) == code {
				wantStep, wantOK = s, true
				break
			}
			if s == hi {
				break
			}
		}
		if step != wantStep || ok != wantOK {
			t.Fatalf("Verify(%q, center %d, -%d/+%d, %+v) = %d, %v; the plain loop says %d, %v", code, center, before, after, p, step, ok, wantStep, wantOK)
		}
		own := otp.HOTP(secret, center, p.Algorithm, p.Digits)
		if step, ok := otp.Verify(secret, own, center, int(before), int(after), p); !ok || step < lo || step > center {
			t.Fatalf("the centre's own code %s gives %d, %v; want a step in [%d, %d]", own, step, ok, lo, center)
		}
	})
}

// FuzzParseURI checks that ParseURI never panics, that its errors carry the
// package prefix, and that a parsed key is valid and survives URI and
// ParseURI again unchanged.
func FuzzParseURI(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		k, err := otp.ParseURI(s)
		if err != nil {
			requireOTPError(t, err)
			return
		}
		if err := k.Validate(); err != nil {
			t.Fatalf("ParseURI(%q) returned an invalid key %+v: %v", s, k, err)
		}
		again, err := otp.ParseURI(k.URI())
		if err != nil {
			t.Fatalf("ParseURI(%q) = %+v, but its URI %s does not parse: %v", s, k, k.URI(), err)
		}
		requireSameKey(t, again, k)
	})
}

// FuzzKeyURI builds keys from fuzzed names and parameters and checks that
// every key that passes Validate parses back from its URI unchanged.
func FuzzKeyURI(f *testing.F) {
	f.Fuzz(func(t *testing.T, issuer, account string, secret []byte, alg, digits uint8, period uint16) {
		p := fuzzParams(alg, digits)
		p.Period = int(period % 3700)
		k := otp.Key{Issuer: issuer, Account: account, Secret: secret, Params: p}
		uri := k.URI() // must not panic, valid or not
		if k.Validate() != nil {
			return
		}
		got, err := otp.ParseURI(uri)
		if err != nil {
			t.Fatalf("the URI %s of the valid key %+v does not parse: %v", uri, k, err)
		}
		requireSameKey(t, got, k)
	})
}

// TestFuzzSeedCorporaArePresent fails when a Fuzz target of this package
// has no seed files, or a seed file is not in the go test fuzz v1 format.
// The targets are found by parsing the test files, so a new target without
// seeds fails here too.
func TestFuzzSeedCorporaArePresent(t *testing.T) {
	const minSeeds = 4
	files, err := filepath.Glob("*_test.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files found: %v", err)
	}
	var targets []string
	fset := token.NewFileSet()
	for _, name := range files {
		file, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Fuzz") {
				targets = append(targets, fn.Name.Name)
			}
		}
	}
	if len(targets) < 5 {
		t.Fatalf("found only the fuzz targets %v; the parse of the test files is broken", targets)
	}
	for _, target := range targets {
		dir := filepath.Join("testdata", "fuzz", target)
		t.Run(target+" has seed files", func(t *testing.T) {
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatalf("%s has no seed corpus: %v", target, err)
			}
			n := 0
			for _, e := range entries {
				if e.IsDir() {
					continue
				}
				data, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(data, []byte("go test fuzz v1\n")) {
					t.Errorf("%s/%s does not start with \"go test fuzz v1\"", dir, e.Name())
				}
				n++
			}
			if n < minSeeds {
				t.Errorf("%s holds %d seed files, want at least %d", dir, n, minSeeds)
			}
		})
	}
}
