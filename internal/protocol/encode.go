package protocol

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// marshalRequest encodes req exactly as json.Marshal does: the same fields
// in the same order, the same omissions and the same escapes. It writes
// them directly rather than through encoding/json, whose first Marshal of
// a Request in a fresh process builds the encoders of the type and of every
// type it holds by reflection. sshd's per-login PAM child encodes one or
// two requests and exits: with parseStepReply on the reply side, a login
// there runs no encoding/json at all. A request with an Import, which no
// front end's login sends, goes through json.Marshal.
// TestMarshalRequest and FuzzMarshalRequest hold it to json.Marshal's bytes.
func marshalRequest(req *Request) ([]byte, error) {
	if req.Import != nil {
		return json.Marshal(req)
	}
	b := make([]byte, 0, 256)
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(req.V), 10)
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, req.ID, 10)
	b = append(b, `,"op":`...)
	b = appendJSONString(b, string(req.Op))
	b = appendStringField(b, "user", req.User)
	b = appendStringField(b, "code", req.Code)
	b = appendStringField(b, "service", req.Service)
	b = appendStringField(b, "rhost", req.RHost)
	b = appendStringField(b, "tty", req.TTY)
	b = appendStringField(b, "auth_info", req.AuthInfo)
	b = appendStringField(b, "prior_factor", req.PriorFactor)
	if req.Force {
		b = append(b, `,"force":true`...)
	}
	b = appendStringField(b, "after", req.After)
	if l := req.Login; l != nil {
		b = append(b, `,"login":{`...)
		n := len(b)
		if l.Width != 0 {
			b = strconv.AppendInt(append(b, `"width":`...), int64(l.Width), 10)
		}
		if l.Height != 0 {
			b = strconv.AppendInt(append(comma(b, n), `"height":`...), int64(l.Height), 10)
		}
		if l.Prompt != "" {
			b = appendJSONString(append(comma(b, n), `"prompt":`...), l.Prompt)
		}
		if l.PasswordAndCode {
			b = append(comma(b, n), `"password_and_code":true`...)
		}
		if l.RequirePublicKey {
			b = append(comma(b, n), `"require_publickey":true`...)
		}
		b = append(b, '}')
	}
	if len(req.Answers) > 0 {
		b = append(b, `,"answers":[`...)
		for i, a := range req.Answers {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, a)
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// comma appends a comma to b unless b is still n bytes long (the first
// field of an object that starts there).
func comma(b []byte, n int) []byte {
	if len(b) > n {
		return append(b, ',')
	}
	return b
}

// appendStringField appends `,"name":"value"`, or nothing for an empty
// value (omitempty).
func appendStringField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONString(b, value)
}

// appendJSONString appends s as a JSON string with json.Marshal's escapes:
// '"' and '\\', control characters (\b, \f, \n, \r, \t by name), '<', '>'
// and '&' as \u00XX, invalid UTF-8 as \ufffd, U+2028 and U+2029.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
