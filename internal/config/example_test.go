package config_test

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/otpgate/otpgate/internal/config"
)

const examplePath = "../../config.example.toml"

// structKeys walks Config's toml tags and returns every dotted key, tables
// included, in struct order. It is written independently of the package's
// own schema so that a mistake there cannot hide here.
func structKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, prefix+name)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[config.Duration]() {
			keys = append(keys, structKeys(f.Type, prefix+name+".")...)
		}
	}
	return keys
}

func TestExampleEqualsDefault(t *testing.T) {
	got, err := config.Load(examplePath)
	if err != nil {
		t.Fatalf("config.example.toml does not load:\n%v", err)
	}
	if want := config.Default(); !reflect.DeepEqual(*got, want) {
		t.Errorf("config.example.toml has drifted from Default():\n got %+v\nwant %+v", *got, want)
	}
}

func TestExampleListsEveryKeyInStructOrder(t *testing.T) {
	var raw map[string]any
	md, err := toml.DecodeFile(examplePath, &raw)
	if err != nil {
		t.Fatal(err)
	}
	var inFile []string
	for _, k := range md.Keys() {
		inFile = append(inFile, k.String())
	}
	want := structKeys(reflect.TypeFor[config.Config](), "")
	for _, k := range want {
		if !slices.Contains(inFile, k) {
			t.Errorf("config.example.toml does not set %q", k)
		}
	}
	if !t.Failed() && !slices.Equal(inFile, want) {
		t.Errorf("config.example.toml keys are not in the order of the Config struct:\n got %v\nwant %v", inFile, want)
	}
}

func TestExampleCommentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		// A key: it must follow a comment, directly or through other keys
		// that share that comment (required_users, required_groups).
		j := i - 1
		for j >= 0 && strings.Contains(lines[j], "=") && !strings.HasPrefix(strings.TrimSpace(lines[j]), "#") {
			j--
		}
		if j < 0 || !strings.HasPrefix(strings.TrimSpace(lines[j]), "#") {
			t.Errorf("config.example.toml:%d: %q has no comment above it", i+1, line)
		}
	}
}
