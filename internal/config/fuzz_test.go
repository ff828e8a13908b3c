package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary files to the configuration loader. It must
// never panic; it must be deterministic; every error must name the file
// (so an administrator knows what to fix); and whatever it accepts must
// pass Validate, so otpgated never runs on a configuration the loader
// would reject elsewhere. Seeds: config.example.toml, the files under
// testdata/ and the corpus in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.toml"))
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, filepath.Join("..", "..", "config.example.toml"))
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	const path = "/etc/otpgate/fuzz.toml"
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(path, data)
		c2, err2 := Parse(path, data)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) || !reflect.DeepEqual(c, c2) {
			t.Fatalf("Parse is not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a configuration with an error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), path) {
				t.Fatalf("error does not name the file %s: %v", path, err)
			}
			return
		}
		if c == nil {
			t.Fatal("Parse returned neither a configuration nor an error")
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a configuration that Validate rejects: %v", err)
		}
	})
}
