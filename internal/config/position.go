package config

import (
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLines returns the 1-based line on which each key of doc is first
// defined, indexed by toml.Key.String() (the form MetaData.Keys and
// MetaData.Undecoded print). A table gets the line of its header, or of the
// first dotted key or inline table that creates it.
//
// toml v1.6.0 records key positions but does not export them, so this is a
// small scanner for the key structure of TOML. It must only be given a
// document that toml.Decode has already accepted: it skips values without
// checking them and never fails, it just knows fewer keys.
func keyLines(doc string) map[string]int {
	s := &keyScanner{doc: doc, offsets: make(map[string]int)}
	s.document()
	// Offsets are turned into lines at the end, by binary search over the
	// newline offsets, so the scanner never has to count lines itself.
	var newlines []int
	for i := 0; i < len(doc); i++ {
		if doc[i] == '\n' {
			newlines = append(newlines, i)
		}
	}
	lines := make(map[string]int, len(s.offsets))
	for k, off := range s.offsets {
		lines[k] = sort.SearchInts(newlines, off) + 1
	}
	return lines
}

// keyScanner walks a valid TOML document and records where keys start.
type keyScanner struct {
	doc     string
	i       int            // read offset in doc
	offsets map[string]int // key → offset of its first definition
}

func (s *keyScanner) eof() bool { return s.i >= len(s.doc) }

func (s *keyScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.doc[s.i]
}

// record notes every prefix of k (the implicit tables, then k) at offset off,
// keeping the first definition of each.
func (s *keyScanner) record(k toml.Key, off int) {
	for j := 1; j <= len(k); j++ {
		name := k[:j].String()
		if _, ok := s.offsets[name]; !ok {
			s.offsets[name] = off
		}
	}
}

// document reads table headers and key/value pairs until the end.
func (s *keyScanner) document() {
	var table toml.Key
	for {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		start := s.i
		if s.peek() == '[' {
			s.i++
			array := s.peek() == '['
			if array {
				s.i++
			}
			table = s.key()
			s.record(table, start)
			s.skipBlank()
			for s.peek() == ']' {
				s.i++
			}
		} else {
			s.keyValue(table)
		}
		if s.i == start { // cannot happen with valid TOML; never loop forever
			s.i++
		}
	}
}

// keyValue reads `key = value` inside table.
func (s *keyScanner) keyValue(table toml.Key) {
	start := s.i
	k := s.key()
	full := make(toml.Key, 0, len(table)+len(k))
	full = append(append(full, table...), k...)
	s.record(full, start)
	s.skipBlank()
	if s.peek() == '=' {
		s.i++
	}
	s.value(full)
}

// key reads a possibly dotted key made of bare, "basic" or 'literal' parts.
func (s *keyScanner) key() toml.Key {
	var k toml.Key
	for {
		s.skipBlank()
		k = append(k, s.simpleKey())
		s.skipBlank()
		if s.peek() != '.' {
			return k
		}
		s.i++
	}
}

func (s *keyScanner) simpleKey() string {
	start := s.i
	switch s.peek() {
	case '"':
		s.basicString()
		return unquoteBasic(s.doc[start:s.i])
	case '\'':
		s.literalString()
		return strings.Trim(s.doc[start:s.i], "'")
	}
	for !s.eof() && isBareKeyChar(s.peek()) {
		s.i++
	}
	return s.doc[start:s.i]
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// value skips one value; keys inside inline tables are recorded under ctx.
func (s *keyScanner) value(ctx toml.Key) {
	s.skipBlank()
	switch {
	case strings.HasPrefix(s.doc[s.i:], `"""`):
		s.multilineString(`"""`, true)
	case strings.HasPrefix(s.doc[s.i:], `'''`):
		s.multilineString(`'''`, false)
	case s.peek() == '"':
		s.basicString()
	case s.peek() == '\'':
		s.literalString()
	case s.peek() == '[':
		s.i++
		s.list(']', func() { s.value(ctx) })
	case s.peek() == '{':
		s.i++
		s.list('}', func() { s.keyValue(ctx) })
	default:
		s.scalar()
	}
}

// list reads items separated by commas up to the closing byte.
func (s *keyScanner) list(closing byte, item func()) {
	for {
		s.skipSpace(true)
		switch {
		case s.eof():
			return
		case s.peek() == closing:
			s.i++
			return
		case s.peek() == ',':
			s.i++
		default:
			start := s.i
			item()
			if s.i == start {
				s.i++
			}
		}
	}
}

// scalar skips a number, boolean or date-time. A date and a time may be
// separated by one space ("1979-05-27 07:32:00").
func (s *keyScanner) scalar() {
	start := s.i
	for !s.eof() && !strings.ContainsRune(" \t\r\n,]}#", rune(s.peek())) {
		s.i++
	}
	tok := s.doc[start:s.i]
	if len(tok) == 10 && tok[4] == '-' && tok[7] == '-' &&
		s.i+1 < len(s.doc) && s.doc[s.i] == ' ' && s.doc[s.i+1] >= '0' && s.doc[s.i+1] <= '9' {
		s.i++
		s.scalar()
	}
}

func (s *keyScanner) basicString() {
	s.i++ // opening quote
	for !s.eof() {
		switch s.peek() {
		case '\\':
			s.i = min(s.i+2, len(s.doc))
		case '"', '\n':
			s.i++
			return
		default:
			s.i++
		}
	}
}

func (s *keyScanner) literalString() {
	s.i++ // opening quote
	for !s.eof() {
		c := s.peek()
		s.i++
		if c == '\'' || c == '\n' {
			return
		}
	}
}

// multilineString skips a multi-line string ending in delim, of which
// up to two quote characters may directly precede the closing delimiter.
func (s *keyScanner) multilineString(delim string, escapes bool) {
	s.i += len(delim)
	for !s.eof() {
		if escapes && s.peek() == '\\' {
			s.i = min(s.i+2, len(s.doc))
			continue
		}
		if strings.HasPrefix(s.doc[s.i:], delim) {
			s.i += len(delim)
			for n := 0; n < 2 && s.peek() == delim[0]; n++ {
				s.i++
			}
			return
		}
		s.i++
	}
}

// skipBlank skips spaces and tabs.
func (s *keyScanner) skipBlank() {
	for s.peek() == ' ' || s.peek() == '\t' {
		s.i++
	}
}

// skipSpace skips blanks and comments, and newlines too if newlines is set.
func (s *keyScanner) skipSpace(newlines bool) {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t':
			s.i++
		case newlines && (c == '\n' || c == '\r'):
			s.i++
		case c == '#':
			for !s.eof() && s.peek() != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

// unquoteBasic decodes a "quoted" key with TOML's own escape rules by
// letting the toml package parse it as a value.
func unquoteBasic(quoted string) string {
	var v struct{ K string }
	if _, err := toml.Decode("K = "+quoted, &v); err != nil {
		return strings.Trim(quoted, `"`)
	}
	return v.K
}
