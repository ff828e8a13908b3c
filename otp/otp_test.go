package otp_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// rfcSeed returns the RFC 6238 Appendix B seed of alg: the ASCII digits
// "1234567890" repeated to the hash's own length (20, 32 or 64 bytes), as
// erratum 2866 and the RFC's reference code have it.
func rfcSeed(t testing.TB, alg otp.Algorithm) []byte {
	t.Helper()
	n := map[otp.Algorithm]int{otp.SHA1: 20, otp.SHA256: 32, otp.SHA512: 64}[alg]
	if n == 0 {
		t.Fatalf("no RFC 6238 seed for %v", alg)
	}
	return []byte(strings.Repeat("1234567890", 7)[:n])
}

func TestHOTPMatchesRFC4226AppendixD(t *testing.T) {
	secret := []byte("12345678901234567890")
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for counter, code := range want {
		t.Run(fmt.Sprintf("counter %d gives %s", counter, code), func(t *testing.T) {
			if got := otp.HOTP(secret, uint64(counter), otp.SHA1, 6); got != code {
				t.Errorf("HOTP(counter %d) = %s, want %s", counter, got, code)
			}
		})
	}
}

func TestTOTPMatchesRFC6238AppendixB(t *testing.T) {
	tests := []struct {
		unix int64
		step uint64 // the "Value of T (hex)" column
		alg  otp.Algorithm
		want string
	}{
		{59, 0x1, otp.SHA1, "94287082"},
		{59, 0x1, otp.SHA256, "46119246"},
		{59, 0x1, otp.SHA512, "90693936"},
		{1111111109, 0x23523EC, otp.SHA1, "07081804"},
		{1111111109, 0x23523EC, otp.SHA256, "68084774"},
		{1111111109, 0x23523EC, otp.SHA512, "25091201"},
		{1111111111, 0x23523ED, otp.SHA1, "14050471"},
		{1111111111, 0x23523ED, otp.SHA256, "67062674"},
		{1111111111, 0x23523ED, otp.SHA512, "99943326"},
		{1234567890, 0x273EF07, otp.SHA1, "89005924"},
		{1234567890, 0x273EF07, otp.SHA256, "91819424"},
		{1234567890, 0x273EF07, otp.SHA512, "93441116"},
		{2000000000, 0x3F940AA, otp.SHA1, "69279037"},
		{2000000000, 0x3F940AA, otp.SHA256, "90698825"},
		{2000000000, 0x3F940AA, otp.SHA512, "38618901"},
		{20000000000, 0x27BC86AA, otp.SHA1, "65353130"},
		{20000000000, 0x27BC86AA, otp.SHA256, "77737706"},
		{20000000000, 0x27BC86AA, otp.SHA512, "47863826"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v at T=%d gives %s", tt.alg, tt.unix, tt.want), func(t *testing.T) {
			now := time.Unix(tt.unix, 0)
			p := otp.Params{Algorithm: tt.alg, Digits: 8, Period: 30}
			if got := otp.Step(now, 30); got != tt.step {
				t.Errorf("Step = %#x, want %#x", got, tt.step)
			}
			secret := rfcSeed(t, tt.alg)
			if got := otp.TOTP(secret, now, p); got != tt.want {
				t.Errorf("TOTP = %s, want %s", got, tt.want)
			}
			if step, ok := otp.Verify(secret, tt.want, tt.step, 0, 0, p); !ok || step != tt.step {
				t.Errorf("Verify(%s, step %#x, window 0) = %#x, %v; want %#x, true", tt.want, tt.step, step, ok, tt.step)
			}
		})
	}
}

func TestHOTPIsTheLastDigitsOfTheLongerCode(t *testing.T) {
	// Dynamic truncation takes the same 31-bit value modulo 10^digits, so
	// the 6- and 7-digit codes are suffixes of the 8-digit one.
	for _, alg := range []otp.Algorithm{otp.SHA1, otp.SHA256, otp.SHA512} {
		secret := rfcSeed(t, alg)
		for counter := uint64(0); counter < 50; counter++ {
			c8 := otp.HOTP(secret, counter, alg, 8)
			for _, d := range []int{6, 7} {
				if got := otp.HOTP(secret, counter, alg, d); got != c8[8-d:] {
					t.Errorf("%v counter %d: %d digits %s is not the end of %s", alg, counter, d, got, c8)
				}
			}
		}
	}
}

func TestAlgorithmStringNamesTheHash(t *testing.T) {
	tests := []struct {
		alg  otp.Algorithm
		want string
	}{
		{otp.SHA1, "SHA1"}, {otp.SHA256, "SHA256"}, {otp.SHA512, "SHA512"},
		{0, "Algorithm(0)"}, {4, "Algorithm(4)"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("algorithm %d prints as %s", int(tt.alg), tt.want), func(t *testing.T) {
			if got := tt.alg.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseAlgorithm(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want otp.Algorithm // 0: an error naming the input
	}{
		{"the canonical SHA1 is accepted", "SHA1", otp.SHA1},
		{"a dashed name is accepted", "SHA-1", otp.SHA1},
		{"lower case is accepted", "sha256", otp.SHA256},
		{"dashed lower case is accepted", "sha-256", otp.SHA256},
		{"mixed case is accepted", "Sha512", otp.SHA512},
		{"dashed mixed case is accepted", "sHa-512", otp.SHA512},
		{"an empty name is refused", "", 0},
		{"a bare SHA is refused", "SHA", 0},
		{"a doubled dash is refused", "SHA--1", 0},
		{"a leading dash is refused", "-SHA1", 0},
		{"an underscore is refused", "SHA_256", 0},
		{"surrounding spaces are refused", " SHA1 ", 0},
		{"MD5 is refused", "MD5", 0},
		{"SHA224 is refused", "SHA224", 0},
		{"SHA3 is refused", "SHA3-256", 0},
		{"a Unicode look-alike that strings.EqualFold would fold is refused", "ſha1", 0},
		{"a Kelvin sign look-alike is refused", "SHA-256\u212a", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := otp.ParseAlgorithm(tt.in)
			if tt.want != 0 {
				if err != nil || got != tt.want {
					t.Fatalf("ParseAlgorithm(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseAlgorithm(%q) = %v, want an error", tt.in, got)
			}
			if want := fmt.Sprintf("otp: unknown algorithm %q: want SHA1, SHA256 or SHA512", tt.in); err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
}

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       otp.Params
		wantErr string // "" for valid
	}{
		{"the defaults are valid", otp.DefaultParams(), ""},
		{"SHA512 with 8 digits and one hour is valid", otp.Params{Algorithm: otp.SHA512, Digits: 8, Period: 3600}, ""},
		{"SHA256 with 7 digits and one second is valid", otp.Params{Algorithm: otp.SHA256, Digits: 7, Period: 1}, ""},
		{"the zero algorithm is named", otp.Params{Digits: 6, Period: 30}, "otp: algorithm must be SHA1, SHA256 or SHA512, not Algorithm(0)"},
		{"an algorithm past SHA512 is named", otp.Params{Algorithm: 4, Digits: 6, Period: 30}, "otp: algorithm must be SHA1, SHA256 or SHA512, not Algorithm(4)"},
		{"5 digits are too few", otp.Params{Algorithm: otp.SHA1, Digits: 5, Period: 30}, "otp: digits must be 6, 7 or 8, not 5"},
		{"9 digits are too many", otp.Params{Algorithm: otp.SHA1, Digits: 9, Period: 30}, "otp: digits must be 6, 7 or 8, not 9"},
		{"a zero period is refused", otp.Params{Algorithm: otp.SHA1, Digits: 6}, "otp: period must be 1 to 3600 seconds, not 0"},
		{"a negative period is refused", otp.Params{Algorithm: otp.SHA1, Digits: 6, Period: -30}, "otp: period must be 1 to 3600 seconds, not -30"},
		{"a period over an hour is refused", otp.Params{Algorithm: otp.SHA1, Digits: 6, Period: 3601}, "otp: period must be 1 to 3600 seconds, not 3601"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", tt.p, err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Validate(%+v) = %v, want %q", tt.p, err, tt.wantErr)
			}
		})
	}
	if got, want := otp.DefaultParams(), (otp.Params{Algorithm: otp.SHA1, Digits: 6, Period: 30}); got != want {
		t.Errorf("DefaultParams() = %+v, want %+v", got, want)
	}
}

// requirePanic calls f and fails unless it panics with a message
// containing want.
func requirePanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want one containing %q", want)
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Fatalf("panic %q, want one containing %q", msg, want)
		}
	}()
	f()
}

func TestInvalidParametersPanicInsteadOfComputingACode(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		want string
		f    func()
	}{
		{"HOTP with the zero algorithm", "unknown algorithm Algorithm(0)", func() { otp.HOTP(secret, 1, 0, 6) }},
		{"HOTP with an algorithm past SHA512", "unknown algorithm Algorithm(4)", func() { otp.HOTP(secret, 1, 4, 6) }},
		{"HOTP with 5 digits", "digits must be 6, 7 or 8, not 5", func() { otp.HOTP(secret, 1, otp.SHA1, 5) }},
		{"HOTP with 9 digits", "digits must be 6, 7 or 8, not 9", func() { otp.HOTP(secret, 1, otp.SHA1, 9) }},
		{"TOTP with zero Params", "period must be 1 to 3600 seconds, not 0", func() { otp.TOTP(secret, now, otp.Params{}) }},
		{"Step with period 0", "period must be 1 to 3600 seconds, not 0", func() { otp.Step(now, 0) }},
		{"Step with a negative period", "not -30", func() { otp.Step(now, -30) }},
		{"StepStart with period 0", "period must be 1 to 3600 seconds, not 0", func() { otp.StepStart(1, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name+" panics", func(t *testing.T) { requirePanic(t, tt.want, tt.f) })
	}
}

func TestStep(t *testing.T) {
	tests := []struct {
		name   string
		t      time.Time
		period int
		want   uint64
	}{
		{"the epoch is step 0", time.Unix(0, 0), 30, 0},
		{"second 29 is still step 0", time.Unix(29, 999_999_999), 30, 0},
		{"second 30 starts step 1", time.Unix(30, 0), 30, 1},
		{"a time before 1970 is step 0", time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), 30, 0},
		{"the zero time.Time is step 0", time.Time{}, 30, 0},
		{"the last second of int32 time", time.Unix(1<<31-1, 0), 30, 71582788},
		{"the first second past int32 time (2038)", time.Unix(1<<31, 0), 30, 71582788},
		{"the first second past uint32 time (2106)", time.Unix(1<<32, 0), 30, 143165576},
		{"the year 2603 from RFC 6238", time.Unix(20_000_000_000, 0), 30, 666666666},
		{"the time zone does not matter", time.Unix(59, 0).In(time.FixedZone("UTC-11", -11*3600)), 30, 1},
		{"a 60-second period halves the step", time.Unix(1_700_000_000, 0), 60, 28333333},
		{"a 1-second period is the Unix time", time.Unix(1_700_000_000, 0), 1, 1_700_000_000},
		{"the latest time.Time does not overflow", time.Unix(math.MaxInt64-62135596800, 0), 1, math.MaxInt64 - 62135596800},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := otp.Step(tt.t, tt.period); got != tt.want {
				t.Errorf("Step(%v, %d) = %d, want %d", tt.t, tt.period, got, tt.want)
			}
		})
	}
}

func TestStepStartIsTheFirstSecondOfTheStep(t *testing.T) {
	for _, period := range []int{1, 30, 60, 3600} {
		for _, step := range []uint64{0, 1, 59_999, 1<<31/uint64(period) + 1, 1<<32/uint64(period) + 7, 20_000_000_000 / uint64(period)} {
			start := otp.StepStart(step, period)
			if start.Location() != time.UTC {
				t.Errorf("StepStart(%d, %d) is in %v, want UTC", step, period, start.Location())
			}
			if got := otp.Step(start, period); got != step {
				t.Errorf("Step(StepStart(%d, %d)) = %d", step, period, got)
			}
			if step > 0 {
				if got := otp.Step(start.Add(-time.Nanosecond), period); got != step-1 {
					t.Errorf("a nanosecond before StepStart(%d, %d) is step %d, want %d", step, period, got, step-1)
				}
			}
		}
	}
}

func TestStepStartSaturatesInsteadOfWrappingAround(t *testing.T) {
	far := otp.StepStart(1<<40, 30)
	for _, step := range []uint64{math.MaxInt64 / 30, math.MaxInt64, math.MaxUint64} {
		got := otp.StepStart(step, 30)
		if got.Before(far) {
			t.Errorf("StepStart(%d, 30) = %v, before StepStart(2^40, 30) = %v", step, got, far)
		}
	}
	if a, b := otp.StepStart(math.MaxUint64, 3600), otp.StepStart(math.MaxUint64/2, 30); !a.Equal(b) {
		t.Errorf("saturated StepStart values differ: %v and %v", a, b)
	}
}

// windowFixture returns the codes for steps center-3..center+3 (index i is
// offset i-3) and fails if two of them collide, which would make "only the
// window matches" ambiguous. The inputs are fixed, so this never flakes.
func windowFixture(t *testing.T, secret []byte, center uint64, p otp.Params) [7]string {
	t.Helper()
	var codes [7]string
	seen := map[string]int{}
	for i := range codes {
		codes[i] = otp.HOTP(secret, center+uint64(i)-3, p.Algorithm, p.Digits)
		if j, dup := seen[codes[i]]; dup {
			t.Fatalf("fixture: offsets %d and %d share the code %s; pick another secret", j-3, i-3, codes[i])
		}
		seen[codes[i]] = i
	}
	return codes
}

// TestVerifyWindowEdges: with a skew of 1, a code passes only for
// the steps center-1..center+1, wherever in its step "now" falls, including
// around the 2^31 and 2^32 second boundaries, and the matched step is
// returned.
func TestVerifyWindowEdges(t *testing.T) {
	bases := []struct {
		name string
		unix int64
	}{
		{"in 2023", 1_700_000_000},
		{"near 2^31 s (2038)", 1 << 31},
		{"near 2^32 s (2106)", 1 << 32},
	}
	for _, alg := range []otp.Algorithm{otp.SHA1, otp.SHA256, otp.SHA512} {
		p := otp.Params{Algorithm: alg, Digits: 6, Period: 30}
		secret := rfcSeed(t, alg)
		for _, base := range bases {
			for _, sec := range []int64{0, 1, 29} {
				now := time.Unix(base.unix-base.unix%30+sec, 0)
				center := otp.Step(now, p.Period)
				codes := windowFixture(t, secret, center, p)
				for off := -3; off <= 3; off++ {
					inWindow := off >= -1 && off <= 1
					verdict := "rejected"
					if inWindow {
						verdict = "accepted"
					}
					name := fmt.Sprintf("%v at second %d of a step %s, the code of offset %+d is %s", alg, sec, base.name, off, verdict)
					t.Run(name, func(t *testing.T) {
						step, ok := otp.Verify(secret, codes[off+3], center, 1, 1, p)
						if ok != inWindow {
							t.Fatalf("Verify(offset %+d) ok = %v, want %v", off, ok, inWindow)
						}
						if want := center + uint64(off); ok && step != want {
							t.Fatalf("Verify(offset %+d) step = %d, want %d", off, step, want)
						}
						if !ok && step != 0 {
							t.Fatalf("a rejected code returned step %d, want 0", step)
						}
					})
				}
			}
		}
	}
}

func TestVerifyWindowIsAsymmetric(t *testing.T) {
	secret := rfcSeed(t, otp.SHA1)
	p := otp.DefaultParams()
	center := otp.Step(time.Unix(1_700_000_000, 0), 30)
	codes := windowFixture(t, secret, center, p)
	tests := []struct {
		name          string
		before, after int
		accepted      []int // offsets
	}{
		{"two steps back and none ahead", 2, 0, []int{-2, -1, 0}},
		{"none back and one ahead", 0, 1, []int{0, 1}},
		{"only the centre", 0, 0, []int{0}},
		{"three back and two ahead", 3, 2, []int{-3, -2, -1, 0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("a window of %s accepts exactly offsets %v", tt.name, tt.accepted), func(t *testing.T) {
			for off := -3; off <= 3; off++ {
				want := false
				for _, a := range tt.accepted {
					want = want || a == off
				}
				step, ok := otp.Verify(secret, codes[off+3], center, tt.before, tt.after, p)
				if ok != want || (ok && step != center+uint64(off)) {
					t.Errorf("offset %+d: step %d, ok %v; want ok %v", off, step, ok, want)
				}
			}
		})
	}
}

func TestVerifyWindowClampsAtTheEndsOfTheStepRange(t *testing.T) {
	secret := rfcSeed(t, otp.SHA1)
	p := otp.DefaultParams()
	code := func(step uint64) string { return otp.HOTP(secret, step, p.Algorithm, p.Digits) }
	tests := []struct {
		name          string
		code          string
		center        uint64
		before, after int
		wantStep      uint64
		wantOK        bool
	}{
		{"step 0 is checked when the window reaches below it", code(0), 0, 3, 0, 0, true},
		{"step 0 is checked from centre 1 with skew 5", code(0), 1, 5, 5, 0, true},
		{"step 2 is still reached from centre 0", code(2), 0, 3, 2, 2, true},
		{"the window below 0 does not wrap to the largest step", code(math.MaxUint64), 0, 1, 1, 0, false},
		{"the window below 0 does not wrap to the second largest step", code(math.MaxUint64 - 1), 1, 3, 0, 0, false},
		{"the largest step is checked", code(math.MaxUint64), math.MaxUint64, 1, 1, math.MaxUint64, true},
		{"the window above the largest step does not wrap to step 0", code(0), math.MaxUint64, 0, 3, 0, false},
		{"a huge before from a small centre is clamped", code(0), 2, math.MaxInt, 0, 0, true},
		{"a huge after from the largest step is clamped", code(math.MaxUint64 - 1), math.MaxUint64, 1, math.MaxInt, math.MaxUint64 - 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, ok := otp.Verify(secret, tt.code, tt.center, tt.before, tt.after, p)
			if ok != tt.wantOK || step != tt.wantStep {
				t.Errorf("Verify(center %d, -%d/+%d) = %d, %v; want %d, %v", tt.center, tt.before, tt.after, step, ok, tt.wantStep, tt.wantOK)
			}
		})
	}
}

func TestVerifyRefusesWithoutMatching(t *testing.T) {
	secret := rfcSeed(t, otp.SHA1)
	p := otp.DefaultParams()
	center := uint64(1000)
	good := otp.HOTP(secret, center, p.Algorithm, p.Digits)
	tests := []struct {
		name          string
		code          string
		before, after int
		p             otp.Params
	}{
		{"an empty code", "", 1, 1, p},
		{"the right code with a trailing newline", good + "\n", 1, 1, p},
		{"the right code with a leading space", " " + good, 1, 1, p},
		{"the right code with one digit missing", good[1:], 1, 1, p},
		{"the right code under 8-digit params", good, 1, 1, otp.Params{Algorithm: otp.SHA1, Digits: 8, Period: 30}},
		{"the right code with an unknown algorithm", good, 1, 1, otp.Params{Digits: 6, Period: 30}},
		{"the right code with a zero period", good, 1, 1, otp.Params{Algorithm: otp.SHA1, Digits: 6}},
		{"the right code with a negative before", good, -1, 1, p},
		{"the right code with a negative after", good, 1, -1, p},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			if step, ok := otp.Verify(secret, tt.code, center, tt.before, tt.after, tt.p); ok || step != 0 {
				t.Errorf("Verify(%q) = %d, %v; want 0, false", tt.code, step, ok)
			}
		})
	}
	if step, ok := otp.Verify(secret, good, center, 1, 1, p); !ok || step != center {
		t.Fatalf("control: the right code gives %d, %v; want %d, true", step, ok, center)
	}
}

func TestVerifyReturnsTheEarliestOfCollidingSteps(t *testing.T) {
	// Find two steps with the same 6-digit code (the birthday bound makes
	// one likely within a few thousand steps) and put both in a window.
	secret := rfcSeed(t, otp.SHA1)
	p := otp.DefaultParams()
	first := map[string]uint64{}
	var a, b uint64
	found := false
	for s := uint64(0); s < 20000 && !found; s++ {
		c := otp.HOTP(secret, s, p.Algorithm, p.Digits)
		if prev, dup := first[c]; dup {
			a, b, found = prev, s, true
		}
		first[c] = s
	}
	if !found {
		t.Fatal("fixture: no colliding steps below 20000")
	}
	code := otp.HOTP(secret, b, p.Algorithm, p.Digits)
	width := int(b - a)
	for _, center := range []uint64{a, b, (a + b) / 2} {
		step, ok := otp.Verify(secret, code, center, width, width, p)
		if !ok || step != a {
			t.Errorf("steps %d and %d share %s; Verify(center %d, ±%d) = %d, %v; want %d, true", a, b, code, center, width, step, ok, a)
		}
	}
	if step, ok := otp.Verify(secret, code, b, 0, 0, p); !ok || step != b {
		t.Errorf("a window holding only step %d gives %d, %v", b, step, ok)
	}
}

func TestVerifyAllocatesOnlyTheHMACStateWhateverTheWindow(t *testing.T) {
	secret := rfcSeed(t, otp.SHA1)
	p := otp.DefaultParams()
	code := otp.HOTP(secret, 500, p.Algorithm, p.Digits)
	// The HMAC state: hmac.New, plus the snapshot of the keyed pads that
	// its first Reset takes.
	var buf [sha1.Size]byte
	hmacState := testing.AllocsPerRun(100, func() {
		m := hmac.New(sha1.New, secret)
		m.Write(buf[:8])
		m.Sum(buf[:0])
		m.Reset()
	})
	narrow := testing.AllocsPerRun(100, func() { otp.Verify(secret, code, 500, 1, 1, p) })
	wide := testing.AllocsPerRun(100, func() { otp.Verify(secret, code, 500, 20, 20, p) })
	if wide != narrow {
		t.Errorf("Verify allocates %v times for 41 steps but %v for 3: allocations grow with the window", wide, narrow)
	}
	// One more than hmac.New: the scratch buffer for counter and MAC.
	if narrow > hmacState+1 {
		t.Errorf("Verify allocates %v times; the HMAC state alone allocates %v", narrow, hmacState)
	}
	if invalid := testing.AllocsPerRun(100, func() { otp.Verify(secret, "12345x", 500, 1, 1, p) }); invalid != 0 {
		t.Errorf("Verify allocates %v times for a malformed code, want 0", invalid)
	}
}

func TestValidCode(t *testing.T) {
	tests := []struct {
		name   string
		code   string
		digits int
		want   bool
	}{
		{"six ASCII digits are valid for 6", "123456", 6, true},
		{"a leading zero is kept", "012345", 6, true},
		{"eight ASCII digits are valid for 8", "12345678", 8, true},
		{"seven ASCII digits are valid for 7", "0000000", 7, true},
		{"five digits are too short for 6", "12345", 6, false},
		{"seven digits are too long for 6", "1234567", 6, false},
		{"six digits are too short for 8", "123456", 8, false},
		{"a leading space is refused", " 123456", 6, false},
		{"a trailing newline is refused", "123456\n", 6, false},
		{"an inner space is refused", "123 456", 6, false},
		{"a letter is refused", "12345a", 6, false},
		{"a plus sign is refused", "+12345", 6, false},
		{"a minus sign is refused", "-12345", 6, false},
		{"a NUL byte is refused", "12345\x00", 6, false},
		{"Arabic-Indic digits are refused", "١٢٣٤٥٦", 6, false},
		{"fullwidth digits are refused", "１２３４５６", 6, false},
		{"Devanagari digits are refused", "१२३४५६", 6, false},
		{"superscript digits are refused", "¹²³⁴⁵⁶", 6, false},
		{"the empty string is refused", "", 6, false},
		{"four digits are refused even when asked for 4", "1234", 4, false},
		{"nine digits are refused even when asked for 9", "123456789", 9, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := otp.ValidCode(tt.code, tt.digits); got != tt.want {
				t.Errorf("ValidCode(%q, %d) = %v, want %v", tt.code, tt.digits, got, tt.want)
			}
		})
	}
}
