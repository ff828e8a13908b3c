// Package recovery makes otpgate's recovery codes and hashes them with
// argon2id: the daemon keeps only the hashes, and shows the codes once.
package recovery

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// alphabet is Crockford's base32 in lower case (no i, l, o, u).
const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// codeLen is the number of symbols in a code: 12 × 5 = 60
// bits, above NIST SP 800-63B's look-up secret minimum.
const codeLen = 12

// Argon2id parameters for recovery-code hashes: one pass over 4 MiB, one
// lane, 32-byte output. Codes have 60 bits of entropy, so the KDF is there
// to make an offline search of a stolen database costly, not to stretch a
// weak secret; a verify attempt pays one KDF, about 4 ms on the
// reference machine (BenchmarkHash, docs/BENCHMARKS.md). Changing any of
// these makes every stored hash unverifiable: TestHashKnownAnswer pins
// them.
const (
	argonTime    = 1
	argonMemory  = 4 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// MaxCodes bounds Generate: each code costs one KDF at enrollment and
// one stored hash.
const MaxCodes = 100

// Generate returns n distinct random codes like "7k2m-q9xd-4hfa": 12
// symbols of Crockford's base32 (60 bits), lower case, in groups of four.
// Normalize maps them to the form Hash takes.
func Generate(n int) ([]string, error) {
	if n < 1 || n > MaxCodes {
		return nil, fmt.Errorf("recovery: code count %d out of range; it must be 1 to %d", n, MaxCodes)
	}
	seen := make(map[string]bool, n)
	codes := make([]string, 0, n)
	for len(codes) < n {
		var b [codeLen]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("recovery: random codes: %w", err)
		}
		var sb strings.Builder
		for i, c := range b {
			if i > 0 && i%4 == 0 {
				sb.WriteByte('-')
			}
			sb.WriteByte(alphabet[c&31])
		}
		// 256 is a multiple of 32, so c&31 is uniform.
		if c := sb.String(); !seen[c] {
			seen[c] = true
			codes = append(codes, c)
		}
	}
	return codes, nil
}

// Normalize maps what a user types to the canonical form:
// lower case, without spaces and hyphens, with Crockford's substitutions
// (i and l read as 1, o as 0). ok is false unless the result is exactly
// 12 symbols of the alphabet.
func Normalize(s string) (string, bool) {
	out := make([]byte, 0, codeLen)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch c {
		case ' ', '-':
			continue
		case 'i', 'l':
			c = '1'
		case 'o':
			c = '0'
		}
		// Byte-wise on purpose: only ASCII is accepted, so Unicode case
		// folding (the Kelvin sign lowers to 'k') cannot sneak in.
		if strings.IndexByte(alphabet, c) < 0 || len(out) == codeLen {
			return "", false
		}
		out = append(out, c)
	}
	if len(out) != codeLen {
		return "", false
	}
	return string(out), true
}

// SaltSize is the size of NewSalt's salts.
const SaltSize = 16

// NewSalt returns a fresh random salt for one enrollment's codes.
func NewSalt() ([]byte, error) {
	salt := make([]byte, SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("recovery: salt: %w", err)
	}
	return salt, nil
}

// kdfSlots bounds how many Hash calls run at once. Each needs argonMemory
// KiB, so a burst of concurrent attempts cannot make the
// daemon allocate without limit; with one lane per call, more than
// GOMAXPROCS at once would not finish sooner anyway.
var kdfSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// Hash hashes a normalized recovery code with argon2id (see the
// parameters above). Verify an attempt by hashing it once with the
// enrollment's salt and comparing the result with every stored hash using
// crypto/subtle.ConstantTimeCompare.
func Hash(salt []byte, normalized string) []byte {
	kdfSlots <- struct{}{}
	defer func() { <-kdfSlots }()
	return argon2.IDKey([]byte(normalized), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
}
