package store

import (
	"crypto/rand"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// recoveryAlphabet is Crockford's base32 in lower case (no i, l, o, u).
const recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// recoveryLen is the number of symbols in a recovery code: 12 × 5 = 60
// bits, above NIST SP 800-63B's look-up secret minimum.
const recoveryLen = 12

// Argon2id parameters for recovery-code hashes: 8 MiB, one pass. Codes
// have 60 bits of entropy, so the KDF is there to make an offline search of
// a stolen database costly, not to stretch a weak secret.
const (
	argonTime    = 1
	argonMemory  = 8 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// GenerateRecoveryCodes returns n distinct codes like "7k2m-q9xd-4hfa".
func GenerateRecoveryCodes(n int) ([]string, error) {
	seen := map[string]bool{}
	var codes []string
	for len(codes) < n {
		var b [recoveryLen]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("store: recovery codes: %w", err)
		}
		var sb strings.Builder
		for i, c := range b {
			if i > 0 && i%4 == 0 {
				sb.WriteByte('-')
			}
			sb.WriteByte(recoveryAlphabet[c&31])
		}
		if c := sb.String(); !seen[c] {
			seen[c] = true
			codes = append(codes, c)
		}
	}
	return codes, nil
}

// NormalizeRecoveryCode maps what a user types to the canonical form:
// lower case, without spaces and hyphens, with Crockford's substitutions
// (i and l read as 1, o as 0). ok is false unless the result is exactly
// 12 symbols of the alphabet.
func NormalizeRecoveryCode(s string) (string, bool) {
	var sb strings.Builder
	for _, r := range strings.ToLower(s) {
		switch r {
		case ' ', '-':
			continue
		case 'i', 'l':
			r = '1'
		case 'o':
			r = '0'
		}
		if !strings.ContainsRune(recoveryAlphabet, r) {
			return "", false
		}
		sb.WriteRune(r)
	}
	if sb.Len() != recoveryLen {
		return "", false
	}
	return sb.String(), true
}

// NewRecoverySalt returns a fresh 16-byte salt.
func NewRecoverySalt() ([]byte, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("store: salt: %w", err)
	}
	return salt, nil
}

// HashRecoveryCode hashes a normalized recovery code with argon2id.
func HashRecoveryCode(salt []byte, normalized string) []byte {
	return argon2.IDKey([]byte(normalized), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
}
