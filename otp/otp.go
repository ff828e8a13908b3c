package otp

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"
)

// Algorithm is the HMAC hash function of an OTP.
type Algorithm int

// The algorithms of RFC 6238.
const (
	SHA1 Algorithm = iota + 1
	SHA256
	SHA512
)

// String returns the name used in otpauth URIs: "SHA1", "SHA256" or "SHA512".
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

// ParseAlgorithm parses "SHA1", "SHA-256", "sha512" and the like.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ReplaceAll(strings.ToUpper(s), "-", "") {
	case "SHA1":
		return SHA1, nil
	case "SHA256":
		return SHA256, nil
	case "SHA512":
		return SHA512, nil
	}
	return 0, fmt.Errorf("otp: unknown algorithm %q (want SHA1, SHA256 or SHA512)", s)
}

func (a Algorithm) hash() func() hash.Hash {
	switch a {
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	return sha1.New
}

// Params are the parameters shared by a secret's codes.
type Params struct {
	Algorithm Algorithm
	Digits    int
	// Period is the TOTP time step in seconds.
	Period int
}

// DefaultParams are what every authenticator app supports: SHA1, 6 digits,
// 30 seconds.
func DefaultParams() Params { return Params{Algorithm: SHA1, Digits: 6, Period: 30} }

// Validate checks that p describes codes this package can produce.
func (p Params) Validate() error {
	switch {
	case p.Algorithm < SHA1 || p.Algorithm > SHA512:
		return fmt.Errorf("otp: algorithm must be SHA1, SHA256 or SHA512, not %v", p.Algorithm)
	case p.Digits < 6 || p.Digits > 8:
		return fmt.Errorf("otp: digits must be 6 to 8, not %d", p.Digits)
	case p.Period < 1 || p.Period > 3600:
		return fmt.Errorf("otp: period must be 1 to 3600 seconds, not %d", p.Period)
	}
	return nil
}

var pow10 = [...]uint32{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

// truncate is RFC 4226 dynamic truncation of an HMAC value to digits.
func truncate(sum []byte, digits int) uint32 {
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:]) & 0x7fffffff
	return bin % pow10[digits]
}

// format writes v as digits zero-padded decimal digits into dst.
func format(dst []byte, v uint32) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

// HOTP returns the RFC 4226 code for counter, zero-padded to digits.
func HOTP(secret []byte, counter uint64, alg Algorithm, digits int) string {
	if digits < 1 || digits > 8 {
		panic("otp: digits out of range")
	}
	m := hmac.New(alg.hash(), secret)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], counter)
	m.Write(c[:])
	var buf [8]byte
	format(buf[:digits], truncate(m.Sum(nil), digits))
	return string(buf[:digits])
}

// Step returns the TOTP time step containing t: floor(unix seconds /
// period). Times before 1970 map to step 0. The step is 64-bit, so the
// year 2038 is not a limit (RFC 6238 §4.2).
func Step(t time.Time, period int) uint64 {
	u := t.Unix()
	if u < 0 {
		return 0
	}
	return uint64(u) / uint64(period)
}

// StepStart returns the first instant of step.
func StepStart(step uint64, period int) time.Time {
	return time.Unix(int64(step*uint64(period)), 0)
}

// TOTP returns the RFC 6238 code at time t.
func TOTP(secret []byte, t time.Time, p Params) string {
	return HOTP(secret, Step(t, p.Period), p.Algorithm, p.Digits)
}

// ValidCode reports whether code is exactly digits ASCII digits: no
// spaces, signs, or digits of other scripts.
func ValidCode(code string, digits int) bool {
	if digits < 1 || digits > 8 || len(code) != digits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// Verify checks code against the steps center-before through center+after
// (steps below 0 are skipped) and returns the step that matched. Every step
// in the window is computed and compared in constant time, so the time
// taken does not reveal which step matched. A code that is not exactly
// p.Digits ASCII digits never matches.
func Verify(secret []byte, code string, center uint64, before, after int, p Params) (step uint64, ok bool) {
	if !ValidCode(code, p.Digits) || before < 0 || after < 0 {
		return 0, false
	}
	m := hmac.New(p.Algorithm.hash(), secret)
	var sum [sha512.Size]byte
	var c [8]byte
	var got [8]byte
	want := []byte(code)
	first := int64(center) - int64(before)
	for s := first; s <= int64(center)+int64(after); s++ {
		if s < 0 {
			continue
		}
		m.Reset()
		binary.BigEndian.PutUint64(c[:], uint64(s))
		m.Write(c[:])
		format(got[:p.Digits], truncate(m.Sum(sum[:0]), p.Digits))
		if subtle.ConstantTimeCompare(got[:p.Digits], want) == 1 && !ok {
			step, ok = uint64(s), true
		}
	}
	return step, ok
}

// ErrShortSecret is returned for secrets shorter than MinSecretBytes.
var ErrShortSecret = errors.New("otp: secret too short")
