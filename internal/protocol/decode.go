package protocol

import (
	"strconv"
	"unicode/utf8"
)

// parseStepReply parses a dialogue's reply when it is in the form
// otpgated writes (EncodeResponse): no whitespace, each key once and spelt
// as in the struct tags, the header and a step only, strings that are valid
// UTF-8 without surrogate escapes. For such a reply it returns what
// encoding/json would decode, without it: a fresh process (sshd's
// per-login PAM child) then builds no decoder by reflection. For anything
// else ok is false and decodeStep decodes with encoding/json, which
// accepts, refuses and reports everything as before. FuzzParseStepReply
// holds it to encoding/json's result.
func parseStepReply(data []byte) (resp *stepResponse, ok bool) {
	p := &stepParser{b: data}
	resp = &stepResponse{}
	ok = p.object(func(key string) bool {
		switch key {
		case "v":
			// Another version is encoding/json's to report.
			n, ok := p.uint()
			resp.V = Version
			return ok && n == Version
		case "id":
			resp.ID, ok = p.uint()
			return ok
		case "step":
			resp.Step = &LoginStep{}
			return p.step(resp.Step)
		}
		return false
	})
	if !ok || p.i != len(p.b) || resp.V != Version {
		return nil, false
	}
	return resp, true
}

// stepParser reads the canonical JSON of a step reply from b at i.
type stepParser struct {
	b []byte
	i int
}

func (p *stepParser) step(st *LoginStep) bool {
	return p.object(func(key string) bool {
		var ok bool
		switch key {
		case "messages":
			st.Messages = []LoginMessage{}
			return p.array(func() bool {
				var m LoginMessage
				ok := p.object(func(key string) bool {
					var ok bool
					switch key {
					case "style":
						var s string
						s, ok = p.str()
						m.Style = MessageStyle(s)
					case "text":
						m.Text, ok = p.str()
					}
					return ok
				})
				st.Messages = append(st.Messages, m)
				return ok
			})
		case "prompts":
			st.Prompts = []LoginPrompt{}
			return p.array(func() bool {
				var pr LoginPrompt
				ok := p.object(func(key string) bool {
					var ok bool
					switch key {
					case "text":
						pr.Text, ok = p.str()
					case "echo":
						pr.Echo, ok = p.boolean()
					}
					return ok
				})
				st.Prompts = append(st.Prompts, pr)
				return ok
			})
		case "verdict":
			var s string
			s, ok = p.str()
			st.Verdict = Verdict(s)
		case "authtok":
			st.AuthTok, ok = p.str()
		}
		return ok
	})
}

// lit consumes c if it is next.
func (p *stepParser) lit(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads an object whose values field reads, each key at most once.
func (p *stepParser) object(field func(key string) bool) bool {
	if !p.lit('{') {
		return false
	}
	if p.lit('}') {
		return true
	}
	var seen []string
	for {
		key, ok := p.str()
		if !ok || !p.lit(':') {
			return false
		}
		for _, k := range seen {
			if k == key {
				return false
			}
		}
		seen = append(seen, key)
		if !field(key) {
			return false
		}
		if p.lit('}') {
			return true
		}
		if !p.lit(',') {
			return false
		}
	}
}

// array reads an array whose elements elem reads.
func (p *stepParser) array(elem func() bool) bool {
	if !p.lit('[') {
		return false
	}
	if p.lit(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if p.lit(']') {
			return true
		}
		if !p.lit(',') {
			return false
		}
	}
}

// uint reads a non-negative integer without leading zeros.
func (p *stepParser) uint() (uint64, bool) {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	digits := p.b[start:p.i]
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(digits), 10, 64)
	return n, err == nil
}

func (p *stepParser) boolean() (bool, bool) {
	rest := p.b[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		p.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

// str reads a string: valid UTF-8, no control characters, the escapes
// json.Marshal writes (surrogate pairs excepted).
func (p *stepParser) str() (string, bool) {
	if !p.lit('"') {
		return "", false
	}
	start := p.i
	var out []byte // nil until the first escape
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if out != nil {
				s = append(out, s...)
			}
			if !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c < 0x20:
			return "", false
		case c != '\\':
			p.i++
			continue
		}
		out = append(out, p.b[start:p.i]...)
		if p.i+1 >= len(p.b) {
			return "", false
		}
		esc := p.b[p.i+1]
		p.i += 2
		switch esc {
		case '"', '\\', '/':
			out = append(out, esc)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok || r >= 0xd800 && r < 0xe000 {
				return "", false
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
		start = p.i
	}
	return "", false
}

// hex4 reads the four hex digits of a \u escape.
func (p *stepParser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}
