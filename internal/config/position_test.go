package config

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// decodeKeys returns the keys the toml package finds in doc.
func decodeKeys(t *testing.T, doc string) []string {
	t.Helper()
	var raw map[string]any
	md, err := toml.Decode(doc, &raw)
	if err != nil {
		t.Fatalf("test document is not valid TOML: %v", err)
	}
	var keys []string
	for _, k := range md.Keys() {
		keys = append(keys, k.String())
	}
	return keys
}

func TestKeyLinesFindsKeysPastStringsArraysAndInlineTables(t *testing.T) {
	data, err := os.ReadFile("testdata/keys_tricky.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"title": 2, "literal": 6, `"quoted key"`: 9, `"lit key"`: 10,
		"dotted": 11, "dotted.inner": 11, "dotted.inner.leaf": 11,
		"when": 12, "list": 13,
		"inline": 18, "inline.a": 18, "inline.b": 18, "inline.b.c": 18,
		"table": 20, "table.x": 21,
		"items": 23, "items.name": 24, "items.after": 28,
	}
	got := keyLines(string(data))
	for k, line := range want {
		if got[k] != line {
			t.Errorf("line of %s = %d, want %d", k, got[k], line)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("keyLines found %s on line %d, which is not a key (text inside a string or a value?)", k, got[k])
		}
	}
	// Every key the toml package sees must have a line.
	for _, k := range decodeKeys(t, string(data)) {
		if got[k] == 0 {
			t.Errorf("toml key %s has no line", k)
		}
	}
}

// Every key of every fixture is placed on a line that spells it.
func TestKeyLinesAgreesWithTomlOnEveryFixture(t *testing.T) {
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../config.example.toml")
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		md, err := toml.Decode(string(data), &raw)
		if err != nil {
			continue // syntax.toml
		}
		lines := strings.Split(string(data), "\n")
		got := keyLines(string(data))
		for _, k := range md.Keys() {
			n := got[k.String()]
			if n < 1 || n > len(lines) {
				t.Errorf("%s: key %s has line %d", f, k, n)
				continue
			}
			if last := k[len(k)-1]; !strings.Contains(lines[n-1], last) {
				t.Errorf("%s:%d: %q does not contain key %s", f, n, lines[n-1], k)
			}
			checked++
		}
	}
	if checked < 40 {
		t.Fatalf("only %d keys checked; the fixtures are missing", checked)
	}
}

func TestKeyLinesNeverPanicsOnTruncatedInput(t *testing.T) {
	// keyLines is only given valid documents, but a truncated one must
	// not panic or loop: it just knows fewer keys.
	data, err := os.ReadFile("testdata/keys_tricky.toml")
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(data) + 1 {
		keyLines(string(data[:i]))
	}
	keyLines(`a = "unterminated \`)
	keyLines(`a = """ab\`)
}

func FuzzKeyLines(f *testing.F) {
	for _, name := range []string{"testdata/keys_tricky.toml", "testdata/full.toml", "../../config.example.toml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var raw map[string]any
		md, err := toml.Decode(doc, &raw)
		lines := keyLines(doc) // must not panic, valid or not
		if err != nil {
			return
		}
		for _, k := range md.Keys() {
			if lines[k.String()] == 0 {
				t.Errorf("key %s of a valid document has no line", k)
			}
		}
	})
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		name    string
		key     toml.Key
		isTable bool
		want    string
	}{
		{"a dropped letter", toml.Key{"rate_limit", "max_failure"}, false, "rate_limit.max_failures"},
		{"a doubled letter", toml.Key{"totp", "perriod"}, false, "totp.period"},
		{"a different case", toml.Key{"TOTP", "Digits"}, false, "totp.digits"},
		{"a key in the wrong table", toml.Key{"enroll", "state_dir"}, false, "daemon.state_dir"},
		{"a misspelt table", toml.Key{"ratelimit"}, true, "rate_limit"},
		{"a table is not offered for a value", toml.Key{"totpp"}, false, ""},
		{"a value is not offered for a table", toml.Key{"issuers"}, true, ""},
		{"a short key far from any other", toml.Key{"port"}, false, ""},
		{"a long key far from any other", toml.Key{"daemon", "listen_address"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := suggest(tt.key, tt.isTable); got != tt.want {
				t.Errorf("suggest(%s) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"kitten", "sitting", 3},
		{"max_failure", "max_failures", 1}, {"skew", "skwe", 2}, {"ü", "u", 1},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSchemaCoversEveryField(t *testing.T) {
	fields, byKey := schema()
	if len(fields) != len(byKey) {
		t.Errorf("schema has %d fields but %d distinct keys", len(fields), len(byKey))
	}
	// A few spot checks of the kinds the type check relies on.
	want := map[string]kind{
		"issuer": kindString, "totp": kindTable, "totp.digits": kindInt, "rate_limit.backoff": kindFloat,
		"daemon.request_timeout": kindDuration, "policy.exempt_users": kindStrings,
	}
	for k, kd := range want {
		if f, ok := byKey[k]; !ok || f.kind != kd {
			t.Errorf("schema[%s] = %+v, %v; want kind %d", k, f, ok, kd)
		}
	}
	if keys := slices.Collect(maps.Keys(byKey)); len(keys) < 30 {
		t.Errorf("schema has only %d keys: %v", len(keys), keys)
	}
}
