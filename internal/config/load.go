package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Load reads the TOML file at path over Default and validates the result.
//
// Every problem is reported, one per line of the error, each as
// "PATH:LINE: what is wrong" (or "PATH: …" for a key the file does not
// set): syntax errors, unknown keys (with a suggestion when one is close),
// values of the wrong type, and everything Validate refuses. On error the
// returned Config is nil. A missing file is an error that satisfies
// errors.Is(err, fs.ErrNotExist); see LoadOrDefault.
//
// Load is also the SIGHUP reload: the caller keeps its current Config when
// Load fails.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in our prefix
		}
		return nil, fmt.Errorf("%s: cannot read configuration: %w", path, err)
	}
	return Parse(path, data)
}

// LoadOrDefault is Load, except that when mustExist is false a missing file
// yields Default. Any other problem, a file that exists but cannot be read
// included, is still an error.
func LoadOrDefault(path string, mustExist bool) (*Config, error) {
	c, err := Load(path)
	if err != nil && !mustExist && errors.Is(err, fs.ErrNotExist) {
		d := Default()
		return &d, nil
	}
	return c, err
}

// Parse is Load for data already read; path is only used in messages.
func Parse(path string, data []byte) (*Config, error) {
	text := string(data)

	// First pass: syntax, then every key and type checked against the
	// schema on a generic decoding, so that all problems are found, not
	// only the first one the struct decoder would trip over.
	var raw map[string]any
	md, err := toml.Decode(text, &raw)
	if err != nil {
		return nil, joinAt(path, []positioned{decodeProblem(err)})
	}
	lines := keyLines(text)
	problems, reported, badType := checkKeys(md, raw, lines)
	if badType {
		// Values of the wrong type cannot be decoded, so neither can the
		// rest be validated.
		return nil, joinAt(path, problems)
	}

	// Second pass: the real decoding over the defaults. Unknown keys are
	// already reported and left alone by the decoder, so the values can
	// still be validated and every problem reported in one go.
	c := Default()
	md, err = toml.Decode(text, &c)
	if err != nil { // unexpected after the first pass, but reported anyway
		return nil, joinAt(path, append(problems, decodeProblem(err)))
	}
	for _, k := range md.Undecoded() {
		if !isBelow(k, reported) {
			problems = append(problems, positioned{line: lines[k.String()], err: fmt.Errorf("unknown key %q", k.String())})
			reported = append(reported, k)
		}
	}
	if !md.IsDefined("rate_limit", "per_source_max_failures") {
		c.RateLimit.PerSourceMaxFailures = DefaultPerSourceMaxFailures(c.RateLimit.MaxFailures)
	}
	c.normalize()
	for _, p := range c.problems() {
		problems = append(problems, positioned{line: p.line(lines), err: p})
	}
	if len(problems) > 0 {
		return nil, joinAt(path, problems)
	}
	return &c, nil
}

// positioned is one problem of a file, at a line (0 if unknown).
type positioned struct {
	line int
	err  error
}

// fileError is a problem prefixed with its file and line.
type fileError struct {
	path string
	line int
	err  error
}

func (e *fileError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.path, e.line, e.err)
	}
	return fmt.Sprintf("%s: %s", e.path, e.err)
}

func (e *fileError) Unwrap() error { return e.err }

// joinAt orders problems by line (those without a line last) and joins
// them, one per line of the error text.
func joinAt(path string, ps []positioned) error {
	slices.SortStableFunc(ps, func(a, b positioned) int {
		switch {
		case a.line == b.line:
			return 0
		case a.line == 0:
			return 1
		case b.line == 0:
			return -1
		}
		return a.line - b.line
	})
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = &fileError{path: path, line: p.line, err: p.err}
	}
	return errors.Join(errs...)
}

// decodeProblem places a toml decoding error at its line.
func decodeProblem(err error) positioned {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return positioned{line: pe.Position.Line, err: &parseError{pe}}
	}
	return positioned{err: err}
}

// parseError is a toml.ParseError whose text is only the message: the
// position is already in the fileError prefix.
type parseError struct{ pe toml.ParseError }

func (e *parseError) Error() string { return lowerFirst(e.pe.Message) }
func (e *parseError) Unwrap() error { return e.pe }

// lowerFirst lower-cases a message's first letter unless it starts an
// acronym ("TOML", "UTF-8").
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	next, _ := utf8.DecodeRuneInString(s[n:])
	if unicode.IsUpper(r) && !unicode.IsUpper(next) {
		return string(unicode.ToLower(r)) + s[n:]
	}
	return s
}

// checkKeys compares every key of the file with the schema and returns
// the unknown keys and the values of the wrong type, the keys it reported,
// and whether any value has the wrong type. Keys below a key already
// reported are skipped: an unknown table is one problem.
func checkKeys(md toml.MetaData, raw map[string]any, lines map[string]int) (out []positioned, reported []toml.Key, badType bool) {
	_, known := schema()
	for _, k := range md.Keys() {
		if isBelow(k, reported) {
			continue
		}
		name := k.String()
		typ := md.Type(k...)
		var err error
		if f, ok := known[name]; !ok {
			err = unknownKeyError(k, typ == "Hash" || typ == "ArrayHash")
		} else if msg := f.check(typ, lookup(raw, k)); msg != "" {
			err = &keyError{key: name, msg: msg}
			badType = true
		}
		if err != nil {
			out = append(out, positioned{line: lines[name], err: err})
			reported = append(reported, k)
		}
	}
	return out, reported, badType
}

func unknownKeyError(k toml.Key, isTable bool) error {
	what := "key"
	if isTable {
		what = "table"
	}
	if s := suggest(k, isTable); s != "" {
		return fmt.Errorf("unknown %s %q (did you mean %q?)", what, k.String(), s)
	}
	return fmt.Errorf("unknown %s %q", what, k.String())
}

// isBelow reports whether k is one of keys or below one of them.
func isBelow(k toml.Key, keys []toml.Key) bool {
	return slices.ContainsFunc(keys, func(p toml.Key) bool {
		return len(k) >= len(p) && slices.Equal(k[:len(p)], p)
	})
}

// normalize puts values Validate accepts in several spellings into the one
// the daemon uses: the algorithm upper case without dashes, and empty lists as nil (so
// a file spelling out the defaults equals Default).
func (c *Config) normalize() {
	c.TOTP.Algorithm = normalAlgorithm(c.TOTP.Algorithm)
	for _, list := range []*[]string{&c.Policy.RequiredUsers, &c.Policy.RequiredGroups, &c.Policy.ExemptUsers, &c.Policy.ExemptGroups, &c.Policy.ExemptNetworks, &c.Policy.JumpHosts} {
		if len(*list) == 0 {
			*list = nil
		}
	}
	// otpgate-sshd reaches the daemon where the daemon listens.
	c.SSHD.Socket = c.Daemon.Socket
}
