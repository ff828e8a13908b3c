package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads the configuration file at path on top of Default and
// validates it. Every error names the file, and where it can the line and
// key: "config.toml:7: unknown key "rate_limit.max_failure" (did you mean
// "rate_limit.max_failures"?)".
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load on data already read; path is used in messages.
func Parse(path string, data []byte) (*Config, error) {
	cfg := Default()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", path, pe.Position.Line, typeHint(pe))
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	lines := keyLines(data)
	var errs []error
	for _, k := range md.Undecoded() {
		key := k.String()
		msg := fmt.Sprintf("%s:%d: unknown key %q", path, lines[key], key)
		if s := suggest(key); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		errs = append(errs, errors.New(msg))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.normalize()
	if err := cfg.Validate(); err != nil {
		var ve validationErrors
		if errors.As(err, &ve) {
			for _, e := range ve {
				if line, ok := lines[e.key]; ok && md.IsDefined(strings.Split(e.key, ".")...) {
					errs = append(errs, fmt.Errorf("%s:%d: %s", path, line, e.msg))
				} else {
					errs = append(errs, fmt.Errorf("%s: %s", path, e.msg))
				}
			}
			return nil, errors.Join(errs...)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &cfg, nil
}

// typeHint rewords toml's messages for the common mistakes.
func typeHint(pe toml.ParseError) string {
	msg := pe.Message
	if strings.Contains(msg, "time: ") {
		msg += ` (durations are written like "30s", "5m" or "1h30m")`
	}
	return msg
}

// keyLines maps dotted keys to the line where they are set, for error
// messages. It understands the subset of TOML the configuration uses:
// [table] headers and key = value lines.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			table = strings.Trim(strings.TrimSpace(strings.SplitN(line, "#", 2)[0]), "[] ")
			if _, ok := lines[table]; !ok {
				lines[table] = n
			}
		default:
			if i := strings.Index(line, "="); i > 0 {
				key := strings.Trim(strings.TrimSpace(line[:i]), `"`)
				if table != "" {
					key = table + "." + key
				}
				if _, ok := lines[key]; !ok {
					lines[key] = n
				}
			}
		}
	}
	return lines
}

// Keys lists every dotted key of the configuration, from the struct tags.
func Keys() []string {
	var keys []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := f.Tag.Get("toml")
			if name == "" {
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration{}) {
				walk(f.Type, prefix+name+".")
				continue
			}
			keys = append(keys, prefix+name)
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	sort.Strings(keys)
	return keys
}

// suggest returns the known key closest to key, if it is a likely typo.
func suggest(key string) string {
	best, bestDist := "", 4
	for _, k := range Keys() {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
