package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxFrame is the largest frame, in bytes, either side accepts.
const MaxFrame = 64 << 10

// Field length limits enforced by Request.Validate.
const (
	MaxUserLen     = 256
	MaxCodeLen     = MaxAnswerLen // a long paste is refused by otpgated in words
	MaxContextLen  = 1024         // Service, RHost, TTY
	MaxAuthInfoLen = 8192
	MaxImportCodes = 100
)

// ReservedUserPrefix starts the store keys the daemon keeps for itself
// (per-address counters); no request may name a user with it.
const ReservedUserPrefix = "/"

// ErrFrameTooLarge is returned when a frame's declared length exceeds MaxFrame.
var ErrFrameTooLarge = errors.New("protocol: frame exceeds 64 KiB")

// WriteFrame writes payload as one length-prefixed frame.
func WriteFrame(w io.Writer, payload []byte) error {
	if len(payload) > MaxFrame {
		return ErrFrameTooLarge
	}
	buf := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload))) //nolint:gosec // len(payload) <= MaxFrame, checked above
	copy(buf[4:], payload)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one length-prefixed frame. It never allocates more than
// MaxFrame bytes, whatever the peer declares.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return nil, ErrFrameTooLarge
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after message")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after message")
	}
	return nil
}

// DecodeRequest parses and validates a request frame. The returned error
// describes the first problem found and is safe to send back to the client
// (it never quotes field values).
func DecodeRequest(data []byte) (*Request, error) {
	var req Request
	if err := decodeStrict(data, &req); err != nil {
		return nil, fmt.Errorf("malformed request: %w", sanitizeJSONError(err))
	}
	if err := req.Validate(); err != nil {
		return &req, err
	}
	return &req, nil
}

// sanitizeJSONError drops quoted input from json errors so that a
// malformed request containing a code cannot echo it into logs.
func sanitizeJSONError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q has the wrong type (want %s)", te.Field, te.Type)
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return errors.New(msg)
}

// EncodeRequest validates and encodes a request.
func EncodeRequest(req *Request) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return marshalRequest(req)
}

// EncodeResponse encodes a response.
func EncodeResponse(resp *Response) ([]byte, error) {
	b, err := json.Marshal(resp)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFrame {
		return nil, ErrFrameTooLarge
	}
	return b, nil
}

// DecodeResponse parses a response frame.
func DecodeResponse(data []byte) (*Response, error) {
	var resp Response
	if err := decodeResponse(data, &resp, &resp.ResponseHeader); err != nil {
		return nil, err
	}
	return &resp, nil
}

// decodeResponse parses a response frame into resp, a Response or a
// composition of its parts whose header is hdr, and checks its version.
func decodeResponse(data []byte, resp any, hdr *ResponseHeader) error {
	if err := decodeStrict(data, resp); err != nil {
		return fmt.Errorf("malformed response: %w", sanitizeJSONError(err))
	}
	if hdr.V != Version {
		return fmt.Errorf("response has protocol version %d, want %d", hdr.V, Version)
	}
	return nil
}

// Validate checks a request's shape: known version and operation, field
// sizes, valid UTF-8 without control characters in names. It does not
// check authorization.
func (r *Request) Validate() error {
	if r.V != Version {
		return fmt.Errorf("unsupported protocol version %d (this daemon speaks %d)", r.V, Version)
	}
	if !r.Op.Known() {
		return errors.New("unknown operation")
	}
	if err := checkField("user", r.User, MaxUserLen, false); err != nil {
		return err
	}
	if err := checkField("code", r.Code, MaxCodeLen, false); err != nil {
		return err
	}
	if err := checkField("after", r.After, MaxUserLen, false); err != nil {
		return err
	}
	if r.After != "" && r.Op != OpAdminList {
		return errors.New("field after is only used with admin_list")
	}
	for _, f := range []struct {
		name, v string
	}{{"service", r.Service}, {"rhost", r.RHost}, {"tty", r.TTY}} {
		if err := checkField(f.name, f.v, MaxContextLen, true); err != nil {
			return err
		}
	}
	if err := checkField("auth_info", r.AuthInfo, MaxAuthInfoLen, true); err != nil {
		return err
	}
	if r.PriorFactor != "" && r.PriorFactor != PriorFactorPassword {
		return fmt.Errorf("field prior_factor must be empty or %q", PriorFactorPassword)
	}
	if strings.HasPrefix(r.User, ReservedUserPrefix) {
		return fmt.Errorf("user names starting with %q are reserved", ReservedUserPrefix)
	}
	needsUser := r.Op != OpPing && r.Op != OpAdminList && r.Op != OpLoginAnswer
	if needsUser && r.User == "" {
		return fmt.Errorf("operation %s needs a user", r.Op)
	}
	if (r.Import != nil) != (r.Op == OpAdminImport) {
		return errors.New("import payload is only and always used with admin_import")
	}
	if (r.Login != nil) != (r.Op == OpLoginStart) {
		return errors.New("login is only and always used with login_start")
	}
	if r.Login != nil {
		if err := checkField("login prompt", r.Login.Prompt, MaxPromptLen, false); err != nil {
			return err
		}
		if r.Login.Width < 0 || r.Login.Width > 10000 || r.Login.Height < 0 || r.Login.Height > 10000 {
			return errors.New("login terminal size out of range")
		}
	}
	if len(r.Answers) > 0 && r.Op != OpLoginAnswer {
		return errors.New("answers are only used with login_answer")
	}
	if len(r.Answers) > MaxAnswers {
		return fmt.Errorf("at most %d answers", MaxAnswers)
	}
	for _, a := range r.Answers {
		if err := checkField("answer", a, MaxAnswerLen, true); err != nil {
			return err
		}
	}
	if r.Import != nil {
		if len(r.Import.Secret) > 1024 {
			return errors.New("import secret is too long")
		}
		if len(r.Import.RecoveryCodes) > MaxImportCodes {
			return fmt.Errorf("at most %d recovery codes may be imported", MaxImportCodes)
		}
		for _, c := range r.Import.RecoveryCodes {
			if err := checkField("recovery code", c, MaxCodeLen, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkField enforces a length limit and valid UTF-8. Control characters
// are refused unless lenient (context fields are sanitized by the audit log
// instead, since PAM items come from the outside world).
func checkField(name, v string, limit int, lenient bool) error {
	if len(v) > limit {
		return fmt.Errorf("field %s is longer than %d bytes", name, limit)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("field %s is not valid UTF-8", name)
	}
	if !lenient {
		for _, c := range v {
			if c < 0x20 || c == 0x7f {
				return fmt.Errorf("field %s contains a control character", name)
			}
		}
	}
	return nil
}
