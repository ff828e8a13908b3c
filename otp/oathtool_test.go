package otp_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// requireOathtool returns the path of oathtool (OATH Toolkit), the
// independent generator the cross-checks compare with.
func requireOathtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("oathtool")
	if err != nil {
		t.Fatal("oathtool not found: apt-get install oathtool")
	}
	return path
}

// oathtoolCodes runs oathtool with args, passing the secret as base32 on
// stdin (never on the command line, where other users could read it), and
// returns the codes it prints, one per line.
func oathtoolCodes(t *testing.T, path string, secret []byte, args ...string) []string {
	t.Helper()
	cmd := exec.Command(path, append(args, "-b", "-")...)
	cmd.Stdin = strings.NewReader(otp.EncodeSecret(secret) + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("oathtool %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return strings.Fields(string(out))
}

// oracleRand returns a random source and its seed, for failure messages.
func oracleRand() (*rand.Rand, uint64) {
	seed := rand.Uint64()
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed
}

// TestTOTPAgreesWithOathtool is the independent check of the generator: random secrets of
// 16 to 64 bytes, all three hashes, 6 to 8 digits, several periods, and
// times at and around step edges, the 2^31 and 2^32 second boundaries and
// far into the future. Each oathtool run prints a window of 5 consecutive
// steps, which TOTP must reproduce and Verify must place.
func TestTOTPAgreesWithOathtool(t *testing.T) {
	oathtool := requireOathtool(t)
	r, seed := oracleRand()
	algs := []otp.Algorithm{otp.SHA1, otp.SHA256, otp.SHA512}
	periods := []int{30, 30, 30, 60, 15, 1, 3600}
	fixed := []int64{0, 1, 29, 30, 59, 1<<31 - 1, 1 << 31, 1<<32 - 1, 1 << 32, 20_000_000_000, 253_402_300_799}
	const cases, window = 300, 4
	for i := range cases {
		secret := make([]byte, 16+r.IntN(49))
		for j := range secret {
			secret[j] = byte(r.Uint32())
		}
		p := otp.Params{Algorithm: algs[i%3], Digits: 6 + (i/3)%3, Period: periods[r.IntN(len(periods))]}
		var unix int64
		switch kind := i % 4; {
		case i < len(fixed):
			unix = fixed[i]
		case kind == 0: // today-ish
			unix = 1_600_000_000 + r.Int64N(400_000_000)
		case kind == 1: // anywhere up to past 2106
			unix = r.Int64N(1 << 33)
		case kind == 2: // far future (oathtool takes 64-bit times)
			unix = r.Int64N(1 << 40)
		default: // between 2038 and 2174
			unix = 1<<31 + r.Int64N(1<<32)
		}
		edge := []int64{0, 1, int64(p.Period) - 1, r.Int64N(int64(p.Period))}[r.IntN(4)]
		if i >= len(fixed) { // the first, second, last or any second of its step
			unix = unix - unix%int64(p.Period) + edge
		}
		want := oathtoolCodes(t, oathtool, secret,
			"--totp="+strings.ToLower(p.Algorithm.String()), "-d", strconv.Itoa(p.Digits),
			"-s", strconv.Itoa(p.Period)+"s", "-w", strconv.Itoa(window), "--now", "@"+strconv.FormatInt(unix, 10))
		if len(want) != window+1 {
			t.Fatalf("oathtool printed %d codes, want %d: %q", len(want), window+1, want)
		}
		center := otp.Step(time.Unix(unix, 0), p.Period)
		describe := fmt.Sprintf("seed %d case %d: secret %s, T=%d, %v/%d digits/%ds", seed, i, otp.EncodeSecret(secret), unix, p.Algorithm, p.Digits, p.Period)
		for k, code := range want {
			if got := otp.TOTP(secret, time.Unix(unix+int64(k*p.Period), 0), p); got != code {
				t.Fatalf("%s: step +%d: TOTP %s, oathtool %s", describe, k, got, code)
			}
			// The earliest of the window's steps with this code (two steps
			// share a code about once in a million).
			first := k
			for j := range k {
				if want[j] == code {
					first = j
					break
				}
			}
			step, ok := otp.Verify(secret, code, center, 0, window, p)
			if !ok || step != center+uint64(first) {
				t.Fatalf("%s: Verify(oathtool's code for step +%d) = %d, %v; want %d, true", describe, k, step, ok, center+uint64(first))
			}
		}
	}
}

// TestHOTPAgreesWithOathtool checks counters beyond 32 bits against
// oathtool's HOTP mode (which is SHA1 only).
func TestHOTPAgreesWithOathtool(t *testing.T) {
	oathtool := requireOathtool(t)
	r, seed := oracleRand()
	for i := range 30 {
		secret := make([]byte, 16+r.IntN(49))
		for j := range secret {
			secret[j] = byte(r.Uint32())
		}
		counter := []uint64{0, 1<<32 - 2, 1 << 40, r.Uint64() >> 1}[i%4]
		digits := 6 + i%3
		want := oathtoolCodes(t, oathtool, secret, "--hotp", "-c", strconv.FormatUint(counter, 10), "-d", strconv.Itoa(digits), "-w", "3")
		if len(want) != 4 {
			t.Fatalf("oathtool printed %q, want 4 codes", want)
		}
		for k, code := range want {
			if got := otp.HOTP(secret, counter+uint64(k), otp.SHA1, digits); got != code {
				t.Fatalf("seed %d: secret %s counter %d, %d digits: HOTP %s, oathtool %s", seed, otp.EncodeSecret(secret), counter+uint64(k), digits, got, code)
			}
		}
	}
}
