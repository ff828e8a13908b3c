package otp

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Secret sizes. RFC 4226 R6 requires at least 128 bits and recommends 160.
const (
	// MinSecretBytes is the shortest secret RFC 4226 R6 and NIST SP 800-63B
	// allow: 128 bits.
	MinSecretBytes = 16
	// DefaultSecretBytes is the RFC 4226 recommendation, 160 bits, and what
	// authenticator apps expect for SHA1.
	DefaultSecretBytes = 20
	// maxSecretBytes bounds GenerateSecret.
	maxSecretBytes = 128
)

// ErrShortSecret is matched (with errors.Is) by the error CheckSecretLength
// returns for a secret shorter than MinSecretBytes.
var ErrShortSecret = errors.New("otp: secret is shorter than 128 bits")

// shortSecretError is the error of CheckSecretLength. Its text carries the
// actual length; errors.Is matches it with ErrShortSecret.
type shortSecretError struct{ bits int }

func (e shortSecretError) Error() string {
	return fmt.Sprintf("otp: secret is %d bits; at least %d bits are required", e.bits, 8*MinSecretBytes)
}

func (e shortSecretError) Is(target error) bool { return target == ErrShortSecret }

// GenerateSecret returns n random bytes from crypto/rand. n must be
// MinSecretBytes to 128; DefaultSecretBytes is the usual choice.
func GenerateSecret(n int) ([]byte, error) {
	if n < MinSecretBytes || n > maxSecretBytes {
		return nil, fmt.Errorf("otp: secret length must be %d to %d bytes, not %d", MinSecretBytes, maxSecretBytes, n)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("otp: read random secret: %w", err)
	}
	return b, nil
}

// CheckSecretLength refuses a secret below the 128-bit floor of RFC 4226
// R6 with the error "otp: secret is N bits; at least 128 bits are
// required", which matches ErrShortSecret.
func CheckSecretLength(b []byte) error {
	if len(b) < MinSecretBytes {
		return shortSecretError{bits: 8 * len(b)}
	}
	return nil
}

// b32 returns the encoding authenticator apps use: RFC 4648 base32, upper
// case, no padding. A function rather than a package variable, to keep the
// package free of global state.
func b32() *base32.Encoding { return base32.StdEncoding.WithPadding(base32.NoPadding) }

// EncodeSecret encodes b as RFC 4648 base32, upper case, without padding,
// as authenticator apps expect.
func EncodeSecret(b []byte) string { return b32().EncodeToString(b) }

// DecodeSecret decodes a base32 secret as people paste it: in any case,
// with spaces or hyphens between groups, and with or without '=' padding
// (if present, it must be the right amount and only at the end). Positions
// in errors count characters from 1.
//
// It rejects any other character, naming it and its position; a length
// that no byte string encodes to; and a last character with non-zero unused
// bits (only one spelling decodes to a given secret, so a mistyped last
// character is caught). It does not check the length of the result: see
// CheckSecretLength.
func DecodeSecret(s string) ([]byte, error) {
	b, err := decodeSecret(s)
	if err != nil {
		return nil, fmt.Errorf("otp: %w", err)
	}
	return b, nil
}

// base32Value returns the 5-bit value of an upper case base32 character,
// or -1.
func base32Value(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case '2' <= c && c <= '7':
		return int(c-'2') + 26
	}
	return -1
}

// badCharHint explains the characters people most often type for base32
// look-alikes.
func badCharHint(r rune) string {
	switch r {
	case '0':
		return " (base32 has no 0: did you mean the letter O?)"
	case '1':
		return " (base32 has no 1: did you mean the letter I or L?)"
	case '8':
		return " (base32 has no 8: did you mean the letter B?)"
	case '9':
		return " (base32 has no 9)"
	}
	return ""
}

// decodeSecret is DecodeSecret with errors that lack the "otp: " prefix,
// so that ParseURI can wrap them.
func decodeSecret(s string) ([]byte, error) {
	clean := make([]byte, 0, len(s))
	defer func() { clear(clean) }() // the cleaned copy is as secret as the result
	pad, padPos := 0, 0             // '=' characters and the position of the first
	pos := 0
	for i, r := range s {
		pos++
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return nil, fmt.Errorf("invalid UTF-8 byte %#02x at position %d of the secret", s[i], pos)
			}
		}
		switch {
		case r == '=':
			if pad == 0 {
				padPos = pos
			}
			pad++
			continue
		case r == ' ' || r == '-':
			continue
		case pad > 0:
			return nil, fmt.Errorf("character %q at position %d of the secret follows the '=' padding at position %d; padding may only end the secret", r, pos, padPos)
		}
		c := byte(0)
		if r < utf8.RuneSelf {
			c = byte(r) //nolint:gosec // r < utf8.RuneSelf: ASCII
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
		}
		if base32Value(c) < 0 {
			return nil, fmt.Errorf("invalid character %q at position %d of the secret%s; base32 uses only the letters A-Z and the digits 2-7", r, pos, badCharHint(r))
		}
		clean = append(clean, c)
	}
	n := len(clean)
	if n == 0 {
		return nil, errors.New("the secret is empty")
	}
	switch n % 8 {
	case 1, 3, 6:
		return nil, fmt.Errorf("a secret of %d base32 characters is impossible: a character is missing or extra", n)
	}
	if needed := (8 - n%8) % 8; pad != 0 && pad != needed {
		return nil, fmt.Errorf("the secret has %d '=' padding characters where its %d base32 characters need %d (or none)", pad, n, needed)
	}
	// The last character carries 5*n mod 8 bits that belong to no byte;
	// RFC 4648 §3.5 makes them zero. Rejecting other values keeps one
	// spelling per secret and catches a mistyped last character.
	if unused := 5 * n % 8; unused != 0 {
		if base32Value(clean[n-1])&(1<<unused-1) != 0 {
			// The character itself is part of the secret: don't quote it.
			return nil, errors.New("the last base32 character of the secret has non-zero unused bits: the secret is mistyped or truncated")
		}
	}
	b := make([]byte, b32().DecodedLen(n))
	m, err := b32().Decode(b, clean)
	if err != nil {
		// Unreachable: every character and the length were checked above.
		return nil, fmt.Errorf("decode base32 secret: %w", err)
	}
	return b[:m], nil
}
