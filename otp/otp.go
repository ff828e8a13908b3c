package otp

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HOTP is defined over HMAC-SHA1 (RFC 4226), and most authenticator apps only do SHA-1
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
	"math"
	"math/bits"
	"time"
)

// Algorithm is the hash function of the HMAC behind an OTP.
type Algorithm int

// The hash functions of RFC 6238. The zero Algorithm is not valid.
const (
	SHA1 Algorithm = iota + 1
	SHA256
	SHA512
)

// String returns the name used in otpauth URIs: "SHA1", "SHA256" or
// "SHA512", and "Algorithm(n)" for any other value.
func (a Algorithm) String() string {
	switch a {
	case SHA1:
		return "SHA1"
	case SHA256:
		return "SHA256"
	case SHA512:
		return "SHA512"
	}
	return fmt.Sprintf("Algorithm(%d)", int(a))
}

// newHash returns the constructor of a's hash, or nil for an unknown a.
func (a Algorithm) newHash() func() hash.Hash {
	switch a {
	case SHA1:
		return sha1.New
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	return nil
}

// ParseAlgorithm parses an algorithm name, ignoring ASCII case: "SHA1",
// "SHA-1", "sha256", "Sha-512" and so on. Only ASCII letters fold, so a
// look-alike such as "ſha1" (with U+017F) is an error.
func ParseAlgorithm(s string) (Algorithm, error) {
	for _, a := range []Algorithm{SHA1, SHA256, SHA512} {
		name := a.String()          // "SHA256"
		dashed := "SHA-" + name[3:] // "SHA-256"
		if asciiEqualFold(s, name) || asciiEqualFold(s, dashed) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("otp: unknown algorithm %q: want SHA1, SHA256 or SHA512", s)
}

// asciiEqualFold reports whether s equals upper (which is upper case ASCII)
// when ASCII letters in s are folded to upper case. Unlike
// strings.EqualFold it folds nothing outside ASCII.
func asciiEqualFold(s, upper string) bool {
	if len(s) != len(upper) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// Limits of Params, checked by Params.Validate.
const (
	minDigits = 6 // RFC 4226 §5.3
	maxDigits = 8 // what authenticator apps support
	minPeriod = 1
	maxPeriod = 3600
)

// Params are the parameters shared by all codes of a secret.
type Params struct {
	// Algorithm is the HMAC hash function.
	Algorithm Algorithm
	// Digits is the length of a code, 6 to 8.
	Digits int
	// Period is the TOTP time step in seconds, 1 to 3600.
	Period int
}

// DefaultParams returns what every authenticator app supports: SHA1, 6
// digits and a 30-second period.
func DefaultParams() Params { return Params{Algorithm: SHA1, Digits: 6, Period: 30} }

// Validate reports whether p describes codes this package can produce. The
// error names the offending field.
func (p Params) Validate() error {
	switch {
	case p.Algorithm.newHash() == nil:
		return fmt.Errorf("otp: algorithm must be SHA1, SHA256 or SHA512, not %v", p.Algorithm)
	case p.Digits < minDigits || p.Digits > maxDigits:
		return fmt.Errorf("otp: digits must be 6, 7 or 8, not %d", p.Digits)
	case p.Period < minPeriod || p.Period > maxPeriod:
		return fmt.Errorf("otp: period must be 1 to 3600 seconds, not %d", p.Period)
	}
	return nil
}

// generator computes HOTP values for one secret. It holds one HMAC state,
// reset for every counter, and a scratch buffer for the counter and the MAC,
// so computing a value allocates nothing.
type generator struct {
	mac    hash.Hash
	buf    [sha512.Size]byte
	digits int
	mod    uint32
	used   bool // mac has absorbed a counter and needs a Reset
}

// newGenerator returns a generator, panicking on an unknown algorithm or
// digits outside 6..8.
func newGenerator(secret []byte, alg Algorithm, digits int) *generator {
	h := alg.newHash()
	if h == nil {
		panic(fmt.Sprintf("otp: unknown algorithm %v", alg))
	}
	if digits < minDigits || digits > maxDigits {
		panic(fmt.Sprintf("otp: digits must be 6, 7 or 8, not %d", digits))
	}
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return &generator{mac: hmac.New(h, secret), digits: digits, mod: mod}
}

// code writes the zero-padded code for counter into dst and returns it as
// dst[:g.digits].
func (g *generator) code(counter uint64, dst *[maxDigits]byte) []byte {
	if g.used {
		// The first Reset snapshots the keyed pads, so later ones cost no
		// compression; a fresh state needs none.
		g.mac.Reset()
	}
	g.used = true
	binary.BigEndian.PutUint64(g.buf[:8], counter)
	g.mac.Write(g.buf[:8])
	sum := g.mac.Sum(g.buf[:0])
	// Dynamic truncation, RFC 4226 §5.3.
	off := sum[len(sum)-1] & 0x0f
	v := (binary.BigEndian.Uint32(sum[off:]) & 0x7fffffff) % g.mod
	out := dst[:g.digits]
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = byte('0' + v%10)
		v /= 10
	}
	return out
}

// HOTP returns the RFC 4226 code of secret for counter: the dynamically
// truncated HMAC, zero-padded to digits. It panics if alg is unknown or
// digits is not 6, 7 or 8.
func HOTP(secret []byte, counter uint64, alg Algorithm, digits int) string {
	var out [maxDigits]byte
	return string(newGenerator(secret, alg, digits).code(counter, &out))
}

// checkPeriod panics on a period that Params.Validate rejects.
func checkPeriod(period int) {
	if period < minPeriod || period > maxPeriod {
		panic(fmt.Sprintf("otp: period must be 1 to 3600 seconds, not %d", period))
	}
}

// Step returns the TOTP time step containing t: floor(unix seconds /
// period). Times before 1970 map to step 0. The step is 64-bit, so 2038
// and 2106 are not limits (RFC 6238 §4.2). It panics if period is not 1 to
// 3600.
func Step(t time.Time, period int) uint64 {
	checkPeriod(period)
	u := t.Unix()
	if u < 0 {
		return 0
	}
	return uint64(u) / uint64(period) //nolint:gosec // u >= 0 here and checkPeriod bounds period to 1..3600
}

// unixToInternal is the offset between Unix time and the time package's
// internal epoch (year 1); time.Unix(s, 0) overflows when s exceeds
// math.MaxInt64 minus it.
const unixToInternal int64 = (1969*365 + 1969/4 - 1969/100 + 1969/400) * 24 * 60 * 60

// StepStart returns the first instant of step, in UTC. A step starting
// beyond what time.Time can represent gives the latest representable
// second instead of wrapping around. It panics if period is not 1 to 3600.
func StepStart(step uint64, period int) time.Time {
	checkPeriod(period)
	const maxUnix = math.MaxInt64 - unixToInternal
	hi, sec := bits.Mul64(step, uint64(period)) //nolint:gosec // checkPeriod bounds period to 1..3600
	if hi != 0 || sec > uint64(maxUnix) {
		sec = uint64(maxUnix)
	}
	return time.Unix(int64(sec), 0).UTC()
}

// TOTP returns the RFC 6238 code of secret at time t. It panics if p is not
// valid (see Params.Validate).
func TOTP(secret []byte, t time.Time, p Params) string {
	checkPeriod(p.Period)
	return HOTP(secret, Step(t, p.Period), p.Algorithm, p.Digits)
}

// ValidCode reports whether code is exactly digits ASCII digits '0'-'9':
// no spaces, no sign, no digits of other scripts. Digits outside 6..8 never
// give a valid code.
func ValidCode(code string, digits int) bool {
	if digits < minDigits || digits > maxDigits || len(code) != digits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// Verify checks code against the steps center-before through center+after,
// clamped to the range of uint64 (so near step 0 the window simply starts
// at 0), and returns the step whose code matched. If several steps match,
// the earliest is returned.
//
// Every step in the window is computed and compared in constant time
// (crypto/subtle), with no early exit, so the time taken does not reveal
// whether or where the code matched. The cost is one HMAC per step; the
// only allocations are the HMAC state and one scratch buffer, whatever the
// window size.
//
// Verify returns ok=false at once, without computing anything, if code
// fails ValidCode, if p is not valid, or if before or after is negative.
// Refusing a second use of the returned step is the caller's job.
func Verify(secret []byte, code string, center uint64, before, after int, p Params) (step uint64, ok bool) {
	if !ValidCode(code, p.Digits) || p.Validate() != nil || before < 0 || after < 0 {
		return 0, false
	}
	lo := center - min(uint64(before), center)
	hi := center + min(uint64(after), math.MaxUint64-center)
	var want, got [maxDigits]byte
	copy(want[:], code)
	g := newGenerator(secret, p.Algorithm, p.Digits)
	found := 0
	for s := lo; ; s++ {
		eq := subtle.ConstantTimeCompare(g.code(s, &got), want[:p.Digits])
		// first is 1 only for the first matching step; select it without
		// a branch on the comparison result.
		first := eq &^ found
		mask := -uint64(first) //nolint:gosec // first is 0 or 1
		step = step&^mask | s&mask
		found |= eq
		if s == hi {
			break
		}
	}
	return step, found == 1
}
