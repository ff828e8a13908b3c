package otp

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
)

// Secret sizes. RFC 4226 R6 requires at least 128 bits and recommends 160.
const (
	MinSecretBytes     = 16
	DefaultSecretBytes = 20
	maxSecretBytes     = 128
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// GenerateSecret returns n random bytes from crypto/rand.
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

// CheckSecretLength refuses secrets below RFC 4226's 128-bit floor.
func CheckSecretLength(b []byte) error {
	if len(b) < MinSecretBytes {
		return fmt.Errorf("%w: secret is %d bits; at least %d bits are required", ErrShortSecret, 8*len(b), 8*MinSecretBytes)
	}
	return nil
}

// EncodeSecret encodes b as RFC 4648 base32, upper case, without padding,
// as authenticator apps expect.
func EncodeSecret(b []byte) string { return b32.EncodeToString(b) }

// DecodeSecret decodes a base32 secret as people paste it: any case,
// spaces and hyphens between groups, with or without '=' padding. Any
// other character is an error naming it and its position.
func DecodeSecret(s string) ([]byte, error) {
	var clean strings.Builder
	pos := 0
	for _, r := range s {
		pos++
		switch {
		case r == ' ' || r == '-' || r == '\t':
			continue
		case r == '=':
			continue
		case r >= 'a' && r <= 'z':
			clean.WriteRune(r - 'a' + 'A')
		case r >= 'A' && r <= 'Z', r >= '2' && r <= '7':
			clean.WriteRune(r)
		default:
			return nil, fmt.Errorf("otp: invalid base32 character %q at position %d (allowed: A-Z and 2-7)", r, pos)
		}
	}
	if clean.Len() == 0 {
		return nil, fmt.Errorf("otp: empty secret")
	}
	if trimmed := strings.TrimRight(strings.TrimSpace(s), "="); strings.Contains(trimmed, "=") {
		return nil, fmt.Errorf("otp: '=' padding may only appear at the end of the secret")
	}
	b, err := b32.DecodeString(clean.String())
	if err != nil {
		return nil, fmt.Errorf("otp: secret of %d base32 characters has an impossible length", clean.Len())
	}
	return b, nil
}
